"""The executor every job uses, chosen once so every launch path runs steps the same way.

Per-asset `dagster-k8s/config` tags (GPU limits, tolerations) take effect only under
`k8s_job_executor`. Setting it as the Definitions-wide default executor makes it
apply to the UI, backfills, sensors and automation alike, not just to named jobs.
"""

from __future__ import annotations

import dagster as dg

from llm_platform.automation.pool_wait import install_pool_wait_guard

EXECUTORS = ("multiprocess", "in_process", "k8s")
# Step pods parse untrusted files: they run as an account with no Role and no
# mounted token (k8s/base/rbac.yaml), unlike the run pod that launches them.
STEP_SERVICE_ACCOUNT = "llm-platform-step"
K8S_STEP_CONFIG = {
    "service_account_name": STEP_SERVICE_ACCOUNT,
    "step_k8s_config": {"pod_spec_config": {"automount_service_account_token": False}},
}


def platform_executor(kind: str) -> dg.ExecutorDefinition:
    """`multiprocess` (local default), `in_process` (tests, debugging) or `k8s` (one pod per step)."""
    # Every executor claims pool slots in the run's process, which built these definitions.
    install_pool_wait_guard()
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(K8S_STEP_CONFIG, name="k8s_job_executor")
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "multiprocess":
        # Steps fork from a server that imported the code location once per run, instead of
        # each step process importing and building it again (about 2 s a step here). The
        # code location starts no thread, so forking from it is safe (tests/layout).
        forkserver = {"forkserver": {"preload_modules": ["llm_platform.definitions"]}}
        return dg.multiprocess_executor.configured({"max_concurrent": 2, "start_method": forkserver})
    raise ValueError(
        f"executor {kind!r} is not one of {', '.join(EXECUTORS)} (set "
        "LLM_PLATFORM_EXECUTOR or execution.executor in the config)"
    )

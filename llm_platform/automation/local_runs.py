"""Jobs run in this process on the local instance, as the demo and `llm-platform index publish` run them.

The runs go into the persistent instance `make ui` shows, so the UI keeps their history.
"""

from __future__ import annotations

import os
import time

import dagster as dg


def _console_from(level: str) -> dict:
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def local_instance(home: str) -> dg.DagsterInstance:
    """The persistent local instance `make ui` shows ($DAGSTER_HOME, else
    <home>/dagster), configured by llm_platform/dagster.yaml.
    """
    from llm_platform.local_instance import DAGSTER_HOME_ENV, default_dagster_home, prepare_dagster_home

    os.environ[DAGSTER_HOME_ENV] = str(prepare_dagster_home(default_dagster_home(home)))
    return dg.DagsterInstance.get()


def run_job(
    defs: dg.Definitions,
    job: str,
    instance: dg.DagsterInstance,
    partition: str | None = None,
    *,
    log_level: str = "INFO",
) -> dg.ExecuteInProcessResult:
    """Run `job` in this process, printing a line when it starts and one with its outcome and time.

    The console shows events from `log_level` up (INFO: at DEBUG one materialization prints about
    100 lines); the instance stores every event, so the UI shows the whole run.
    """
    label = f"{job}[{partition}]" if partition else job
    started = time.perf_counter()
    print(f"▶ {label} …", flush=True)
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition, raise_on_error=False, run_config=_console_from(log_level)
    )
    status = "ok" if result.success else "FAILED"
    print(f"  {label}: {status} in {time.perf_counter() - started:.1f}s (run {result.run_id[:8]})", flush=True)
    return result


def materialization(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    """The metadata values of `asset`'s materialization in `result` ({} if it was not materialized)."""
    for event in result.get_asset_materialization_events():
        found = event.step_materialization_data.materialization
        if found.asset_key.to_user_string() == asset:
            return {k: v.value for k, v in found.metadata.items()}
    return {}


def _step_failure(event: dg.DagsterEvent) -> str:
    data = event.step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    error = data.error
    while error is not None and error.cause is not None:  # Dagster wraps the asset's own error: show that one
        error = error.cause
    return (error.message.strip().splitlines() or ["no message"])[0] if error is not None else "no message"


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    """Why a run did not do everything: failed checks and failed steps, one line each."""
    checks = [
        f"check {c.check_name} failed: {c.description}" for c in result.get_asset_check_evaluations() if not c.passed
    ]
    steps = [
        f"step {e.step_key} failed: {_step_failure(e)}"
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    ]
    return checks + steps

"""The Kubernetes Jobs that k8s_job_executor would create for GPU and CPU steps.

Each Job is built by dagster-k8s's own code along the executor's path
(`K8sStepHandler._get_container_context` then `launch_step`): run launcher config
from the cluster instance, the code location's container context as the Helm
chart renders it, then the step's `dagster-k8s/config` op tag.
"""

from __future__ import annotations

import json
from typing import Any

import dagster as dg
import kubernetes_validate
import pytest
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.execution.api import create_execution_plan
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster._grpc.types import ExecuteStepArgs
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_k8s_job_name,
    get_user_defined_k8s_config,
)
from kubernetes.client import ApiClient
from pydantic import ValidationError

from llm_platform.automation.executors import K8S_STEP_CONFIG, STEP_SERVICE_ACCOUNT
from llm_platform.pod_specs import DEFAULT_CPU_POD, DEFAULT_GPU_POD, GPU_RESOURCE, PodSettings, Toleration, k8s_op_tags
from llm_platform_tests.deploy.conftest import K8S_VERSION, NAMESPACE
from llm_platform_tests.deploy.pod_security import restricted_violations

GPU_ASSETS = {"lora_adapter", "model_eval"}
RELEASE = "dagster"


def _chart_container_context(deployment: dict[str, Any], service_account: str) -> dict[str, Any]:
    """What the chart's `dagsterUserDeployments.k8sContainerContext` template renders (Dagster 1.13)."""
    k8s: dict[str, Any] = {
        "image_pull_policy": deployment["image"]["pullPolicy"],
        "env_config_maps": [
            f"{RELEASE}-dagster-user-deployments-{deployment['name']}-user-env",
            *(ref["name"] for ref in deployment.get("envConfigMaps", [])),
        ],
        "env_secrets": [ref["name"] for ref in deployment.get("envSecrets", [])],
        "volume_mounts": deployment.get("volumeMounts", []),
        "volumes": deployment.get("volumes", []),
        "resources": deployment.get("resources", {}),
        "namespace": NAMESPACE,
        "service_account_name": service_account,
    }
    pod_spec_config = {
        "security_context": deployment.get("podSecurityContext"),
        "node_selector": deployment.get("nodeSelector"),
        "tolerations": deployment.get("tolerations"),
    }
    k8s["run_k8s_config"] = {"pod_spec_config": {k: v for k, v in pod_spec_config.items() if v}}
    return {"k8s": k8s}


def _executor_container_context() -> K8sContainerContext:
    """What k8s_job_executor builds from its config (dagster_k8s.executor.k8s_job_executor)."""
    return K8sContainerContext(
        service_account_name=K8S_STEP_CONFIG["service_account_name"],
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(K8S_STEP_CONFIG["step_k8s_config"]),
    )


def _step_tags(pod: PodSettings) -> dict[str, str]:
    """The tags a step of an asset carrying `k8s_op_tags(pod)` has in the execution plan."""

    @dg.asset(op_tags=k8s_op_tags(pod))
    def sized_asset() -> None: ...

    job = dg.Definitions(assets=[sized_asset]).resolve_implicit_global_asset_job_def()
    (step,) = create_execution_plan(job).steps
    return dict(step.tags)


def _step_job(pod: PodSettings, launcher, code_location: dict[str, Any], helm_values: dict[str, Any]) -> dict[str, Any]:
    image = f"{code_location['image']['repository']}:{code_location['image']['tag']}"
    origin = JobPythonOrigin(
        "__ASSET_JOB",
        RepositoryPythonOrigin(
            executable_path="/opt/venv/bin/python",
            code_pointer=ModuleCodePointer("llm_platform.definitions", "defs", None),
            container_image=image,
            container_context=_chart_container_context(code_location, helm_values["global"]["serviceAccountName"]),
        ),
    )
    run = dg.DagsterRun(job_name="__ASSET_JOB", run_id="6b3fbd6e-8a0a-4d0e-9b2c-2f6f0c1d9a11", job_code_origin=origin)

    context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=False)
    context = context.merge(_executor_container_context())
    context = context.merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(_step_tags(pod))))
    job_config = context.get_k8s_job_config(None, launcher).with_image(image)

    step_key = "sized_asset"
    step_args = ExecuteStepArgs(job_origin=origin, run_id=run.run_id, step_keys_to_execute=[step_key])
    job_name = f"dagster-step-{get_k8s_job_name(run.run_id, step_key)}"
    job = construct_dagster_k8s_job(
        job_config=job_config,
        args=step_args.get_command_args(skip_serialized_namedtuple=True),
        job_name=job_name,
        pod_name=job_name,
        component="step_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/job": run.job_name, "dagster/op": step_key, "dagster/run-id": run.run_id},
        env_vars=[*step_args.get_command_env(), {"name": "DAGSTER_RUN_STEP_KEY", "value": step_key}],
    )
    assert context.namespace == NAMESPACE
    return ApiClient().sanitize_for_serialization(job)


@pytest.fixture
def step_job(k8s_run_launcher, code_location, helm_values):
    return lambda pod: _step_job(pod, k8s_run_launcher, code_location, helm_values)


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]


def _limits(job: dict[str, Any]) -> dict[str, str]:
    return _pod(job)["containers"][0]["resources"]["limits"]


@pytest.mark.parametrize("pod", [DEFAULT_GPU_POD, DEFAULT_CPU_POD], ids=["gpu", "cpu"])
def test_step_job_matches_the_kubernetes_schema(step_job, pod: PodSettings) -> None:
    job = step_job(pod)
    try:
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"step Job is not valid Kubernetes {K8S_VERSION}: {error.message} at {list(error.path)}")


def test_gpu_step_pod_has_a_gpu_limit(step_job) -> None:
    limits = _limits(step_job(DEFAULT_GPU_POD))
    assert limits == {"cpu": "8", "memory": "48Gi", GPU_RESOURCE: "1"}


def test_cpu_step_pod_has_no_gpu_limit(step_job) -> None:
    job = step_job(DEFAULT_CPU_POD)
    assert _limits(job) == {"cpu": "2", "memory": "4Gi"}
    assert GPU_RESOURCE not in json.dumps(job)


def test_gpu_step_pod_is_placed_on_the_gpu_pool(step_job) -> None:
    pod = _pod(step_job(DEFAULT_GPU_POD))
    assert pod["nodeSelector"] == {"llm-platform/pool": "gpu"}
    assert {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]


def test_cpu_step_pod_is_not_placed_on_the_gpu_pool(step_job) -> None:
    pod = _pod(step_job(DEFAULT_CPU_POD))
    assert not pod.get("nodeSelector")
    assert not pod.get("tolerations")


@pytest.mark.parametrize("pod", [DEFAULT_GPU_POD, DEFAULT_CPU_POD], ids=["gpu", "cpu"])
def test_step_job_meets_the_restricted_profile(step_job, pod: PodSettings) -> None:
    assert restricted_violations(_pod(step_job(pod))) == []


def test_step_pod_runs_under_the_step_account_without_a_token(step_job) -> None:
    pod = _pod(step_job(DEFAULT_CPU_POD))
    assert pod["serviceAccountName"] == STEP_SERVICE_ACCOUNT
    assert pod["automountServiceAccountToken"] is False


def test_step_pod_runs_as_non_root(step_job) -> None:
    pod = _pod(step_job(DEFAULT_GPU_POD))
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_step_pod_gets_the_code_locations_env_and_volumes(step_job) -> None:
    pod = _pod(step_job(DEFAULT_CPU_POD))
    (container,) = pod["containers"]
    config_maps = {ref["configMapRef"]["name"] for ref in container["envFrom"] if "configMapRef" in ref}
    assert "llm-platform-env" in config_maps
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/data", "/etc/llm-platform", "/tmp"}
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {"llm-platform-data"}


def test_op_tags_use_the_keys_dagster_k8s_reads() -> None:
    tags = {key: json.dumps(value) for key, value in k8s_op_tags(DEFAULT_GPU_POD).items()}
    config = get_user_defined_k8s_config(tags)
    assert config.container_config["resources"]["limits"][GPU_RESOURCE] == "1"
    assert config.pod_spec_config["node_selector"] == DEFAULT_GPU_POD.node_selector


def test_pod_settings_reject_a_malformed_quantity() -> None:
    with pytest.raises(ValidationError, match="memory_limit"):
        PodSettings(memory_limit="48 GB")


def test_equal_toleration_needs_a_value() -> None:
    with pytest.raises(ValidationError, match="needs a value"):
        Toleration(key="dedicated", operator="Equal")


def test_real_assets_request_gpus_only_for_training_and_eval() -> None:
    from llm_platform.definitions import defs

    gpu_limit_by_asset: dict[str, bool] = {}
    for assets_def in defs.resolve_asset_graph().assets_defs:
        if not assets_def.is_executable:
            continue
        config = get_user_defined_k8s_config(assets_def.op.tags)
        has_gpu = GPU_RESOURCE in config.container_config.get("resources", {}).get("limits", {})
        for key in assets_def.keys:
            gpu_limit_by_asset[key.path[-1]] = has_gpu
    assert GPU_ASSETS <= gpu_limit_by_asset.keys(), "the GPU assets are missing from defs"
    assert {name for name, has_gpu in gpu_limit_by_asset.items() if has_gpu} == GPU_ASSETS

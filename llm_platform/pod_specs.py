"""The Kubernetes pod each asset's step runs in, declared once.

Assets put `op_tags=k8s_op_tags(...)` on themselves, so every launch path (UI,
backfill, sensor, automation) carries the same spec. The tags take effect only
under `dagster_k8s.k8s_job_executor`, which starts one Kubernetes Job per step and
merges the `dagster-k8s/config` tag into that Job; other executors ignore them.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

K8S_CONFIG_TAG = "dagster-k8s/config"
GPU_RESOURCE = "nvidia.com/gpu"
# The quantity grammar of the Kubernetes OpenAPI schema (resource.Quantity).
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")


class Toleration(BaseModel):
    """One pod toleration; with `Exists` the taint's value is ignored, with `Equal` it must match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1)
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None

    @model_validator(mode="after")
    def _value_matches_operator(self) -> Toleration:
        if self.operator == "Exists" and self.value is not None:
            raise ValueError(f"toleration {self.key!r}: operator 'Exists' takes no value (use 'Equal')")
        if self.operator == "Equal" and self.value is None:
            raise ValueError(f"toleration {self.key!r}: operator 'Equal' needs a value")
        return self


class PodSettings(BaseModel):
    """Resources and placement of one step pod; quantities use Kubernetes notation ("500m", "4Gi")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpus: int = Field(0, ge=0)
    cpu_request: str = "500m"
    cpu_limit: str = "2"
    memory_request: str = "1Gi"
    memory_limit: str = "4Gi"
    node_selector: dict[str, str] = {}
    tolerations: list[Toleration] = []

    @field_validator("cpu_request", "cpu_limit", "memory_request", "memory_limit")
    @classmethod
    def _is_quantity(cls, value: str) -> str:
        if not _QUANTITY.match(value):
            raise ValueError(f"{value!r} is not a Kubernetes quantity (examples: '500m', '2', '4Gi')")
        return value


DEFAULT_GPU_POD = PodSettings(
    gpus=1,
    cpu_request="4",
    cpu_limit="8",
    memory_request="24Gi",
    memory_limit="48Gi",
    node_selector={"llm-platform/pool": "gpu"},
    tolerations=[Toleration(key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")],
)
DEFAULT_CPU_POD = PodSettings()


def _resources(pod: PodSettings) -> dict[str, dict[str, str]]:
    limits = {"cpu": pod.cpu_limit, "memory": pod.memory_limit}
    if pod.gpus > 0:
        # Extended resources cannot be overcommitted: the request defaults to the limit.
        limits[GPU_RESOURCE] = str(pod.gpus)
    return {"requests": {"cpu": pod.cpu_request, "memory": pod.memory_request}, "limits": limits}


def container_resources(pod: PodSettings) -> dict[str, dict[str, str]]:
    """The container `resources` (requests and limits) of a pod sized by `pod`."""
    return _resources(pod)


def _pod_spec_config(pod: PodSettings) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if pod.node_selector:
        spec["node_selector"] = dict(pod.node_selector)
    if pod.tolerations:
        spec["tolerations"] = [t.model_dump(exclude_none=True) for t in pod.tolerations]
    return spec


def k8s_op_tags(pod: PodSettings) -> dict[str, dict[str, Any]]:
    """The `dagster-k8s/config` op tag for a step pod, in the snake_case keys dagster-k8s reads."""
    config: dict[str, Any] = {"container_config": {"resources": _resources(pod)}}
    pod_spec = _pod_spec_config(pod)
    if pod_spec:
        config["pod_spec_config"] = pod_spec
    return {K8S_CONFIG_TAG: config}


class MultiNodeTraining(BaseModel):
    """Training over several machines as a Kubeflow PyTorchJob; each node's pod is sized like `gpu_pod`.

    Every pod mounts `storage_claim` (a ReadWriteMany volume, the same one the
    Dagster step pod keeps the storage root on) at `storage_mount_path`, where
    the job file, checkpoints and adapter live.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_nodes: int = Field(ge=2)
    image: str = Field(min_length=1, description="The code location's image (it holds llm_platform and torch).")
    namespace: str = Field("llm-platform", min_length=1)
    storage_claim: str = Field(min_length=1)
    storage_mount_path: str = Field(pattern="^/")
    service_account: str | None = None
    timeout_hours: float = Field(24.0, gt=0)


def chosen_pod(choice: str | PodSettings, *, cpu_pod: PodSettings, gpu_pod: PodSettings) -> PodSettings:
    """A step's pod from its config: 'cpu' or 'gpu' (the platform's pods) or settings of its own."""
    if isinstance(choice, PodSettings):
        return choice
    if choice not in ("cpu", "gpu"):
        raise ValueError(f"pod {choice!r} must be 'cpu', 'gpu' or pod settings")
    return gpu_pod if choice == "gpu" else cpu_pod

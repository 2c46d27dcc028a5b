"""Training that outgrows one machine: a Kubeflow Training Operator PyTorchJob, created and followed from the asset.

The operator starts one pod per node and gives each the PET_* variables that
`torchrun` reads (node count, node rank, rendezvous address), so every pod runs
the same `torchrun -m llm_platform.model.distributed JOB_FILE` that
`training.num_processes` runs inside one pod. The job file, checkpoints and the
adapter live on the storage volume every pod mounts; rank 0 writes the result
there, and the asset reads it back. A retried asset finds its job by name and
follows it, or, when that job failed, replaces it (training resumes from the
newest checkpoint).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from llm_platform.model import distributed
from llm_platform.model.training_request import TrainingRequest, TrainResult
from llm_platform.pod_specs import MultiNodeTraining, PodSettings, container_resources

GROUP, VERSION, PLURAL, KIND = "kubeflow.org", "v1", "pytorchjobs", "PyTorchJob"
# The operator finds the training container by this name.
CONTAINER = "pytorch"
STORAGE_VOLUME = "storage"
POLL_SECONDS = 15.0


class PyTorchJobFailed(RuntimeError):
    """The PyTorchJob ended in the Failed condition, or did not end in time."""


def job_name(fingerprint: str) -> str:
    """The job's name: one per adapter fingerprint, so a retried asset finds its own job."""
    return f"lora-{fingerprint[:16]}"


def _pod_template(job_file: str, multi_node: MultiNodeTraining, pod: PodSettings) -> dict[str, Any]:
    container = {
        "name": CONTAINER,
        "image": multi_node.image,
        "command": ["python", "-m", "torch.distributed.run", "-m", "llm_platform.model.distributed", job_file],
        "resources": container_resources(pod),
        "volumeMounts": [{"name": STORAGE_VOLUME, "mountPath": multi_node.storage_mount_path}],
    }
    spec: dict[str, Any] = {
        "containers": [container],
        "volumes": [{"name": STORAGE_VOLUME, "persistentVolumeClaim": {"claimName": multi_node.storage_claim}}],
    }
    if pod.node_selector:
        spec["nodeSelector"] = dict(pod.node_selector)
    if pod.tolerations:
        spec["tolerations"] = [t.model_dump(exclude_none=True) for t in pod.tolerations]
    if multi_node.service_account:
        spec["serviceAccountName"] = multi_node.service_account
    return {"metadata": {"labels": {"app.kubernetes.io/part-of": "llm-platform"}}, "spec": spec}


def pytorch_job_manifest(
    name: str, *, job_file: str, multi_node: MultiNodeTraining, pod: PodSettings, processes_per_node: int
) -> dict[str, Any]:
    """The PyTorchJob: one Master and num_nodes - 1 Workers, each running processes_per_node ranks."""
    if not job_file.startswith(multi_node.storage_mount_path.rstrip("/") + "/"):
        raise ValueError(
            f"the training job file {job_file} is not under training.multi_node.storage_mount_path "
            f"({multi_node.storage_mount_path}), so the PyTorchJob's pods cannot read it; keep the storage "
            "root on the volume training.multi_node.storage_claim mounts there"
        )
    template = _pod_template(job_file, multi_node, pod)
    replica = {"restartPolicy": "OnFailure", "template": template}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": multi_node.namespace,
            "labels": {"app.kubernetes.io/part-of": "llm-platform"},
        },
        "spec": {
            "nprocPerNode": str(processes_per_node),
            "runPolicy": {"cleanPodPolicy": "None", "backoffLimit": 3},
            "pytorchReplicaSpecs": {
                "Master": {"replicas": 1, **replica},
                "Worker": {"replicas": multi_node.num_nodes - 1, **replica},
            },
        },
    }


def job_state(job: dict[str, Any]) -> str | None:
    """'Succeeded' or 'Failed' once the job ended, else None."""
    for condition in reversed((job.get("status") or {}).get("conditions") or []):
        if condition.get("type") in ("Succeeded", "Failed") and condition.get("status") == "True":
            return condition["type"]
    return None


def _failure_message(job: dict[str, Any]) -> str:
    for condition in reversed((job.get("status") or {}).get("conditions") or []):
        if condition.get("type") == "Failed":
            return condition.get("message") or condition.get("reason") or "no message"
    return "no message"


def submit(api, manifest: dict[str, Any]) -> None:
    """Create the job; an earlier job of the same name is followed, or replaced when it failed."""
    from kubernetes.client.exceptions import ApiException

    name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)
        return
    except ApiException as error:
        if error.status != 409:
            raise
    if job_state(api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)) == "Failed":
        api.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, body={"propagationPolicy": "Foreground"}
        )
        _wait_deleted(api, namespace, name)
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)


def _wait_deleted(api, namespace: str, name: str) -> None:
    from kubernetes.client.exceptions import ApiException

    while True:
        try:
            api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                return
            raise
        time.sleep(POLL_SECONDS)


def wait(
    api,
    namespace: str,
    name: str,
    *,
    timeout_seconds: float,
    on_poll: Callable[[], None] = lambda: None,
    poll_seconds: float = POLL_SECONDS,
) -> None:
    """Return when the job succeeded; raise PyTorchJobFailed when it failed or ran past the timeout."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        on_poll()
        job = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        state = job_state(job)
        if state == "Succeeded":
            return
        if state == "Failed":
            raise PyTorchJobFailed(
                f"PyTorchJob {namespace}/{name} failed: {_failure_message(job)}; "
                f"see `kubectl -n {namespace} logs {name}-master-0`"
            )
        if time.monotonic() > deadline:
            raise PyTorchJobFailed(
                f"PyTorchJob {namespace}/{name} did not finish within training.multi_node.timeout_hours; "
                f"it is still there: `kubectl -n {namespace} get pytorchjob {name}`"
            )
        time.sleep(poll_seconds)


def kubernetes_api():
    """The custom-objects API, with the pod's service account in a cluster, else the local kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi()


def train_on_pytorch_job(
    request: TrainingRequest,
    *,
    name: str,
    multi_node: MultiNodeTraining,
    pod: PodSettings,
    api=None,
    on_step: Callable[[int, float], None] | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> TrainResult:
    """`train_lora` on multi_node.num_nodes machines of request.config.num_processes processes each."""
    job_file = os.path.abspath(distributed.write_job(request))
    manifest = pytorch_job_manifest(
        name, job_file=job_file, multi_node=multi_node, pod=pod, processes_per_node=request.config.num_processes
    )
    api = api or kubernetes_api()
    submit(api, manifest)
    progress = os.path.join(os.path.dirname(job_file), distributed.PROGRESS_FILE)
    seen = [0]

    def follow() -> None:
        seen[0] = distributed.follow_progress(progress, seen[0], on_step)

    wait(
        api,
        multi_node.namespace,
        name,
        timeout_seconds=multi_node.timeout_hours * 3600,
        on_poll=follow,
        poll_seconds=poll_seconds,
    )
    follow()
    return distributed.read_outcome(request.output_dir)

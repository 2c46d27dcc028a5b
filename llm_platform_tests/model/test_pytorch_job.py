"""The PyTorchJob that trains across machines: valid offline, and launched through the Kubernetes API.

Its structure is checked against the Training Operator's own CRD schema
(vendored in schemas/), its pod templates against the core Kubernetes schemas.
No cluster here: the API is a fake at the Kubernetes API boundary, which plays
the operator by running each replica's container command with the PET_*
variables the operator sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from llm_platform.config import TrainingSettings
from llm_platform.model.pytorch_job import (
    CONTAINER,
    PyTorchJobFailed,
    job_name,
    pytorch_job_manifest,
    submit,
    train_on_pytorch_job,
    wait,
)
from llm_platform.model.training_request import TrainingRequest
from llm_platform.pod_specs import DEFAULT_GPU_POD, GPU_RESOURCE, MultiNodeTraining
from llm_platform_tests.deploy.conftest import K8S_VERSION, NAMESPACE
from llm_platform_tests.model.fake_kubernetes import FakeKubernetes, play_operator

CRD = Path(__file__).resolve().parents[1] / "deploy" / "schemas" / "kubeflow.org_pytorchjobs.yaml"
MULTI_NODE = MultiNodeTraining(
    num_nodes=3,
    image="registry.example.com/llm-platform:1.0",
    namespace=NAMESPACE,
    storage_claim="llm-platform-storage",
    storage_mount_path="/data",
)
JOB_FILE = "/data/models/adapters/0123456789abcdef/distributed/job.json"


@pytest.fixture(scope="module")
def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text(encoding="utf-8"))
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return served["schema"]["openAPIV3Schema"]


def _manifest(**overrides) -> dict[str, Any]:
    options = {
        "job_file": JOB_FILE,
        "multi_node": MULTI_NODE,
        "pod": DEFAULT_GPU_POD,
        "processes_per_node": 4,
        **overrides,
    }
    return pytorch_job_manifest("lora-0123456789abcdef", **options)


def test_job_matches_the_training_operators_crd(crd_schema):
    jsonschema.validate(_manifest(), crd_schema)


def test_the_crd_check_rejects_a_malformed_job(crd_schema):
    broken = _manifest()
    broken["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = "one"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, crd_schema)


@pytest.mark.parametrize("replica", ["Master", "Worker"])
def test_pod_templates_match_the_kubernetes_schema(replica):
    template = _manifest()["spec"]["pytorchReplicaSpecs"][replica]["template"]
    pod_template = {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": "t", "namespace": NAMESPACE},
        "template": template,
    }
    try:
        kubernetes_validate.validate(pod_template, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(
            f"{replica} pod template is not valid Kubernetes {K8S_VERSION}: {error.message} at {list(error.path)}"
        )


def test_multi_node_settings_name_the_field_they_reject():
    with pytest.raises(ValidationError, match="num_nodes"):
        MultiNodeTraining(**{**MULTI_NODE.model_dump(), "num_nodes": 1})
    with pytest.raises(ValidationError, match="storage_mount_path"):
        MultiNodeTraining(**{**MULTI_NODE.model_dump(), "storage_mount_path": "data"})


def test_a_job_that_succeeded_without_writing_a_result_says_where_to_look(curated_examples, tmp_path):
    multi_node = MULTI_NODE.model_copy(update={"storage_mount_path": str(tmp_path)})
    with pytest.raises(RuntimeError, match="wrote no result to .*result.json"):
        train_on_pytorch_job(
            TrainingRequest(
                base_model_dir="unused",
                examples=curated_examples,
                config=TrainingSettings(),
                output_dir=str(tmp_path / "adapter"),
            ),
            name="lora-0",
            multi_node=multi_node,
            pod=DEFAULT_GPU_POD,
            api=FakeKubernetes(runner=lambda body: "Succeeded"),
            poll_seconds=0,
        )


def test_one_master_and_the_other_nodes_as_workers_each_with_its_gpus():
    spec = _manifest()["spec"]
    replicas = spec["pytorchReplicaSpecs"]
    assert (replicas["Master"]["replicas"], replicas["Worker"]["replicas"], spec["nprocPerNode"]) == (1, 2, "4")
    (container,) = replicas["Worker"]["template"]["spec"]["containers"]
    assert container["name"] == CONTAINER and container["resources"]["limits"][GPU_RESOURCE] == "1"
    assert container["command"][-1] == JOB_FILE
    assert replicas["Worker"]["template"]["spec"]["nodeSelector"] == DEFAULT_GPU_POD.node_selector


def test_a_job_file_off_the_shared_volume_is_refused():
    with pytest.raises(ValueError, match="storage_mount_path"):
        _manifest(job_file="/tmp/llm/distributed/job.json")


def _with_state(state: str) -> dict:
    job = _manifest()
    job["status"] = {
        "conditions": [
            {"type": "Running", "status": "False"},
            {"type": state, "status": "True", "message": "OOMKilled"},
        ]
    }
    return job


def test_a_retried_asset_follows_its_running_job():
    api = FakeKubernetes(existing=_with_state("Running"))
    submit(api, _manifest())
    assert api.calls == ["create", "get"]


def test_a_retried_asset_replaces_its_failed_job():
    api = FakeKubernetes(existing=_with_state("Failed"))
    submit(api, _manifest())
    assert api.calls == ["create", "get", "delete", "get", "create"]
    assert api.objects[_manifest()["metadata"]["name"]]["status"]["conditions"][-1]["type"] == "Running"


def test_a_failed_job_fails_the_asset_with_the_operators_message():
    api = FakeKubernetes(existing=_with_state("Failed"))
    with pytest.raises(PyTorchJobFailed, match="failed: OOMKilled.*kubectl -n llm-platform logs"):
        wait(api, NAMESPACE, "lora-0123456789abcdef", timeout_seconds=60, poll_seconds=0)


def test_a_job_that_never_ends_fails_after_the_timeout():
    api = FakeKubernetes(existing=_with_state("Running"))
    with pytest.raises(PyTorchJobFailed, match="did not finish within"):
        wait(api, NAMESPACE, "lora-0123456789abcdef", timeout_seconds=0, poll_seconds=0)


def test_training_across_two_nodes_matches_one_process(tiny_base, curated_examples, tuned, tmp_path):
    from llm_platform_tests.model.conftest import lora

    multi_node = MULTI_NODE.model_copy(update={"num_nodes": 2, "storage_mount_path": str(tmp_path)})
    steps: list[int] = []
    request = TrainingRequest(
        base_model_dir=tiny_base.path,
        examples=curated_examples,
        output_dir=str(tmp_path / "adapter"),
        config=lora(num_processes=1, device="cpu"),
    )
    result = train_on_pytorch_job(
        request,
        name=job_name("0123456789abcdef0"),
        multi_node=multi_node,
        pod=DEFAULT_GPU_POD,
        api=FakeKubernetes(runner=play_operator),
        on_step=lambda step, loss: steps.append(step),
        poll_seconds=0,
    )
    assert result.num_processes == 2 and steps == list(range(1, tuned.steps + 1))
    assert result.losses == pytest.approx(tuned.losses, rel=1e-4)

"""lora_adapter with training.multi_node: trained by a PyTorchJob it creates through the Kubernetes API."""

from __future__ import annotations

from llm_platform.model import pytorch_job
from llm_platform_tests.model.fake_kubernetes import FakeKubernetes, play_operator
from llm_platform_tests.model.test_model_assets import UP_TO_ADAPTER
from llm_platform_tests.model.topics_platform import materialized


def test_lora_adapter_trains_as_a_pytorch_job_on_two_nodes(platform, monkeypatch):
    api = FakeKubernetes(runner=play_operator)
    monkeypatch.setattr(pytorch_job, "kubernetes_api", lambda: api)
    multi_node = {
        "num_nodes": 2,
        "image": "registry.example.com/llm-platform:1.0",
        "storage_claim": "llm-platform-storage",
        "storage_mount_path": str(platform.folder),
    }
    config = platform.config(training={"multi_node": multi_node, "device": "cpu"})
    result = platform.train(config, UP_TO_ADAPTER)
    assert result.success and "lora_adapter" in materialized(result)
    (job,) = api.objects.values()
    assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 1
    assert job["status"]["conditions"][-1]["type"] == "Succeeded"
    adapter = platform.latest("lora_adapter")
    assert adapter["num_processes"] == 2 and adapter["steps"] == len(adapter["losses"]) > 0

"""Which backend, device and number format the embedding config selects, and where its step runs."""

from __future__ import annotations

import numpy as np
import pytest
from dagster_k8s.job import get_user_defined_k8s_config

from llm_platform.config import DEFAULT_EMBEDDING_MODEL, DEMO_CONFIG, ConfigError, EmbeddingConfig, load_config
from llm_platform.definitions import build_definitions
from llm_platform.index.embedding import (
    Runtime,
    TorchEmbedder,
    configured_cache,
    embed_texts,
    length_order,
    resolve_runtime,
)
from llm_platform.pod_specs import DEFAULT_GPU_POD, GPU_RESOURCE, PodSettings


def test_torch_on_cpu_runs_fp32_in_the_key_space_of_existing_caches():
    runtime = resolve_runtime("torch", "cpu")
    assert runtime == Runtime("torch", "cpu", "fp32")
    assert runtime.variant == ""


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_torch_on_a_gpu_runs_fp16_on_that_device(device):
    runtime = resolve_runtime("torch", device)
    assert (runtime.device, runtime.precision) == (device, "fp16")
    assert runtime.variant == "torch_fp16"


def test_auto_picks_the_gpu_when_there_is_one():
    assert resolve_runtime("torch", "auto", cuda_available=lambda: True) == Runtime("torch", "cuda", "fp16")
    assert resolve_runtime("torch", "auto", cuda_available=lambda: False) == Runtime("torch", "cpu", "fp32")


def test_onnx_runs_int8_on_cpu_and_refuses_a_gpu():
    assert resolve_runtime("onnx", "auto", cuda_available=lambda: True) == Runtime("onnx", "cpu", "int8")
    with pytest.raises(ValueError, match="use backend 'torch'"):
        resolve_runtime("onnx", "cuda")


def test_an_unknown_backend_is_named():
    with pytest.raises(ValueError, match="'tensorrt' is not one of torch, onnx"):
        resolve_runtime("tensorrt", "cpu")


def test_a_gpu_device_on_a_cpu_pod_is_a_config_error(tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text(
        f"sources:\n  - name: docs\n    location: {tmp_path}\nembedding:\n  device: cuda\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"embedding: .*needs a GPU in the step's pod: set embedding.pod to 'gpu'"):
        load_config(path)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"backend": "onnx", "device": "cuda", "pod": "gpu"}, "runs int8 on CPU"),
        ({"pod": "gpu"}, "embedding.device is 'cpu'"),
        ({"device": "gpu0"}, "must be 'cpu', 'cuda', 'cuda:N' or 'auto'"),
    ],
)
def test_inconsistent_embedding_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        EmbeddingConfig(**settings)


@pytest.fixture
def platform_config():
    return load_config(DEMO_CONFIG)


def _embedding_step(config):
    defs = build_definitions(config, home="/tmp/unused")
    return next(a for a in defs.assets if "embeddings" in {k.to_user_string() for k in a.keys})


def _limits(step) -> dict:
    return get_user_defined_k8s_config(step.op.tags).container_config["resources"]["limits"]


def test_the_embeddings_step_runs_on_the_gpu_pod_when_configured(platform_config):
    on_gpu = platform_config.model_copy(update={"embedding": EmbeddingConfig(device="cuda", pod="gpu")})
    step = _embedding_step(on_gpu)
    assert _limits(step)[GPU_RESOURCE] == str(DEFAULT_GPU_POD.gpus)
    assert get_user_defined_k8s_config(step.op.tags).pod_spec_config["node_selector"] == DEFAULT_GPU_POD.node_selector
    assert step.op.pool == "gpu"


def test_the_embeddings_step_stays_on_the_cpu_pod_by_default(platform_config):
    step = _embedding_step(platform_config)
    assert GPU_RESOURCE not in _limits(step)
    assert step.op.pool is None


def test_the_embeddings_step_takes_pod_settings_of_its_own(platform_config):
    own = PodSettings(gpus=2, memory_limit="64Gi")
    step = _embedding_step(platform_config.model_copy(update={"embedding": EmbeddingConfig(device="auto", pod=own)}))
    limits = _limits(step)
    assert (limits[GPU_RESOURCE], limits["memory"]) == ("2", "64Gi")


def test_batches_are_formed_longest_first_from_the_stored_token_counts():
    assert length_order(["aaaa", "b", "cc"], [1, 30, 7]) == [1, 2, 0]
    assert length_order(["aaaa", "b", "cc"], None) == [0, 2, 1]


def test_texts_reach_the_embedder_longest_first(tmp_path):
    seen: list[str] = []

    class Recorder:
        model_id, runtime, dimension = "test/model", Runtime("torch", "cpu", "fp32"), 2

        def encode(self, texts, *, show_progress=False):
            seen.extend(texts)
            return np.tile([[1.0, 0.0]], (len(texts), 1)).astype(np.float32)

    cache = configured_cache(EmbeddingConfig(model="test/model"), str(tmp_path))
    run = embed_texts(["a", "b", "c"], ["short", "the longest text", "middle"], cache, Recorder, token_counts=[1, 9, 4])
    assert seen == ["the longest text", "middle", "short"]
    assert run.vectors.shape == (3, 2)


def test_a_gpu_device_loads_the_model_there_in_half_precision(monkeypatch):
    import sentence_transformers

    loaded = {}

    class GpuModel:
        """Stands in for the model on a GPU, which this machine has not got."""

        def __init__(self, path, device):
            loaded.update(path=path, device=device)

        def half(self):
            loaded["half"] = True
            return self

        def get_embedding_dimension(self):
            return 384

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", GpuModel)
    embedder = TorchEmbedder(DEFAULT_EMBEDDING_MODEL, runtime=resolve_runtime("torch", "cuda:0"))
    assert (loaded["device"], loaded.get("half")) == ("cuda:0", True)
    assert embedder.runtime.variant == "torch_fp16"


def test_half_precision_vectors_come_back_float32_and_unit_length():
    # fp16 kernels exist on CPU too, so the half-precision path runs here without a GPU.
    texts = ["for loops repeat a block", "the with statement manages a context"]
    half = TorchEmbedder(DEFAULT_EMBEDDING_MODEL, runtime=Runtime("torch", "cpu", "fp16")).encode(texts)
    full = TorchEmbedder(DEFAULT_EMBEDDING_MODEL, runtime=Runtime("torch", "cpu", "fp32")).encode(texts)
    assert half.dtype == np.float32 and np.allclose(np.linalg.norm(half, axis=1), 1.0, atol=1e-5)
    assert (half * full).sum(axis=1).min() > 0.999

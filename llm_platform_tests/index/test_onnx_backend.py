"""The int8 ONNX backend: exported offline from the packaged model, cached, close to fp32, used by the asset."""

from __future__ import annotations

import os
import time
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import pytest

from llm_platform.config import DEFAULT_EMBEDDING_MODEL, load_config
from llm_platform.definitions import build_definitions
from llm_platform.index import onnx_model
from llm_platform.index.embedding import load_embedder
from llm_platform.index.onnx_model import QUANTIZED_FILE, OnnxEmbedder, quantized_model_dir
from llm_platform_tests.conftest import materialization

TEXTS = [topics[name][:1500] for name in ("for", "with", "class", "comparisons", "lambda", "exceptions")] + [
    "a",
    "short question about loops?",
]


@pytest.fixture(scope="session")
def onnx_cache(onnx_export_cache) -> Path:
    """The session's one export (conftest), shared by every test here and by the searches of other tests."""
    quantized_model_dir(DEFAULT_EMBEDDING_MODEL)
    return onnx_export_cache


def test_int8_vectors_point_where_fp32_vectors_point(onnx_cache):
    int8 = OnnxEmbedder(DEFAULT_EMBEDDING_MODEL, cache_dir=str(onnx_cache), batch_size=3)
    fp32 = load_embedder(DEFAULT_EMBEDDING_MODEL).encode(TEXTS)
    vectors = int8.encode(TEXTS)
    assert vectors.shape == fp32.shape == (len(TEXTS), int8.dimension) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (vectors * fp32).sum(axis=1).min() > 0.97


def test_batch_composition_does_not_change_a_vector(onnx_cache):
    embedder = OnnxEmbedder(DEFAULT_EMBEDDING_MODEL, cache_dir=str(onnx_cache), batch_size=2)
    together = embedder.encode(TEXTS)
    alone = np.stack([embedder.encode([text])[0] for text in TEXTS])
    # Dynamic quantisation scales activations per batch, so batch partners move a vector a
    # little (measured: cosine 0.988 at worst); far less than the int8-vs-fp32 gap allows.
    assert (together * alone).sum(axis=1).min() > 0.98


def test_the_export_is_reused_not_redone(onnx_cache, monkeypatch):
    monkeypatch.setattr(onnx_model, "export_quantized", lambda *args: pytest.fail("exported a second time"))
    folder = quantized_model_dir(DEFAULT_EMBEDDING_MODEL, cache_dir=onnx_cache)
    assert (folder / QUANTIZED_FILE).is_file()


def test_a_killed_export_is_neither_used_nor_kept(onnx_cache, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    (cache / ".killed-export.tmp").mkdir(parents=True)
    (cache / ".killed-export.tmp" / "model_fp32.onnx").write_bytes(b"")
    old = time.time() - 3600
    os.utime(cache / ".killed-export.tmp", (old, old))
    exported = []

    def fake_export(source: Path, folder: Path) -> None:
        folder.mkdir(parents=True)
        exported.append(folder)
        for name in os.listdir(next(onnx_cache.glob("*-*"))):
            (folder / name).symlink_to(next(onnx_cache.glob("*-*")) / name)

    monkeypatch.setattr(onnx_model, "export_quantized", fake_export)
    folder = quantized_model_dir(DEFAULT_EMBEDDING_MODEL, cache_dir=cache)
    assert len(exported) == 1 and (folder / QUANTIZED_FILE).exists()
    assert not (cache / ".killed-export.tmp").exists()
    assert [p.name for p in cache.iterdir()] == [folder.name]


def test_the_embeddings_asset_embeds_with_the_configured_backend(new_platform, onnx_cache):
    platform = new_platform("onnx_backend")
    with platform.config_path.open("a", encoding="utf-8") as handle:
        handle.write(f"embedding:\n  backend: onnx\n  onnx_cache_dir: {onnx_cache}\n")
    platform.defs = build_definitions(load_config(platform.config_path), home=str(platform.home), executor="in_process")
    result = platform.run(partition="notes")
    meta = materialization(result, "embeddings")
    assert (meta["backend"], meta["device"], meta["precision"]) == ("onnx", "cpu", "int8")
    assert meta["computed"] == meta["vectors"] > 0
    assert (platform.home / "embedding_cache" / "sentence_transformers_all_minilm_l6_v2__onnx_int8").is_dir()


def test_switching_to_int8_builds_its_own_table_gated_against_the_served_fp32_one(
    new_platform, onnx_cache, monkeypatch
):
    from llm_platform.automation.jobs import PUBLISH_INDEX_JOB
    from llm_platform.index import assets as index_assets
    from llm_platform.index.table import connect, table_name

    platform = new_platform("int8_switch")
    for source in ("docs", "notes"):
        assert platform.run(partition=source).success
    assert platform.run(PUBLISH_INDEX_JOB).success
    fp32_name = table_name("chunks", DEFAULT_EMBEDDING_MODEL)
    db = connect(str(platform.home / "lancedb"))
    fp32_version = db.open_table(fp32_name).version

    with platform.config_path.open("a", encoding="utf-8") as handle:
        handle.write("embedding:\n  backend: onnx\n")
    platform.defs = build_definitions(load_config(platform.config_path), home=str(platform.home), executor="in_process")
    encoders = []
    real = index_assets.query_embedder
    monkeypatch.setattr(
        index_assets,
        "query_embedder",
        lambda settings, space=None: encoders.append(real(settings, space).runtime.precision) or real(settings, space),
    )
    for source in ("docs", "notes"):
        assert platform.run(partition=source).success
    result = platform.run(PUBLISH_INDEX_JOB, raise_on_error=False)

    evaluated = materialization(result, "retrieval_eval")
    assert evaluated["table"] == f"{fp32_name}__onnx_int8"
    assert evaluated["compared_with"].startswith(f"{fp32_name}@"), (
        "the int8 table must be gated against the served fp32 one"
    )
    assert encoders == ["int8", "fp32"], "questions must be embedded in each table's own space"
    assert db.open_table(fp32_name).version == fp32_version, "the fp32 table was written by the int8 run"
    assert db.open_table(f"{fp32_name}__onnx_int8").count_rows() == db.open_table(fp32_name).count_rows()

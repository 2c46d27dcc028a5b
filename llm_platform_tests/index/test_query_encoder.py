"""Queries are embedded by the exported ONNX graph of the table's vector space: torch's vectors, without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import pyarrow as pa
import pytest

from llm_platform.config import CONFIG_ENV, DEFAULT_EMBEDDING_MODEL, HOME_ENV, EmbeddingConfig, load_config
from llm_platform.datasets import DatasetStore
from llm_platform.index.embedding import embedding_space, load_embedder, query_embedder
from llm_platform.index.publishing import Score, publish_version
from llm_platform.index.table import (
    configured_table_name,
    connect,
    index_schema,
    open_table,
    space_of,
    sync_source,
    table_name,
)
from llm_platform_tests.index.tables import SETTINGS, TAG

TOPICS = ("for", "with", "class", "comparisons", "lambda", "exceptions", "global", "assert")
QUESTIONS = ["how do I leave a loop early?", "what does the with statement do", "anonymous functions", "raise an error"]


@pytest.fixture(scope="module")
def torch_fp32():
    return load_embedder(DEFAULT_EMBEDDING_MODEL)


def test_fp32_graph_gives_torchs_vectors(torch_fp32):
    texts = [topics[name][:1500] for name in TOPICS] + QUESTIONS
    onnx = query_embedder(EmbeddingConfig())
    assert onnx.runtime.backend == "onnx" and onnx.runtime.precision == "fp32"
    assert (onnx.encode(texts) * torch_fp32.encode(texts)).sum(axis=1).min() > 0.99999


def test_fp32_graph_ranks_chunks_as_torch_does(torch_fp32):
    chunks = [topics[name][:1500] for name in TOPICS]
    onnx = query_embedder(EmbeddingConfig())
    by_onnx = np.argsort(-(onnx.encode(QUESTIONS) @ torch_fp32.encode(chunks).T), axis=1)
    by_torch = np.argsort(-(torch_fp32.encode(QUESTIONS) @ torch_fp32.encode(chunks).T), axis=1)
    assert (by_onnx == by_torch).all()


def test_int8_tables_are_a_space_of_their_own():
    torch_settings, int8_settings = EmbeddingConfig(), EmbeddingConfig(backend="onnx")
    assert embedding_space(torch_settings) == "" and embedding_space(int8_settings) == "onnx_int8"
    assert query_embedder(int8_settings).runtime.precision == "int8"
    plain = table_name("chunks", DEFAULT_EMBEDDING_MODEL)
    quantized = table_name("chunks", DEFAULT_EMBEDDING_MODEL, "onnx_int8")
    assert quantized == f"{plain}__onnx_int8" and space_of(quantized) == "onnx_int8" and space_of(plain) == ""


def test_the_configured_backend_names_the_table(tmp_path):
    config = tmp_path / "platform.yaml"
    (tmp_path / "corpus").mkdir()
    config.write_text("sources:\n  - name: docs\n    location: corpus\nembedding:\n  backend: onnx\n", encoding="utf-8")
    assert configured_table_name(load_config(config)).endswith("__onnx_int8")


def test_an_unknown_space_is_refused_by_name():
    with pytest.raises(ValueError, match="'bf16_experimental'"):
        query_embedder(EmbeddingConfig(), "bf16_experimental")


@pytest.fixture
def served_home(tmp_path, torch_fp32) -> Path:
    """A served table of help-topic chunks embedded by torch fp32, as the embeddings asset writes them."""
    (tmp_path / "platform.yaml").write_text("sources:\n  - name: docs\n    location: corpus\n", encoding="utf-8")
    (tmp_path / "corpus").mkdir()
    home = tmp_path / "home"
    name = table_name("chunks", DEFAULT_EMBEDDING_MODEL)
    vectors = torch_fp32.encode([topics[t][:1500] for t in TOPICS])
    records = [
        {
            "chunk_id": f"docs-{t}",
            "doc_id": f"doc-{t}",
            "source": "docs",
            "locator": f"{t}.md",
            "title": t,
            "heading": None,
            "position": 0,
            "text": topics[t][:1500],
            "text_hash": t,
            "embedding_model": DEFAULT_EMBEDDING_MODEL,
            "chunker_version": "test",
            "vector": v.tolist(),
            "readers": ["*"],
        }
        for t, v in zip(TOPICS, vectors, strict=True)
    ]
    db = connect(str(home / "lancedb"))
    table = open_table(db, name, vectors.shape[1])
    sync_source(table, "docs", pa.Table.from_pylist(records, schema=index_schema(vectors.shape[1])), settings=SETTINGS)
    publish_version(
        db,
        DatasetStore(str(home)),
        name,
        tag=TAG,
        version=table.version,
        score=Score(hit_rate=1.0, mrr=1.0, k=5, questions=8),
        keep=5,
        run_id="test",
    )
    return tmp_path


def test_a_search_process_finds_by_meaning_without_importing_torch(served_home):
    script = (
        "import sys, json\n"
        "from llm_platform.cli import main\n"
        "code = main(['search', 'leave a loop before it ends', '--mode', 'vector', '-k', '2'])\n"
        "print(json.dumps({'code': code, 'torch': 'torch' in sys.modules, "
        "'sentence_transformers': 'sentence_transformers' in sys.modules}))\n"
    )
    env = {
        **__import__("os").environ,
        CONFIG_ENV: str(served_home / "platform.yaml"),
        HOME_ENV: str(served_home / "home"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "torch": False, "sentence_transformers": False}, done.stderr
    first_hit = done.stdout.splitlines()[2]
    assert first_hit.strip() == "for.md", done.stdout

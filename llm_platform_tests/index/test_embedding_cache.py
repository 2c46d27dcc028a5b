"""The embedding cache survives a writer killed mid-write and parts cut short."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from llm_platform.index.embedding import EmbeddingCache, Runtime, embed_texts
from llm_platform.index.embedding_cache import UNFINISHED_SUFFIX

MODEL = "test/model"
# A writer that opens its part, writes nothing, says so, and hangs until killed.
KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import pyarrow.parquet as pq
    from llm_platform.index.embedding import EmbeddingCache

    def hang(table, handle, **kwargs):
        print("writing", flush=True)
        time.sleep(600)

    pq.write_table = hang
    EmbeddingCache(sys.argv[1], sys.argv[2]).add(["h-killed"], np.ones((1, 4), dtype=np.float32))
    """
)


class CountingEmbedder:
    """A deterministic 4-d embedder that counts the texts it was asked for."""

    model_id = MODEL
    runtime = Runtime("torch", "cpu", "fp32")
    dimension = 4

    def __init__(self) -> None:
        self.texts: list[str] = []

    def encode(self, texts, *, show_progress=False):
        self.texts.extend(texts)
        vectors = np.array([[len(t), t.count("a") + 1, t.count("e") + 1, 1.0] for t in texts], dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _kill_writer_mid_part(root: Path) -> Path:
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(root), MODEL], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "writing"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    leftovers = list(Path(EmbeddingCache(str(root), MODEL).folder).glob(f"*{UNFINISHED_SUFFIX}"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size == 0
    return leftovers[0]


def test_a_writer_killed_mid_part_leaves_a_cache_every_later_run_can_read(tmp_path):
    cache = EmbeddingCache(str(tmp_path), MODEL)
    cache.add(["h1"], np.array([[1, 0, 0, 0]], dtype=np.float32))
    _kill_writer_mid_part(tmp_path)

    later = EmbeddingCache(str(tmp_path), MODEL)
    embedder = CountingEmbedder()
    run = embed_texts(["h1", "h2"], ["cached text", "new text"], later, lambda: embedder)

    assert (run.computed, run.reused) == (1, 1)
    assert embedder.texts == ["new text"]
    assert set(later.lookup(["h1", "h2", "h-killed"])) == {"h1", "h2"}


def test_writers_remove_unfinished_parts_once_no_live_writer_can_own_them(tmp_path):
    leftover = _kill_writer_mid_part(tmp_path)
    EmbeddingCache(str(tmp_path), MODEL).add(["h1"], np.ones((1, 4), dtype=np.float32))
    assert leftover.exists(), "a young unfinished part may belong to a live writer"

    old = time.time() - 3600
    os.utime(leftover, (old, old))
    EmbeddingCache(str(tmp_path), MODEL).add(["h2"], np.ones((1, 4), dtype=np.float32))
    assert not leftover.exists()


def test_a_part_cut_short_is_ignored_and_its_texts_embedded_again(tmp_path):
    cache = EmbeddingCache(str(tmp_path), MODEL)
    cache.add(["h1"], np.array([[1, 0, 0, 0]], dtype=np.float32))
    before = set(Path(cache.folder).glob("*.parquet"))
    cache.add(["h2"], np.array([[0, 1, 0, 0]], dtype=np.float32))
    (part,) = set(Path(cache.folder).glob("*.parquet")) - before
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])

    embedder = CountingEmbedder()
    run = embed_texts(["h1", "h2"], ["first", "second"], EmbeddingCache(str(tmp_path), MODEL), lambda: embedder)

    assert embedder.texts == ["second"]
    assert np.allclose(run.vectors[0], [1, 0, 0, 0])


def test_a_failed_write_leaves_no_unfinished_part(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    def fail(table, handle, **kwargs):
        handle.write(b"PAR1")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", fail)
    cache = EmbeddingCache(str(tmp_path), MODEL)
    with pytest.raises(OSError, match="disk full"):
        cache.add(["h1"], np.ones((1, 4), dtype=np.float32))
    assert list(Path(cache.folder).iterdir()) == []


def test_backends_with_different_numbers_use_separate_key_spaces(tmp_path):
    fp32 = EmbeddingCache(str(tmp_path), MODEL, variant=Runtime("torch", "cpu", "fp32").variant)
    int8 = EmbeddingCache(str(tmp_path), MODEL, variant=Runtime("onnx", "cpu", "int8").variant)
    fp32.add(["h1"], np.ones((1, 4), dtype=np.float32))
    assert fp32.folder != int8.folder
    assert int8.lookup(["h1"]) == {}
    assert fp32.folder.endswith("/embedding_cache/test_model"), "torch fp32 keeps the key space of existing caches"

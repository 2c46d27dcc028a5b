"""Chunk rows made from Python's help topics, and a child process that syncs them (killed on request)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import pyarrow as pa

from llm_platform.config import IndexConfig
from llm_platform.index.table import index_schema

DIMENSION = 16
TABLE = "chunks__test"
TAG = "production"
SETTINGS = IndexConfig(ann_min_rows=5000)
REPO_ROOT = Path(__file__).resolve().parents[2]
TOPICS = sorted(topics)


def unit_vector(seed: str) -> np.ndarray:
    rng = np.random.default_rng(int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16))
    vector = rng.normal(size=DIMENSION).astype(np.float32)
    return vector / np.linalg.norm(vector)


def rows(source: str, topic_names, readers: list[str] | None = None) -> pa.Table:
    """One chunk per help topic: its first paragraphs as text, a vector
    derived from its id; public unless `readers` are given.
    """
    records = []
    for position, name in enumerate(topic_names):
        chunk_id = f"{source}-{name}"
        records.append(
            {
                "chunk_id": chunk_id,
                "doc_id": f"doc-{source}-{name}",
                "source": source,
                "locator": f"{name}.md",
                "title": topics[name].split("\n", 1)[0],
                "heading": None,
                "position": position,
                "text": topics[name][:600],
                "text_hash": chunk_id,
                "embedding_model": "test",
                "chunker_version": "test",
                "vector": unit_vector(chunk_id).tolist(),
                "readers": ["*"] if readers is None else readers,
            }
        )
    return pa.Table.from_pylist(records, schema=index_schema(DIMENSION))


def topic_slice(start: int, stop: int) -> list[str]:
    return TOPICS[start:stop]


def _kill_at(module, name: str, when: str) -> None:
    """Replace module.name so the process SIGKILLs itself before or after that step."""
    original = getattr(module, name)

    def killing(*args, **kwargs):
        if when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(module, name, killing)


def run_writer(
    uri: Path, source: str, start: int, stop: int, *, kill: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Sync topics[start:stop] as `source` in a fresh Python process; `kill` is 'module.function:before|after'."""
    command = [sys.executable, "-m", "llm_platform_tests.index.tables", str(uri), source, str(start), str(stop)] + (
        [kill] if kill else []
    )
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


def _main(uri: str, source: str, start: str, stop: str, kill: str | None = None) -> None:
    import importlib

    from llm_platform.index.table import connect, open_table, sync_source

    if kill:
        target, when = kill.split(":")
        module_name, function = target.rsplit(".", 1)
        _kill_at(importlib.import_module(module_name), function, when)
    table = open_table(connect(uri), TABLE, DIMENSION)
    result = sync_source(table, source, rows(source, topic_slice(int(start), int(stop))), settings=SETTINGS)
    print(result.inserted, result.deleted, result.rows_for_source)


if __name__ == "__main__":
    _main(*sys.argv[1:])

"""The document half with its storage home on local disk and on an S3-compatible server, side by side.

    .venv/bin/python benchmarks/object_store.py

Indexes the test corpus (Python's help topics, two sources) through index_job and publish_index_job in this process,
once with the home in a temp folder and once in a bucket of a moto server on loopback (what tests use; a real S3 or
MinIO adds network latency on top). Then it re-runs index_job on the unchanged docs source and times `llm-platform
search`'s table open and one hybrid query. The embedding model is loaded, and one whole untimed pass run on a scratch
folder, before any timing, so every figure is storage and pipeline work only. Needs the test extra (moto[server]).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg

from benchmarks.help_topics import TWO_SOURCE_CONFIG, write_two_source_corpus
from benchmarks.local_s3 import CREDENTIALS, running_s3_server
from llm_platform.automation.jobs import INDEX_JOB, PUBLISH_INDEX_JOB
from llm_platform.config import load_config
from llm_platform.definitions import build_definitions
from llm_platform.home_layout import lancedb_uri
from llm_platform.index.embedding import load_embedder
from llm_platform.index.table import connect, open_published, search, table_name
from llm_platform.storage_files import ENDPOINT_ENV

REPEATS = 3


def _run(defs: dg.Definitions, job: str, partition: str | None = None) -> float:
    started = time.perf_counter()
    result = defs.resolve_job_def(job).execute_in_process(
        partition_key=partition, instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success, f"{job} failed"
    return time.perf_counter() - started


def measure(config_path: Path, home: str) -> dict[str, float]:
    config = load_config(config_path)
    defs = build_definitions(config, home=home, executor="in_process")
    figures = {"index both sources, cold (s)": sum(_run(defs, INDEX_JOB, s) for s in config.source_names)}
    figures["publish_index_job (s)"] = _run(defs, PUBLISH_INDEX_JOB)
    figures["index docs unchanged, median (s)"] = statistics.median(
        _run(defs, INDEX_JOB, "docs") for _ in range(REPEATS)
    )
    embedder = load_embedder(config.embedding.model)
    timings = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        table = open_published(
            connect(lancedb_uri(home)),
            table_name(config.index.table, config.embedding.model),
            config.index.published_tag,
        )
        search(table, "iterate over a sequence", embedder.encode(["iterate over a sequence"])[0], mode="hybrid", k=5)
        timings.append(time.perf_counter() - started)
    figures["open served table + hybrid query, median (s)"] = statistics.median(timings)
    return figures


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_two_source_corpus(root / "corpus")
        (root / "platform.yaml").write_text(TWO_SOURCE_CONFIG, encoding="utf-8")
        load_embedder(load_config(root / "platform.yaml").embedding.model).encode(["warm-up"])
        (root / "warm-up").mkdir()
        measure(
            root / "platform.yaml", str(root / "warm-up")
        )  # first-run costs (tokenizer, Dagster, Lance) out of both columns
        (root / "home").mkdir()
        local = measure(root / "platform.yaml", str(root / "home"))
        with running_s3_server(root / "moto") as endpoint:
            os.environ.update({**CREDENTIALS, ENDPOINT_ENV: endpoint})
            import fsspec

            fsspec.filesystem("s3").mkdir("bench")
            remote = measure(root / "platform.yaml", "s3://bench/home")
    print(f"{'':<46}{'local folder':>14}{'S3 (moto)':>12}{'ratio':>8}")
    for name in local:
        print(f"{name:<46}{local[name]:>14.2f}{remote[name]:>12.2f}{remote[name] / local[name]:>8.2f}")


if __name__ == "__main__":
    main()

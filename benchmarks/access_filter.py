"""What searching as a reader group costs, and whether top-k stays full and right, with the ANN index built.

    .venv/bin/python benchmarks/access_filter.py                    # 6,000 rows, 10 groups, 50 queries
    .venv/bin/python benchmarks/access_filter.py --rows 20000 --queries 20

Rows are random unit vectors (no model needed) with texts of words drawn from
Python's help topics; each of `--groups` groups owns an equal share of the rows and
1% are public. The table is built through `sync_source` (so the configured vector
and full-text indexes exist). Per mode it prints p50 milliseconds searching as
everyone and as one group, the share of the group's searches that returned k rows,
and (vector) recall@10 of the group's search against the exact top-10 among the
rows that group may read.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_platform.config import IndexConfig
from llm_platform.index.access import ReaderGroups
from llm_platform.index.table import QueryTuning, connect, index_schema, open_table, search, sync_source

K = 10
DIMENSION = 64


def build(rows: int, groups: int, rng: np.random.Generator) -> tuple[object, np.ndarray, list[list[str]], list[str]]:
    words = " ".join(topics.values()).split()
    vectors = rng.normal(size=(rows, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    readers = [["*"] if i % 100 == 0 else [f"g{i % groups}"] for i in range(rows)]
    texts = [" ".join(rng.choice(words, size=40)) for _ in range(rows)]
    table = pa.table(
        {
            "chunk_id": [f"c{i}" for i in range(rows)],
            "doc_id": [f"d{i}" for i in range(rows)],
            "source": ["bench"] * rows,
            "locator": [f"{i}.md" for i in range(rows)],
            "title": [None] * rows,
            "heading": [None] * rows,
            "position": pa.array([0] * rows, pa.int32()),
            "text": texts,
            "text_hash": [f"h{i}" for i in range(rows)],
            "embedding_model": ["random"] * rows,
            "chunker_version": ["bench"] * rows,
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), DIMENSION),
            "readers": readers,
        },
        schema=index_schema(DIMENSION),
    )
    lance = open_table(connect(tempfile.mkdtemp(prefix="access-bench-")), "chunks__bench", DIMENSION)
    sync_source(lance, "bench", table, settings=IndexConfig())
    return lance, vectors, readers, texts


def p50(values: list[float]) -> float:
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=6_000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    table, vectors, readers, texts = build(args.rows, args.groups, rng)
    print(
        f"{args.rows} rows, {args.groups} groups, indexes "
        f"{[i.name for i in table.list_indices()]}, built in "
        f"{time.perf_counter() - started:.0f}s"
    )
    group = ReaderGroups.of({"g1"})
    readable = np.array([group.can_read(r) for r in readers])
    tuning = QueryTuning.from_config(IndexConfig())
    for mode in ("vector", "fts", "hybrid"):
        times: dict[str, list[float]] = {"everyone": [], "g1": []}
        full, recalls = 0, []
        for q in range(args.queries):
            vector = rng.normal(size=DIMENSION).astype(np.float32)
            vector /= np.linalg.norm(vector)
            query = " ".join(texts[q].split()[:3])
            for label, caller in (("everyone", ReaderGroups.everyone()), ("g1", group)):
                began = time.perf_counter()
                hits = search(
                    table, query, vector if mode != "fts" else None, mode=mode, k=K, tuning=tuning, readers=caller
                )
                times[label].append((time.perf_counter() - began) * 1000)
            full += len(hits) == K and all(group.can_read(readers[int(h["chunk_id"][1:])]) for h in hits)
            if mode == "vector":
                scores = np.where(readable, vectors @ vector, -np.inf)
                exact = {f"c{i}" for i in np.argsort(-scores)[:K]}
                recalls.append(len(exact & {h["chunk_id"] for h in hits}) / K)
        recall = f", recall@10 within g1 {statistics.fmean(recalls):.3f}" if recalls else ""
        print(
            f"{mode:>6}: p50 {p50(times['everyone']):.1f} ms as everyone, {p50(times['g1']):.1f} ms as g1; "
            f"g1 got {K} readable rows in {full}/{args.queries} searches{recall}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

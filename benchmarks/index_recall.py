"""Vector recall and query latency of the chunk table at 100,000 rows, per index type, against exact search.

    .venv/bin/python benchmarks/index_recall.py                      # 100,000 rows, 200 queries
    .venv/bin/python benchmarks/index_recall.py --rows 20000 --queries 50

The table is built through the project's own per-source sync (`sync_source`). Its
rows are real MiniLM embeddings of README passages (the long descriptions of the
packages installed in this environment, split into paragraphs) plus noisy copies of
them: each copy's vector is its passage's vector plus Gaussian noise, re-normalized,
and its text drops a few words, so near neighbours are as crowded as in a corpus
with many similar pages. Embedding every copy would take an hour on two cores; the
copies only need to sit near real vectors. Queries are held-out passages' first
sentences, embedded by the same model. Exact top-10 is a NumPy dot product over all
vectors; recall@10 is the overlap of each configuration's top-10 with it. Each
configuration rebuilds only the vector index (the rows and full-text index stay).
"""

from __future__ import annotations

import argparse
import email
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_platform.config import DEFAULT_EMBEDDING_MODEL, IndexConfig
from llm_platform.index.embedding import load_embedder
from llm_platform.index.table import QueryTuning, connect, index_schema, open_table, search, sync_source
from llm_platform.index.upkeep import maintain

SOURCES = 10
K = 10
# (label, index settings, query tuning): the starting point first, then the alternatives.
CONFIGURATIONS = [
    ("flat scan (no ANN index)", None, QueryTuning()),
    ("ivf_pq as built before (nprobes 20)", {"ann_index": "ivf_pq", "ann_sub_vectors": 24}, QueryTuning(nprobes=20)),
    (
        "ivf_pq, 48 sub-vectors, refine x10",
        {"ann_index": "ivf_pq", "ann_sub_vectors": 48},
        QueryTuning(nprobes=20, refine_factor=10),
    ),
    ("ivf_sq, nprobes 10", {"ann_index": "ivf_sq"}, QueryTuning(nprobes=10)),
    ("ivf_sq, nprobes 20", {"ann_index": "ivf_sq"}, QueryTuning(nprobes=20)),
    ("ivf_hnsw_sq, ef 100", {"ann_index": "ivf_hnsw_sq"}, QueryTuning(nprobes=20, ef=100)),
    ("ivf_hnsw_sq, ef 250", {"ann_index": "ivf_hnsw_sq"}, QueryTuning(nprobes=20, ef=250)),
]


def readme_passages(limit: int, seed: int) -> list[str]:
    """Paragraphs of 200-1200 characters from installed packages' README (long description) texts."""
    passages: set[str] = set()
    for metadata in sorted(Path(np.__file__).resolve().parents[1].glob("*.dist-info/METADATA")):
        body = email.message_from_string(metadata.read_text(encoding="utf-8", errors="replace")).get_payload()
        for paragraph in re.split(r"\n\s*\n", body if isinstance(body, str) else ""):
            text = " ".join(paragraph.split())
            if 200 <= len(text) <= 1200 and sum(c.isalpha() for c in text) > 0.6 * len(text):
                passages.add(text)
    ordered = sorted(passages)
    random.Random(seed).shuffle(ordered)
    return ordered[:limit]


def noisy_copies(
    texts: list[str], vectors: np.ndarray, total: int, noise: float, rng: np.random.Generator
) -> tuple[list[str], np.ndarray]:
    """`total` rows: the real ones, then copies whose vectors are perturbed and texts lose a few words."""
    picks = rng.integers(0, len(texts), size=total - len(texts))
    noisy = vectors[picks] + rng.normal(scale=noise, size=(len(picks), vectors.shape[1])).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    copy_texts = []
    for i in picks:
        words = texts[i].split()
        drop = set(rng.integers(0, len(words), size=max(1, len(words) // 10)).tolist())
        copy_texts.append(" ".join(w for j, w in enumerate(words) if j not in drop))
    return texts + copy_texts, np.vstack([vectors, noisy]).astype(np.float32)


def build_table(uri: str, texts: list[str], vectors: np.ndarray, settings: IndexConfig):
    """Sync the rows as SOURCES sources through sync_source; returns the table and the sync seconds."""
    table = open_table(connect(uri), "chunks__bench", vectors.shape[1])
    started = time.perf_counter()
    for s in range(SOURCES):
        idx = list(range(s, len(texts), SOURCES))
        source = f"source-{s}"
        rows = pa.table(
            {
                "chunk_id": [f"c{i}" for i in idx],
                "doc_id": [f"d{i % 5000}" for i in idx],
                "source": [source] * len(idx),
                "locator": [f"readme-{i}.md" for i in idx],
                "title": [None] * len(idx),
                "heading": [None] * len(idx),
                "position": pa.array([0] * len(idx), pa.int32()),
                "text": [texts[i] for i in idx],
                "text_hash": [f"h{i}" for i in idx],
                "embedding_model": [DEFAULT_EMBEDDING_MODEL] * len(idx),
                "chunker_version": ["bench"] * len(idx),
                "readers": [["*"]] * len(idx),
                "vector": pa.FixedSizeListArray.from_arrays(
                    pa.array(vectors[idx].reshape(-1), pa.float32()), vectors.shape[1]
                ),
            },
            schema=index_schema(vectors.shape[1]),
        )
        sync_source(table, source, rows, settings=settings)
    return table, time.perf_counter() - started


def timed(call) -> tuple[float, list]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def measure(table, queries: list[str], query_vectors: np.ndarray, exact: list[set[str]], tuning: QueryTuning) -> dict:
    """p50/p95 milliseconds per mode and mean recall@10 of vector search against exact."""
    times = {"vector": [], "fts": [], "hybrid": []}
    recalls = []
    for query, vector, truth in zip(queries, query_vectors, exact, strict=False):
        ms, hits = timed(lambda: search(table, query, vector, mode="vector", k=K, tuning=tuning))
        times["vector"].append(ms)
        recalls.append(len({h["chunk_id"] for h in hits} & truth) / K)
        times["fts"].append(timed(lambda: search(table, query, None, mode="fts", k=K))[0])
        times["hybrid"].append(timed(lambda: search(table, query, vector, mode="hybrid", k=K, tuning=tuning))[0])
    figures = {"recall@10": statistics.fmean(recalls)}
    for mode, values in times.items():
        values.sort()
        figures[f"{mode} p50"] = values[len(values) // 2]
        figures[f"{mode} p95"] = values[int(len(values) * 0.95) - 1]
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--passages", type=int, default=3000, help="real passages embedded (the rest are noisy copies)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--noise",
        type=float,
        default=0.03,
        help="per-dimension noise of a copy's vector (0.03 gives a cosine of about 0.86 to its passage)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--only", default="", help="comma-separated label prefixes to run (default: all), e.g. ivf_sq,ivf_hnsw"
    )
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    texts = readme_passages(args.passages + args.queries, args.seed)
    passages, held_out = texts[: len(texts) - args.queries], texts[len(texts) - args.queries :]
    embedder = load_embedder(DEFAULT_EMBEDDING_MODEL)
    started = time.perf_counter()
    vectors = embedder.encode(passages)
    queries = [re.split(r"(?<=[.!?])\s", t, maxsplit=1)[0][:200] for t in held_out]
    query_vectors = embedder.encode(queries)
    print(
        f"embedded {len(passages)} README passages and {len(queries)} queries in {time.perf_counter() - started:.0f}s"
    )
    all_texts, all_vectors = noisy_copies(passages, vectors, args.rows, args.noise, rng)
    ids = np.array([f"c{i}" for i in range(len(all_texts))])
    exact = [set(ids[np.argsort(-(all_vectors @ q))[:K]].tolist()) for q in query_vectors]
    with tempfile.TemporaryDirectory() as folder:
        base = IndexConfig(ann_min_rows=10**9)
        table, sync_seconds = build_table(f"{folder}/lancedb", all_texts, all_vectors, base)
        print(f"synced {table.count_rows()} rows as {SOURCES} sources through sync_source in {sync_seconds:.0f}s\n")
        print(
            f"{'configuration':<38} {'build s':>8} {'recall@10':>10} {'vec p50':>8} "
            f"{'vec p95':>8} {'fts p50':>8} {'hyb p50':>8} {'hyb p95':>8}"
        )
        chosen = [c for c in CONFIGURATIONS if not args.only or any(c[0].startswith(p) for p in args.only.split(","))]
        for label, index, tuning in chosen:
            settings = IndexConfig(ann_min_rows=10**9) if index is None else IndexConfig(ann_min_rows=256, **index)
            build_ms, report = timed(lambda: maintain(table, settings))
            if report.errors:
                print(f"{label}: upkeep failed: {report.errors}")
                continue
            f = measure(table, queries, query_vectors, exact, tuning)
            print(
                f"{label:<38} {build_ms / 1000:>8.1f} {f['recall@10']:>10.3f} "
                f"{f['vector p50']:>8.1f} {f['vector p95']:>8.1f} "
                f"{f['fts p50']:>8.1f} {f['hybrid p50']:>8.1f} {f['hybrid p95']:>8.1f}"
            )
    print("\nlatencies in ms; targets: recall@10 >= 0.95 at vector p50 <= 10 ms, hybrid p50 <= 20 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Query drift: how far the questions people ask moved from what the corpus covers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from llm_platform.index.drift import centroid_distance

CORPUS_SAMPLE_ROWS = 5000
LOG_SCHEMA = pa.schema(
    [
        ("logged_at", pa.float64()),
        ("id", pa.string()),
        ("question", pa.large_string()),
        ("answer", pa.large_string()),
        ("citations", pa.list_(pa.string())),
        ("cached", pa.bool_()),
        ("latency_ms", pa.float64()),
        ("index_version", pa.int64()),
        ("adapter_version", pa.string()),
        ("prompt_version", pa.string()),
        ("pii_redacted", pa.int64()),
    ]
)


@dataclass(frozen=True)
class QueryDrift:
    distance: float
    threshold: float
    questions: int
    corpus_rows: int

    @property
    def drifted(self) -> bool:
        return self.distance > self.threshold


def measure_query_drift(question_vectors: np.ndarray, corpus_vectors: np.ndarray, *, threshold: float) -> QueryDrift:
    """Cosine distance between the mean question vector and the mean corpus vector."""
    return QueryDrift(
        centroid_distance(corpus_vectors, question_vectors), threshold, len(question_vectors), len(corpus_vectors)
    )


def corpus_vectors(table, limit: int = CORPUS_SAMPLE_ROWS) -> np.ndarray:
    """Up to `limit` chunk vectors of the served table version."""
    found = table.search().select(["vector"]).limit(limit).to_arrow()
    if found.num_rows == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack(found.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32)


def log_table(records: list[dict]) -> pa.Table:
    """The query log records as rows of LOG_SCHEMA (fields a record lacks are null)."""
    rows = [{name: record.get(name) for name in LOG_SCHEMA.names} for record in records]
    for row in rows:
        row["adapter_version"] = None if row["adapter_version"] is None else str(row["adapter_version"])
    return pa.Table.from_pylist(rows, schema=LOG_SCHEMA)

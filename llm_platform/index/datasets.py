"""The index datasets, each declared once: its name on disk, schema and partitioning."""

import pyarrow as pa

from llm_platform.datasets import Dataset

RETRIEVAL_EVAL_SCHEMA = pa.schema(
    [
        ("table", pa.string()),
        ("version", pa.int64()),
        ("hit_rate", pa.float64()),
        ("mrr", pa.float64()),
        ("k", pa.int64()),
        ("questions", pa.int64()),
        ("published_version", pa.int64()),
        ("published_hit_rate", pa.float64()),
        ("compared_with", pa.string()),
    ]
)
PUBLICATION_SCHEMA = pa.schema(
    [
        ("table", pa.string()),
        ("version", pa.int64()),
        ("action", pa.string()),
        ("at", pa.string()),
        ("hit_rate", pa.float64()),
        ("mrr", pa.float64()),
        ("k", pa.int64()),
        ("questions", pa.int64()),
        ("previous_version", pa.int64()),
        ("compared_with", pa.string()),
        ("run_id", pa.string()),
    ]
)

# Per source, like chunks; no declared schema because the vector width is the embedding model's.
EMBEDDINGS_DATA = Dataset("embeddings", partitioned=True)
RETRIEVAL_EVAL_DATA = Dataset("retrieval_eval", RETRIEVAL_EVAL_SCHEMA)
# Per LanceDB table: the log of tag moves (publish, rollback) with the scores behind each.
PUBLICATIONS_DATA = Dataset("index_publications", PUBLICATION_SCHEMA, partitioned=True)

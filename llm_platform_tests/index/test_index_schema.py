"""The index table's columns come from the chunk rows' schema, in the order tables already on disk have."""

import pyarrow as pa

from llm_platform.documents.chunk_table import CHUNK_SCHEMA
from llm_platform.index.table import index_schema

# The columns of index tables written before the schema was derived from CHUNK_SCHEMA.
WRITTEN_TABLES = pa.schema(
    [
        ("chunk_id", pa.string()),
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("locator", pa.string()),
        ("title", pa.string()),
        ("heading", pa.string()),
        ("position", pa.int32()),
        ("text", pa.large_string()),
        ("text_hash", pa.string()),
        ("embedding_model", pa.string()),
        ("chunker_version", pa.string()),
        ("vector", pa.list_(pa.float32(), 4)),
        ("readers", pa.list_(pa.string())),
    ]
)


def test_the_index_schema_matches_tables_already_written():
    assert index_schema(4) == WRITTEN_TABLES


def test_every_chunk_column_the_index_carries_has_the_chunk_type():
    schema = index_schema(4)
    shared = [name for name in schema.names if name in CHUNK_SCHEMA.names]
    assert shared and all(schema.field(name).type == CHUNK_SCHEMA.field(name).type for name in shared)


def test_the_vector_width_is_the_dimension_asked_for():
    assert index_schema(384).field("vector").type == pa.list_(pa.float32(), 384)

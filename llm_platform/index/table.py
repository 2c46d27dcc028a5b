"""The LanceDB chunk table: per-source sync, index upkeep, publishing and search.

One table per embedding model (a new model is a new key space). Each source owns
the rows whose `source` column equals its name. A sync inserts new chunks before
deleting gone ones, so a failure part-way leaves the source with extra rows, never
fewer. Readers use a Lance tag (`production` by default) that moves only when the
retrieval checks pass; rollback is moving the tag back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pyarrow as pa

from llm_platform.index import SEARCH_MODES
from llm_platform.index.embedding import model_slug

_DELETE_BATCH = 500
_CLEANUP_AFTER = timedelta(days=7)


def index_schema(dimension: int) -> pa.Schema:
    """Columns of the chunk table for vectors of `dimension`."""
    return pa.schema(
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
            ("vector", pa.list_(pa.float32(), dimension)),
        ]
    )


def table_name(base: str, model_id: str) -> str:
    """The table for one embedding model, e.g. `chunks__sentence_transformers_all_minilm_l6_v2`."""
    return f"{base}__{model_slug(model_id)}"


def connect(uri: str) -> "lancedb.DBConnection":
    """Open the LanceDB database at `uri` (a folder or object-store URL)."""
    import lancedb

    from llm_platform.storage_files import lance_storage_options

    return lancedb.connect(uri, storage_options=lance_storage_options(uri) or None)


def open_table(db: "lancedb.DBConnection", name: str, dimension: int | None = None):
    """Open `name`, creating it empty when a dimension is given and it does not exist."""
    if name in db.list_tables().tables:
        return db.open_table(name)
    if dimension is None:
        raise LookupError(f"LanceDB table {name!r} does not exist yet: materialize vector_index first")
    return db.create_table(name, schema=index_schema(dimension))


@dataclass(frozen=True)
class SourceSync:
    """What one source's sync did to the table."""

    inserted: int
    deleted: int
    unchanged: int
    rows_for_source: int
    version: int
    indexes: list[str]


def source_chunk_ids(table, source: str) -> set[str]:
    """The chunk ids the table holds for `source`."""
    found = table.search().where(f"source = '{source}'").select(["chunk_id"]).limit(None).to_arrow()
    return set(found.column("chunk_id").to_pylist())


def sync_source(table, source: str, rows: pa.Table, *, ann_min_rows: int) -> SourceSync:
    """Make the table's rows for `source` equal `rows` (insert new first, then delete gone)."""
    existing = source_chunk_ids(table, source)
    wanted = set(rows.column("chunk_id").to_pylist())
    new_mask = pa.array([cid not in existing for cid in rows.column("chunk_id").to_pylist()], type=pa.bool_())
    fresh = rows.filter(new_mask) if rows.num_rows else rows
    if fresh.num_rows:
        table.merge_insert("chunk_id").when_matched_update_all().when_not_matched_insert_all().execute(fresh.cast(table.schema))
    gone = sorted(existing - wanted)
    for start in range(0, len(gone), _DELETE_BATCH):
        ids = ", ".join(f"'{cid}'" for cid in gone[start : start + _DELETE_BATCH])
        table.delete(f"source = '{source}' AND chunk_id IN ({ids})")
    if fresh.num_rows or gone:
        maintain_indexes(table, ann_min_rows=ann_min_rows)
    return SourceSync(
        inserted=fresh.num_rows,
        deleted=len(gone),
        unchanged=len(wanted & existing),
        rows_for_source=table.count_rows(f"source = '{source}'"),
        version=table.version,
        indexes=[i.name for i in table.list_indices()],
    )


def maintain_indexes(table, *, ann_min_rows: int) -> None:
    """Create missing FTS/ANN indexes, fold new rows into existing ones, and compact."""
    from lancedb.index import FTS, IvfPq

    names = {i.index_type: i.name for i in table.list_indices()}
    if "FTS" not in names and table.count_rows():
        table.create_index("text", config=FTS())
    rows = table.count_rows()
    if not any(kind.startswith("IVF") for kind in names) and rows >= ann_min_rows:
        partitions = max(1, int(rows**0.5))
        table.create_index("vector", config=IvfPq(distance_type="cosine", num_partitions=partitions))
    table.optimize(cleanup_older_than=_CLEANUP_AFTER)


def published_version(table, tag: str) -> int | None:
    """The version readers are served, or None if nothing was published."""
    tags = table.tags.list()
    return tags[tag]["version"] if tag in tags else None


def publish(table, tag: str, version: int) -> int | None:
    """Point `tag` at `version`; returns the version it pointed at before."""
    previous = published_version(table, tag)
    if previous is None:
        table.tags.create(tag, version)
    else:
        table.tags.update(tag, version)
    return previous


def open_published(db: "lancedb.DBConnection", name: str, tag: str):
    """The table as readers see it: checked out at `tag`."""
    table = open_table(db, name)
    if published_version(table, tag) is None:
        raise LookupError(
            f"LanceDB table {name!r} has no {tag!r} tag yet: materialize published_index "
            "(it moves the tag once the retrieval checks pass), or pass --latest"
        )
    table.checkout(tag)
    return table


def search(table, query: str, vector: np.ndarray | None, *, mode: str, k: int, where: str | None = None) -> list[dict]:
    """Top-k rows for `query` by vector, full-text or hybrid (reciprocal rank fusion)."""
    if mode not in SEARCH_MODES:
        raise ValueError(f"search mode {mode!r} is not one of {', '.join(SEARCH_MODES)}")
    if mode == "vector":
        builder = table.search(vector, vector_column_name="vector").distance_type("cosine")
    elif mode == "fts":
        builder = table.search(query, query_type="fts")
    else:
        builder = table.search(query_type="hybrid").vector(vector).text(query)
    if where:
        builder = builder.where(where, prefilter=True)
    # Lance warns unless the score column is selected; hybrid runs two sub-queries with
    # different score columns, so it selects nothing and drops the vectors afterwards.
    columns = ["chunk_id", "doc_id", "source", "locator", "title", "heading", "text"]
    if mode != "hybrid":
        builder = builder.select(columns + ["_distance" if mode == "vector" else "_score"])
    hits = builder.limit(k).to_list()
    return [{**{c: hit[c] for c in columns}, "score": _score(hit)} for hit in hits]


def _score(hit: dict) -> float:
    if "_relevance_score" in hit:
        return float(hit["_relevance_score"])
    if "_distance" in hit:
        return 1.0 - float(hit["_distance"])
    return float(hit.get("_score", 0.0))


def ranked_ids(table, queries: Sequence[str], vectors: np.ndarray, *, k: int, field: str = "doc_id") -> list[list[str]]:
    """For each query, the `field` (doc_id or chunk_id) of the top-k vector hits, best first."""
    return [[hit[field] for hit in search(table, q, v, mode="vector", k=k)] for q, v in zip(queries, vectors)]

"""The LanceDB chunk table: per-source sync, the served tag and search.

One table per embedding model and vector space (a new model, or int8 vectors, is a
new key space: never a table that mixes spaces). Each source owns
the rows whose `source` column equals its name, and each shard of a source the
rows of that source in its range of doc_id. A source's sync is one commit: a
merge_insert that inserts the new chunks and deletes the source's gone ones, so a
reader of any version sees a source either before or after a sync, never half, and
a failure part-way leaves the previous version whole. Concurrent syncs of one
source cannot duplicate a chunk (the merge re-checks its key when it retries a
conflicting commit), and copies left by older code are removed by the next sync.
Readers use a Lance tag (`production` by default) that moves only when the
retrieval checks pass; rollback is moving the tag back.

Each row carries the reader groups that may read it (`readers`, see
llm_platform.readers); a sync updates the rows whose readers alone changed in place
(same chunk, same vector), and every search is limited to the caller's rows inside
the search (llm_platform.index.access).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from llm_platform.config import IndexConfig, PlatformConfig
from llm_platform.documents.chunk_table import CHUNK_SCHEMA
from llm_platform.index import SEARCH_MODES
from llm_platform.index.access import PUBLIC_ONLY, ReaderGroups, readers_filter
from llm_platform.index.embedding import VECTOR_SPACES, embedding_space, model_slug
from llm_platform.index.upkeep import UpkeepReport, index_health, maintain, retry_on_conflict
from llm_platform.lance_database import connect  # noqa: F401  (the index's callers open the database through here)
from llm_platform.shards import Shard

if TYPE_CHECKING:
    import lancedb

# Chunk columns that serve only re-chunking (token limits, unchanged documents); search never reads them.
_CHUNK_ONLY_COLUMNS = ("token_count", "doc_content_hash")
_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# How long a new, never-written table is left alone before the first rows go in (see open_table).
CREATE_SETTLE_SECONDS = 2.0


def index_schema(dimension: int) -> pa.Schema:
    """Columns of the index table for vectors of `dimension`: the chunk rows' (CHUNK_SCHEMA) with the embedding model
    and the vector.

    The order is that of tables already written, so a table opened from disk and new rows agree.
    """
    schema = CHUNK_SCHEMA
    for name in _CHUNK_ONLY_COLUMNS:
        schema = schema.remove(schema.get_field_index(name))
    schema = schema.insert(schema.get_field_index("chunker_version"), pa.field("embedding_model", pa.string()))
    # Before readers: readers is last, where adding it to a table written before access control puts it.
    return schema.insert(schema.get_field_index("readers"), pa.field("vector", pa.list_(pa.float32(), dimension)))


def table_name(base: str, model_id: str, space: str = "") -> str:
    """The table for one embedding model and vector space, e.g. `chunks__sentence_transformers_all_minilm_l6_v2`.

    fp32's space (also fp16's) keeps the plain name, the name of tables written before
    spaces existed; another space is a suffix: `...__onnx_int8`.
    """
    return f"{base}__{model_slug(model_id)}" + (f"__{space}" if space else "")


def space_of(name: str) -> str:
    """The vector space a table name carries ('' for fp32's)."""
    return next((space for space in VECTOR_SPACES if space and name.endswith(f"__{space}")), "")


def configured_table_name(config: PlatformConfig) -> str:
    """The table the configured model and backend write and serve."""
    return table_name(config.index.table, config.embedding.model, embedding_space(config.embedding))


def open_table(db: lancedb.DBConnection, name: str, dimension: int | None = None):
    """Open `name`, creating it empty when a dimension is given and it does not exist."""
    if name in db.list_tables().tables:
        return db.open_table(name)
    if dimension is None:
        raise LookupError(f"LanceDB table {name!r} does not exist yet: materialize vector_index first")
    # exist_ok: two sources' first syncs may race to create the table.
    table = db.create_table(name, schema=index_schema(dimension), exist_ok=True)
    _settle_if_new(table)
    return table


def _settle_if_new(table) -> None:
    """Wait out the create race before a never-written table takes its first rows.

    Lance commits the loser of a create race as an Overwrite at the next version, and an
    Overwrite replaces whatever came before it: rows synced into the table in between
    would be wiped. Creators commit within milliseconds of finding no table, so a table
    that has never held a row is left alone for CREATE_SETTLE_SECONDS (once, on a
    fresh table; no clocks are compared, so pods with skewed clocks agree), then read
    at its latest version. A commit that still meets such an Overwrite retries on the
    latest version (sync_source).
    """
    if table.count_rows() == 0 and all(v["metadata"].get("total_rows", "0") == "0" for v in table.list_versions()):
        time.sleep(CREATE_SETTLE_SECONDS)
        table.checkout_latest()


class SearchInputError(ValueError):
    """A search request a person got wrong: the message says what to change."""


def source_filter(source: str):
    """The filter for one source's rows, built as an expression (never by pasting text into SQL)."""
    from lancedb.expr import col, lit

    if not isinstance(source, str) or not _SOURCE_NAME.match(source):
        raise SearchInputError(f"{source!r} is not a source name (lowercase letters, digits, '-' or '_')")
    return col("source") == lit(source)


def owned_filter(owner: str | Shard):
    """The filter for the rows a source, or one shard of it, owns: its `source`, and for a shard its range of doc_id."""
    from lancedb.expr import col, lit

    shard = owner if isinstance(owner, Shard) else Shard(owner)
    condition = source_filter(shard.source)
    lowest, end = shard.doc_id_range()
    if lowest is not None:
        condition = condition & (col("doc_id") >= lit(lowest))
    if end is not None:
        condition = condition & (col("doc_id") < lit(end))
    return condition


@dataclass(frozen=True)
class SourceSync:
    """What one source's sync did to the table."""

    inserted: int
    deleted: int
    unchanged: int
    rows_for_source: int
    version: int
    indexes: list[str]
    duplicates_removed: int = 0
    readers_updated: int = 0
    upkeep: UpkeepReport = field(default_factory=UpkeepReport)


def _source_ids(table, source: str | Shard) -> pa.Table:
    query = table.search().where(owned_filter(source)).with_row_id(True).select(["chunk_id", "readers"]).limit(None)
    return query.to_arrow()


def source_chunk_ids(table, source: str | Shard) -> set[str]:
    """The chunk ids the table holds for `source` (or one shard of it)."""
    return set(_source_ids(table, source).column("chunk_id").to_pylist())


def _duplicate_row_ids(found: pa.Table) -> list[int]:
    seen: set[str] = set()
    extra = []
    for chunk_id, row_id in zip(found.column("chunk_id").to_pylist(), found.column("_rowid").to_pylist(), strict=False):
        if chunk_id in seen:
            extra.append(row_id)
        seen.add(chunk_id)
    return extra


def add_readers_column(table) -> bool:
    """Give a table written before access control its `readers` column (empty: read by nobody until synced)."""
    if "readers" in table.schema.names:
        return False
    table.add_columns(pa.field("readers", pa.list_(pa.string())))
    return True


def _readers_changed(found: pa.Table, rows: pa.Table) -> set[str]:
    """Chunks already in the table whose readers differ from `rows`' (a readers-only change: no new vector)."""
    before = dict(zip(found.column("chunk_id").to_pylist(), found.column("readers").to_pylist(), strict=True))
    after = zip(rows.column("chunk_id").to_pylist(), rows.column("readers").to_pylist(), strict=True)
    return {chunk_id for chunk_id, readers in after if chunk_id in before and before[chunk_id] != readers}


def commit_source(table, source: str | Shard, rows: pa.Table) -> None:
    """One commit: insert `rows` the table lacks, update the readers of rows whose readers
    changed, delete the source's (or shard's) rows that `rows` lacks.
    """
    merge = (
        table.merge_insert("chunk_id")
        .when_matched_update_all(where="target.readers IS NULL OR target.readers <> source.readers")
        .when_not_matched_insert_all()
        .when_not_matched_by_source_delete(owned_filter(source))
    )
    merge.execute(rows.select(table.schema.names).cast(table.schema))


def remove_duplicates(table, row_ids: list[int]) -> None:
    """Delete the extra copies of chunks (by row id, so one copy of each stays)."""
    for start in range(0, len(row_ids), 1000):
        table.delete(f"_rowid IN ({', '.join(str(int(r)) for r in row_ids[start : start + 1000])})")


def sync_source(table, source: str | Shard, rows: pa.Table, *, settings: IndexConfig) -> SourceSync:
    """Make the table's rows for `source` (or one shard of it) equal `rows` in one commit, then keep its indexes up to
    date.

    A shard's commit touches only the rows in its range of doc_id; the rows of the
    source's other shards are neither read nor deleted.
    """
    attempts = settings.write_attempts
    add_readers_column(table)
    found = _source_ids(table, source)
    existing = set(found.column("chunk_id").to_pylist())
    wanted = set(rows.column("chunk_id").to_pylist())
    fresh, gone, regranted = wanted - existing, existing - wanted, _readers_changed(found, rows)
    if fresh or gone or regranted:
        retry_on_conflict(lambda: commit_source(table, source, rows), attempts=attempts, refresh=table.checkout_latest)
        table.checkout_latest()
        if table.count_rows(owned_filter(source).to_sql()) < len(wanted):
            # A late Overwrite (the loser of the create race, see _settle_if_new) replaced our rows: commit them again.
            retry_on_conflict(
                lambda: commit_source(table, source, rows), attempts=attempts, refresh=table.checkout_latest
            )
    duplicates = _duplicate_row_ids(_source_ids(table, source)) if (fresh or len(existing) < found.num_rows) else []
    if duplicates:
        retry_on_conflict(
            lambda: remove_duplicates(table, duplicates), attempts=attempts, refresh=table.checkout_latest
        )
    upkeep = UpkeepReport()
    if fresh or gone or regranted or duplicates or index_health(table, settings).needs_upkeep:
        upkeep = maintain(table, settings)
    return SourceSync(
        inserted=len(fresh),
        deleted=len(gone),
        unchanged=len(wanted & existing) - len(regranted),
        readers_updated=len(regranted),
        rows_for_source=table.count_rows(owned_filter(source).to_sql()),
        version=table.version,
        indexes=[i.name for i in table.list_indices()],
        duplicates_removed=len(duplicates),
        upkeep=upkeep,
    )


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


def open_published(db: lancedb.DBConnection, name: str, tag: str):
    """The table as readers see it: checked out at `tag`."""
    table = open_table(db, name)
    if published_version(table, tag) is None:
        raise LookupError(
            f"LanceDB table {name!r} has no {tag!r} tag yet: materialize published_index "
            "(it moves the tag once the retrieval checks pass), or pass --latest"
        )
    table.checkout(tag)
    return table


@dataclass(frozen=True)
class QueryTuning:
    """How hard a vector query searches the ANN index (ignored by a flat scan)."""

    nprobes: int = 20
    refine_factor: int | None = None
    ef: int = 250

    @classmethod
    def from_config(cls, config: IndexConfig) -> QueryTuning:
        return cls(nprobes=config.nprobes, refine_factor=config.refine_factor, ef=config.ef)


def check_search_input(query: str, vector: np.ndarray | None, *, mode: str, k: int) -> None:
    """Raise SearchInputError naming what is wrong with a search request."""
    if mode not in SEARCH_MODES:
        raise SearchInputError(f"search mode {mode!r} is not one of {', '.join(SEARCH_MODES)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise SearchInputError(f"k (the number of results) must be a whole number of at least 1, got {k!r}")
    if mode != "vector" and not (query or "").strip():
        raise SearchInputError(f"the query is empty: {mode} search needs words to look for")
    if mode != "fts" and vector is None:
        raise SearchInputError(f"{mode} search needs the query's vector")


def _tuned(builder, tuning: QueryTuning):
    builder = builder.nprobes(tuning.nprobes).ef(tuning.ef)
    return builder.refine_factor(tuning.refine_factor) if tuning.refine_factor else builder


def search_filter(source: str | None, where, readers: ReaderGroups):
    """The one prefilter of a search: the caller's readable rows, and `source` or `where` if given."""
    condition = source_filter(source) if source is not None else where
    allowed = readers_filter(readers)
    if allowed is None:
        return condition
    if condition is None:
        return allowed
    return f"({allowed}) AND ({condition if isinstance(condition, str) else condition.to_sql()})"


def search(
    table,
    query: str,
    vector: np.ndarray | None,
    *,
    mode: str,
    k: int,
    source: str | None = None,
    where=None,
    tuning: QueryTuning | None = None,
    readers: ReaderGroups = PUBLIC_ONLY,
) -> list[dict]:
    """Top-k rows for `query` by vector, full-text or hybrid (reciprocal rank fusion), among the rows `readers` may
    read.

    `readers` defaults to public rows only, so a caller that forgets it fails closed;
    `ReaderGroups.everyone()` is for evaluation and operators. `source` limits results
    to one source; `where` takes a filter the caller built itself (never pass text a
    person typed: use `source`).
    """
    check_search_input(query, vector, mode=mode, k=k)
    tuning = tuning or QueryTuning()
    if mode == "vector":
        builder = _tuned(table.search(vector, vector_column_name="vector").distance_type("cosine"), tuning)
    elif mode == "fts":
        builder = table.search(query, query_type="fts")
    else:
        from lancedb.rerankers import RRFReranker

        # Cosine like the vector mode and the ANN index; "all" keeps each side's score beside the fused one.
        hybrid = table.search(query_type="hybrid").vector(vector).text(query).distance_type("cosine")
        builder = _tuned(hybrid.rerank(RRFReranker(return_score="all")), tuning)
    condition = search_filter(source, where, readers)
    if condition is not None:
        builder = builder.where(condition, prefilter=True)
    # Lance warns unless the score column is selected; hybrid runs two sub-queries with
    # different score columns, so it selects nothing and drops the vectors afterwards.
    columns = ["chunk_id", "doc_id", "source", "locator", "title", "heading", "text"]
    if mode != "hybrid":
        builder = builder.select([*columns, "_distance" if mode == "vector" else "_score"])
    hits = builder.limit(k).to_list()
    return [{**{c: hit[c] for c in columns}, **_scores(hit)} for hit in hits]


def _scores(hit: dict) -> dict[str, float | None]:
    """`score` ranks the hits (fused rank score, similarity or BM25); `similarity`
    and `keyword` are None where a side did not find the hit.
    """
    similarity = 1.0 - float(hit["_distance"]) if hit.get("_distance") is not None else None
    keyword = float(hit["_score"]) if hit.get("_score") is not None else None
    if hit.get("_relevance_score") is not None:
        score = float(hit["_relevance_score"])
    else:
        score = similarity if similarity is not None else (keyword or 0.0)
    return {"score": score, "similarity": similarity, "keyword": keyword}


def ranked_ids(
    table,
    queries: Sequence[str],
    vectors: np.ndarray,
    *,
    k: int,
    readers: ReaderGroups,
    field: str = "doc_id",
    tuning: QueryTuning | None = None,
) -> list[list[str]]:
    """For each query, the `field` (doc_id or chunk_id) of the top-k vector hits `readers` may read, best first."""
    return [
        [hit[field] for hit in search(table, q, v, mode="vector", k=k, tuning=tuning, readers=readers)]
        for q, v in zip(queries, vectors, strict=False)
    ]

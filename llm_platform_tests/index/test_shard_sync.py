"""A shard's sync owns the rows of its source in its range of doc_id, and no other row."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from llm_platform.identity import doc_id_for
from llm_platform.index.table import source_chunk_ids, sync_source
from llm_platform.shards import Shard, shards_of
from llm_platform_tests.index.tables import SETTINGS, rows, topic_slice

SOURCE = "wiki"
NAMES = topic_slice(0, 24)


def source_rows(source: str, names) -> pa.Table:
    """Chunk rows whose doc ids are real document ids (hashes of source and file), as the pipeline writes them."""
    table = rows(source, names)
    doc_ids = pa.array([doc_id_for(source, f"{name}.md") for name in names], pa.string())
    return table.set_column(table.schema.get_field_index("doc_id"), "doc_id", doc_ids)


def owned_by(shard: Shard, table: pa.Table) -> pa.Table:
    return table.filter(pa.array([shard.owns(d) for d in table.column("doc_id").to_pylist()]))


def ids(table: pa.Table) -> set[str]:
    return set(table.column("chunk_id").to_pylist())


def test_shards_together_write_the_same_rows_as_the_whole_source(table, db):
    everything = source_rows(SOURCE, NAMES)
    for shard in shards_of(SOURCE, 3):
        result = sync_source(table, shard, owned_by(shard, everything), settings=SETTINGS)
        assert result.rows_for_source == owned_by(shard, everything).num_rows
    assert source_chunk_ids(table, SOURCE) == ids(everything)


def test_a_shard_that_lost_its_documents_deletes_only_its_own_rows(table):
    everything = source_rows(SOURCE, NAMES)
    first, second = shards_of(SOURCE, 2)
    sync_source(table, first, owned_by(first, everything), settings=SETTINGS)
    sync_source(table, second, owned_by(second, everything), settings=SETTINGS)
    result = sync_source(table, first, owned_by(first, everything).slice(0, 0), settings=SETTINGS)
    assert result.deleted == owned_by(first, everything).num_rows
    assert source_chunk_ids(table, SOURCE) == ids(owned_by(second, everything))


def test_a_shard_leaves_other_sources_rows_alone(table):
    sync_source(table, "notes", rows("notes", topic_slice(30, 33)), settings=SETTINGS)
    shard = Shard(SOURCE, 0, 2)
    sync_source(table, shard, owned_by(shard, source_rows(SOURCE, NAMES)), settings=SETTINGS)
    sync_source(table, shard, owned_by(shard, source_rows(SOURCE, NAMES)).slice(0, 0), settings=SETTINGS)
    assert source_chunk_ids(table, "notes") == ids(rows("notes", topic_slice(30, 33)))


def test_resharding_a_source_inserts_and_deletes_no_row(table):
    everything = source_rows(SOURCE, NAMES)
    for shard in shards_of(SOURCE, 2):
        sync_source(table, shard, owned_by(shard, everything), settings=SETTINGS)
    version = table.version
    for shard in shards_of(SOURCE, 3):
        result = sync_source(table, shard, owned_by(shard, everything), settings=SETTINGS)
        assert (result.inserted, result.deleted) == (0, 0)
    assert table.version == version and source_chunk_ids(table, SOURCE) == ids(everything)


def test_a_shard_row_count_is_its_range_of_the_source(table):
    everything = source_rows(SOURCE, NAMES)
    sync_source(table, SOURCE, everything, settings=SETTINGS)
    shard = Shard(SOURCE, 2, 3)
    owned = owned_by(shard, everything)
    assert 0 < owned.num_rows < everything.num_rows
    assert source_chunk_ids(table, shard) == ids(owned)
    assert pc.all(pc.equal(owned.column("source"), SOURCE)).as_py()

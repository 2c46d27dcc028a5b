"""Upkeep survives a served tag older than the cleanup window, keeps tagged versions, and follows index settings."""

from __future__ import annotations

import time
from datetime import timedelta

import pyarrow as pa
import pytest

from llm_platform.config import IndexConfig
from llm_platform.index.table import QueryTuning, index_schema, publish, search, sync_source
from llm_platform.index.upkeep import ann_index_name, fts_index_name, index_health, maintain
from llm_platform_tests.index.tables import DIMENSION, SETTINGS, TAG, rows, topic_slice, unit_vector

WINDOW = timedelta(seconds=1)


def versions(table) -> set[int]:
    return {v["version"] for v in table.list_versions()}


@pytest.fixture
def old_tag(table):
    """A table whose served tag points at a version older than a one-second
    cleanup window, with writes before and after it.
    """
    sync_source(table, "docs", rows("docs", topic_slice(0, 5)), settings=SETTINGS)
    table.early_versions = versions(table)  # written well before the tagged version
    time.sleep(1.5)  # cleanup keeps a second's margin before the oldest tagged version
    sync_source(table, "docs", rows("docs", topic_slice(0, 10)), settings=SETTINGS)
    served = table.version
    publish(table, TAG, served)
    time.sleep(1.5)
    sync_source(table, "docs", rows("docs", topic_slice(0, 15)), settings=SETTINGS)
    return served


def test_lancedb_cleanup_alone_fails_once_the_served_tag_is_older_than_the_window(table, old_tag):
    with pytest.raises(RuntimeError, match="tagged version"):
        table.optimize(cleanup_older_than=WINDOW)


def test_upkeep_with_a_served_tag_older_than_the_window_still_compacts_and_cleans_up(table, old_tag):
    table.add(rows("docs", topic_slice(20, 25)))  # unindexed rows for upkeep to fold in
    report = maintain(table, SETTINGS, cleanup_after=WINDOW)
    assert report.ok, report.errors
    assert report.compacted and report.cleaned_up and report.versions_removed > 0
    assert index_health(table, SETTINGS).unindexed[fts_index_name(SETTINGS)] == 0


def test_cleanup_keeps_the_tagged_version_and_removes_the_untagged_older_ones(table, old_tag):
    maintain(table, SETTINGS, cleanup_after=WINDOW)
    after = versions(table)
    assert old_tag in after and max(after) > old_tag
    assert not table.early_versions & after


def test_the_tagged_version_still_answers_after_cleanup(table, db, old_tag):
    maintain(table, SETTINGS, cleanup_after=WINDOW)
    served = db.open_table(table.name)
    served.checkout(TAG)
    assert served.count_rows() == 10 and search(served, "statement", None, mode="fts", k=1)


def test_code_keywords_are_findable_with_the_default_tokenizer(table):
    sync_source(table, "docs", rows("docs", ["with", "for", "while", "if"]), settings=SETTINGS)
    assert search(table, "with statement", None, mode="fts", k=1)[0]["locator"] == "with.md"


def test_removing_stop_words_is_a_setting_and_then_with_is_not_indexed(table):
    english = IndexConfig(ann_min_rows=5000, fts_remove_stop_words=True)
    sync_source(table, "docs", rows("docs", ["with", "for", "while", "if"]), settings=english)
    assert search(table, "with", None, mode="fts", k=1) == []


def test_changing_tokenizer_settings_rebuilds_the_full_text_index(table):
    sync_source(
        table,
        "docs",
        rows("docs", ["with", "for"]),
        settings=IndexConfig(ann_min_rows=5000, fts_remove_stop_words=True),
    )
    result = sync_source(table, "docs", rows("docs", ["with", "for"]), settings=SETTINGS)
    assert result.indexes == [fts_index_name(SETTINGS)]
    assert search(table, "with", None, mode="fts", k=1)[0]["locator"] == "with.md"


def synthetic_rows(count: int) -> pa.Table:
    base = rows("docs", topic_slice(0, 1)).to_pylist()[0]
    records = [
        {**base, "chunk_id": f"docs-{i}", "doc_id": f"doc-{i}", "vector": unit_vector(f"docs-{i}").tolist()}
        for i in range(count)
    ]
    return pa.Table.from_pylist(records, schema=index_schema(DIMENSION))


@pytest.mark.parametrize("kind", ["ivf_sq", "ivf_pq", "ivf_hnsw_sq"])
def test_the_configured_vector_index_is_built_and_finds_the_nearest_row(table, kind):
    settings = IndexConfig(ann_min_rows=256, ann_index=kind)
    result = sync_source(table, "docs", synthetic_rows(300), settings=settings)
    assert ann_index_name(settings) in result.indexes and result.upkeep.ok
    hit = search(table, "", unit_vector("docs-42"), mode="vector", k=1, tuning=QueryTuning(nprobes=50, refine_factor=5))
    assert hit[0]["chunk_id"] == "docs-42"


def test_changing_the_vector_index_type_replaces_the_old_index(table):
    sync_source(table, "docs", synthetic_rows(300), settings=IndexConfig(ann_min_rows=256, ann_index="ivf_sq"))
    settings = IndexConfig(ann_min_rows=256, ann_index="ivf_pq")
    result = sync_source(table, "docs", synthetic_rows(300), settings=settings)
    assert sorted(result.indexes) == sorted([ann_index_name(settings), fts_index_name(settings)])

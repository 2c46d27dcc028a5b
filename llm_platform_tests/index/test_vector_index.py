"""The LanceDB chunk table: per-source sync, the served tag, and the three search modes."""

from __future__ import annotations

import pytest

from llm_platform.index.table import (
    connect,
    open_published,
    open_table,
    publish,
    published_version,
    search,
    source_chunk_ids,
    sync_source,
)
from llm_platform_tests.index.tables import DIMENSION, SETTINGS, TAG, unit_vector
from llm_platform_tests.index.tables import rows as topic_rows


def rows(source: str, *topic_names: str):
    """One chunk per help topic (llm_platform_tests/index/tables.py): SETTINGS keep these tests on a flat search."""
    return topic_rows(source, topic_names)


@pytest.fixture
def table(tmp_path):
    return open_table(connect(str(tmp_path / "lancedb")), "chunks__test", DIMENSION)


def sync(table, source: str, *topic_names: str):
    return sync_source(table, source, rows(source, *topic_names), settings=SETTINGS)


def test_opening_a_missing_table_without_a_dimension_says_what_to_materialize(tmp_path):
    with pytest.raises(LookupError, match="materialize vector_index"):
        open_table(connect(str(tmp_path / "lancedb")), "chunks__absent")


def test_first_sync_inserts_every_row(table):
    result = sync(table, "docs", "for", "while", "if")
    assert (result.inserted, result.deleted, result.unchanged, result.rows_for_source) == (3, 0, 0, 3)


def test_sync_makes_the_source_rows_equal_the_given_rows(table):
    sync(table, "docs", "for", "while", "if")
    result = sync(table, "docs", "for", "if", "with")
    assert (result.inserted, result.deleted, result.unchanged) == (1, 1, 2)
    assert source_chunk_ids(table, "docs") == {"docs-for", "docs-if", "docs-with"}


def test_sync_with_no_rows_empties_the_source(table):
    sync(table, "docs", "for", "while")
    result = sync(table, "docs")
    assert result.deleted == 2 and result.rows_for_source == 0


def test_unchanged_sync_writes_no_new_version(table):
    first = sync(table, "docs", "for", "while")
    again = sync(table, "docs", "for", "while")
    assert (again.inserted, again.deleted, again.version) == (0, 0, first.version)


def test_sync_leaves_other_sources_rows_untouched(table):
    sync(table, "notes", "class", "with")
    notes_before = table.search().where("source = 'notes'").limit(None).to_arrow().sort_by("chunk_id")
    sync(table, "docs", "for", "while")
    sync(table, "docs", "if")
    assert table.search().where("source = 'notes'").limit(None).to_arrow().sort_by("chunk_id").equals(notes_before)


def test_sync_builds_the_full_text_index(table):
    sync(table, "docs", "for")
    assert "FTS" in {index.index_type for index in table.list_indices()}


def test_publish_moves_the_tag_and_returns_where_it_pointed(table):
    first = sync(table, "docs", "for").version
    assert publish(table, TAG, first) is None
    second = sync(table, "docs", "for", "while").version
    assert publish(table, TAG, second) == first
    assert published_version(table, TAG) == second


def test_open_published_reads_the_tagged_version_not_the_latest(table, tmp_path):
    publish(table, TAG, sync(table, "docs", "for").version)
    sync(table, "docs", "for", "while", "if")
    served = open_published(connect(str(tmp_path / "lancedb")), "chunks__test", TAG)
    assert served.count_rows() == 1


def test_rollback_is_moving_the_tag_back(table, tmp_path):
    first = sync(table, "docs", "for").version
    publish(table, TAG, first)
    publish(table, TAG, sync(table, "docs", "for", "while").version)
    publish(table, TAG, first)
    assert open_published(connect(str(tmp_path / "lancedb")), "chunks__test", TAG).count_rows() == 1


def test_open_published_without_a_tag_says_how_to_publish(table, tmp_path):
    sync(table, "docs", "for")
    with pytest.raises(LookupError, match="published_index"):
        open_published(connect(str(tmp_path / "lancedb")), "chunks__test", TAG)


@pytest.fixture
def searchable(table):
    sync(table, "docs", "for", "while", "if", "with", "nonlocal", "lambda")
    sync(table, "notes", "class", "global")
    return table


def test_vector_search_finds_the_nearest_row_first(searchable):
    hits = search(searchable, "", unit_vector("docs-while"), mode="vector", k=3)
    assert hits[0]["doc_id"] == "doc-docs-while" and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)


def test_full_text_search_finds_the_row_with_the_words(searchable):
    hits = search(searchable, "nonlocal statement enclosing scope", None, mode="fts", k=3)
    assert hits[0]["locator"] == "nonlocal.md"


def test_hybrid_search_ranks_first_the_row_both_searches_agree_on(searchable):
    hits = search(searchable, "lambda expressions anonymous functions", unit_vector("docs-lambda"), mode="hybrid", k=3)
    assert hits[0]["locator"] == "lambda.md"


def test_search_can_be_limited_to_one_source(searchable):
    hits = search(searchable, "", unit_vector("docs-for"), mode="vector", k=10, source="notes")
    assert {hit["source"] for hit in hits} == {"notes"}


def test_full_text_search_sees_rows_added_after_the_index_was_built(searchable):
    sync(searchable, "notes", "class", "global", "assert")
    assert (
        search(searchable, "assert statements debugging assertions", None, mode="fts", k=1)[0]["locator"] == "assert.md"
    )


def test_unknown_search_mode_is_rejected_listing_the_modes(searchable):
    with pytest.raises(ValueError, match="vector, fts, hybrid"):
        search(searchable, "for", None, mode="semantic", k=1)

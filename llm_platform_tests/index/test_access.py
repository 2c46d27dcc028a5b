"""Who may read what through search: a caller reads its groups' rows and public rows, filtered inside the search."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from llm_platform.index import access
from llm_platform.index import table as table_module
from llm_platform.index.access import ReaderGroups
from llm_platform.index.retrieval import RetrievalQuestion, score_by_reader_group
from llm_platform.index.table import connect, index_schema, open_table, search, sync_source
from llm_platform.readers import ReadersError
from llm_platform_tests.index.tables import DIMENSION, SETTINGS, TOPICS, rows, unit_vector

HR = TOPICS[:30]
ENG = TOPICS[30:33]
PUBLIC = TOPICS[33:34]
NOBODY = TOPICS[34:35]
UNSET = TOPICS[35:36]
MODES = ("vector", "fts", "hybrid")
# Words every help topic's text is likely to hold, so full-text search ranks many HR rows first.
QUERY = "the statement"


def chunk_ids(topic_names) -> set[str]:
    return {f"docs-{name}" for name in topic_names}


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """30 HR rows, 3 engineering rows, one public row, one row with no readers and one whose readers are null."""
    table = open_table(connect(str(tmp_path_factory.mktemp("access") / "lancedb")), "chunks__test", DIMENSION)
    parts = [
        rows("docs", HR, ["hr"]),
        rows("docs", ENG, ["eng"]),
        rows("docs", PUBLIC),
        rows("docs", NOBODY, []),
        rows("docs", UNSET, []),
    ]
    unset = parts[-1].set_column(
        parts[-1].schema.get_field_index("readers"), "readers", pa.nulls(1, pa.list_(pa.string()))
    )
    sync_source(table, "docs", pa.concat_tables([*parts[:-1], unset]), settings=SETTINGS)
    return table


def found(table, mode: str, readers: ReaderGroups, *, k: int, near: str = HR[0]) -> set[str]:
    """chunk ids of the top-k hits; the vector is an HR row's, so unfiltered top hits are HR rows."""
    vector = unit_vector(f"docs-{near}") if mode != "fts" else None
    return {hit["chunk_id"] for hit in search(table, QUERY, vector, mode=mode, k=k, readers=readers)}


@pytest.mark.parametrize("mode", MODES)
def test_a_group_reads_its_rows_and_public_rows_and_nothing_else(table, mode):
    assert found(table, mode, ReaderGroups.of({"eng"}), k=50) == chunk_ids(ENG + PUBLIC)


@pytest.mark.parametrize("mode", MODES)
def test_the_filter_runs_before_top_k_so_k_readable_rows_come_back(table, mode):
    eng = ReaderGroups.of({"eng"})
    unfiltered_top = found(table, mode, ReaderGroups.everyone(), k=3)
    assert not {c for c in unfiltered_top if c in chunk_ids(ENG + PUBLIC)}, (
        "the query must favour HR rows, or this test proves nothing"
    )
    assert len(found(table, mode, eng, k=3)) == 3 and found(table, mode, eng, k=3) <= chunk_ids(ENG + PUBLIC)


@pytest.mark.parametrize("mode", MODES)
def test_a_row_with_no_readers_or_null_readers_is_read_by_no_group(table, mode):
    every_group = ReaderGroups.of({"hr", "eng", "legal"})
    assert not found(table, mode, every_group, k=50) & chunk_ids(NOBODY + UNSET)


@pytest.mark.parametrize("mode", MODES)
def test_a_search_that_names_no_readers_reads_public_rows_only(table, mode):
    vector = unit_vector(f"docs-{HR[0]}") if mode != "fts" else None
    assert {hit["chunk_id"] for hit in search(table, QUERY, vector, mode=mode, k=50)} == chunk_ids(PUBLIC)


def test_everyone_reads_every_row_for_evaluation(table):
    assert found(table, "vector", ReaderGroups.everyone(), k=50) == chunk_ids(HR + ENG + PUBLIC + NOBODY + UNSET)


def test_the_source_filter_and_the_readers_filter_both_apply(table):
    hits = search(table, QUERY, None, mode="fts", k=50, source="docs", readers=ReaderGroups.of({"eng"}))
    assert {hit["chunk_id"] for hit in hits} == chunk_ids(ENG + PUBLIC)
    assert search(table, QUERY, None, mode="fts", k=50, source="notes", readers=ReaderGroups.of({"eng"})) == []


@pytest.mark.parametrize("mode", MODES)
def test_without_the_readers_filter_another_groups_rows_come_through(table, mode, monkeypatch):
    monkeypatch.setattr(table_module, "readers_filter", lambda readers: None)
    assert found(table, mode, ReaderGroups.of({"eng"}), k=50) & chunk_ids(HR)


def test_readers_none_is_refused_not_read_as_everyone(table):
    with pytest.raises(TypeError, match="ReaderGroups"):
        search(table, QUERY, None, mode="fts", k=5, readers=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["hr' OR true OR '", "HR", "hr]", "", "*"])
def test_a_group_name_outside_the_rule_never_reaches_a_filter(name):
    with pytest.raises(ReadersError, match="not a group name"):
        access.readers_filter(ReaderGroups.of({name}))


def test_a_single_string_is_not_taken_for_its_letters():
    with pytest.raises(ReadersError, match="collection of names"):
        ReaderGroups.of("hr")


def test_a_readers_only_change_updates_the_rows_in_place(tmp_path):
    table = open_table(connect(str(tmp_path / "lancedb")), "chunks__test", DIMENSION)
    sync_source(table, "docs", rows("docs", ENG, ["eng"]), settings=SETTINGS)
    sync = sync_source(table, "docs", rows("docs", ENG, ["legal"]), settings=SETTINGS)
    assert (sync.readers_updated, sync.inserted, sync.deleted, sync.unchanged) == (3, 0, 0, 0)
    assert found(table, "vector", ReaderGroups.of({"legal"}), k=10, near=ENG[0]) == chunk_ids(ENG)
    assert found(table, "vector", ReaderGroups.of({"eng"}), k=10, near=ENG[0]) == set()


def test_an_unchanged_sync_updates_no_readers(tmp_path):
    table = open_table(connect(str(tmp_path / "lancedb")), "chunks__test", DIMENSION)
    sync_source(table, "docs", rows("docs", ENG, ["eng"]), settings=SETTINGS)
    version = table.version
    sync = sync_source(table, "docs", rows("docs", ENG, ["eng"]), settings=SETTINGS)
    assert sync.readers_updated == 0 and sync.unchanged == 3 and table.version == version


def test_a_table_written_before_access_control_gains_readers_on_its_next_sync(tmp_path):
    db = connect(str(tmp_path / "lancedb"))
    old_schema = pa.schema([f for f in index_schema(DIMENSION) if f.name != "readers"])
    old = db.create_table("chunks__test", schema=old_schema)
    old.add(rows("docs", ENG).drop_columns(["readers"]))
    sync = sync_source(open_table(db, "chunks__test"), "docs", rows("docs", ENG, ["eng"]), settings=SETTINGS)
    assert sync.readers_updated == 3 and found(
        open_table(db, "chunks__test"), "vector", ReaderGroups.of({"eng"}), k=10, near=ENG[0]
    ) == chunk_ids(ENG)


def test_each_group_is_scored_as_itself_on_the_questions_it_may_read(table):
    def encode(texts):
        return np.stack([unit_vector(f"docs-{text}") for text in texts])

    questions = [
        RetrievalQuestion(question=HR[0], doc_id=f"doc-docs-{HR[0]}", readers=("hr",)),
        # The chunks say eng may read this document but the index gives it to hr: eng cannot find it.
        RetrievalQuestion(question=HR[1], doc_id=f"doc-docs-{HR[1]}", readers=("eng",)),
        RetrievalQuestion(question=PUBLIC[0], doc_id=f"doc-docs-{PUBLIC[0]}", readers=("*",)),
    ]
    scores = score_by_reader_group(table, questions, encode, k=3)
    assert {group: (s.hit_rate, s.questions) for group, s in scores.items()} == {
        "*": (1.0, 1),
        "eng": (0.5, 2),
        "hr": (1.0, 2),
    }

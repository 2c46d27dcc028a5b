"""A source's sync is one commit; failures and kills at every step lose nothing and the next sync repairs."""

from __future__ import annotations

import pytest

import llm_platform.index.table as table_module
import llm_platform.index.upkeep as upkeep_module
from llm_platform.index.publishing import probe_answers
from llm_platform.index.table import commit_source, open_table, source_chunk_ids, sync_source
from llm_platform.index.upkeep import fts_index_name
from llm_platform_tests.index.tables import SETTINGS, TABLE, rows, run_writer, topic_slice

OLD, NEW = topic_slice(0, 12), topic_slice(6, 20)
STEPS = [
    "llm_platform.index.table.commit_source",
    "llm_platform.index.upkeep.create_missing_indexes",
    "llm_platform.index.upkeep.compact",
    "llm_platform.index.upkeep.cleanup",
]


def ids(source, names):
    return {f"{source}-{n}" for n in names}


def test_a_changing_sync_is_exactly_one_commit_before_upkeep(table):
    sync_source(table, "docs", rows("docs", OLD), settings=SETTINGS)
    before = table.version
    commit_source(table, "docs", rows("docs", NEW))
    assert table.version == before + 1
    assert source_chunk_ids(table, "docs") == ids("docs", NEW)


def test_every_version_shows_a_source_wholly_old_or_wholly_new(table, db):
    sync_source(table, "docs", rows("docs", OLD), settings=SETTINGS)
    first = table.version
    sync_source(table, "docs", rows("docs", NEW), settings=SETTINGS)
    for version in range(first, table.version + 1):
        seen = open_table(db, TABLE)
        seen.checkout(version)
        assert source_chunk_ids(seen, "docs") in (ids("docs", OLD), ids("docs", NEW)), (
            f"version {version} mixes old and new"
        )


@pytest.mark.parametrize("step", STEPS)
def test_a_failure_at_any_step_leaves_no_fewer_rows_and_the_next_sync_repairs(table, monkeypatch, step):
    sync_source(table, "docs", rows("docs", OLD), settings=SETTINGS)
    module = table_module if step.startswith("llm_platform.index.table") else upkeep_module
    name = step.rsplit(".", 1)[1]

    def fail(*args, **kwargs):
        raise OSError(f"injected failure in {name}")

    monkeypatch.setattr(module, name, fail)
    try:
        sync_source(table, "docs", rows("docs", NEW), settings=SETTINGS)
    except OSError:
        pass
    assert source_chunk_ids(table, "docs") in (ids("docs", OLD), ids("docs", NEW))
    monkeypatch.undo()
    result = sync_source(table, "docs", rows("docs", NEW), settings=SETTINGS)
    assert source_chunk_ids(table, "docs") == ids("docs", NEW) and result.rows_for_source == len(NEW)
    assert result.upkeep.ok and probe_answers(table) == []


def test_an_upkeep_failure_is_reported_not_raised(table, monkeypatch):
    monkeypatch.setattr(upkeep_module, "compact", lambda table: (_ for _ in ()).throw(OSError("disk full")))
    result = sync_source(table, "docs", rows("docs", OLD), settings=SETTINGS)
    assert not result.upkeep.ok and "compaction: disk full" in result.upkeep.errors
    assert result.upkeep.cleaned_up and fts_index_name(SETTINGS) in result.upkeep.created


# Each point between two steps of a sync, from before its commit to after its last upkeep step.
KILL_POINTS = [f"{STEPS[0]}:before"] + [f"{step}:after" for step in STEPS]


@pytest.mark.parametrize("kill", KILL_POINTS)
def test_a_process_killed_at_any_step_loses_nothing_and_the_next_sync_repairs(uri, table, kill):
    sync_source(table, "docs", rows("docs", OLD), settings=SETTINGS)
    killed = run_writer(uri, "docs", 6, 20, kill=kill)
    assert killed.returncode == -9, killed.stderr
    table.checkout_latest()
    assert source_chunk_ids(table, "docs") in (ids("docs", OLD), ids("docs", NEW))
    result = sync_source(table, "docs", rows("docs", NEW), settings=SETTINGS)
    assert source_chunk_ids(table, "docs") == ids("docs", NEW) and result.upkeep.ok
    assert probe_answers(table) == []


def test_a_kill_after_the_first_insert_before_the_full_text_index_is_repaired_by_an_unchanged_sync(uri, table):
    killed = run_writer(uri, "docs", 0, 12, kill="llm_platform.index.upkeep.create_missing_indexes:before")
    assert killed.returncode == -9
    table.checkout_latest()
    assert table.count_rows() == len(OLD) and not table.list_indices()
    result = sync_source(table, "docs", rows("docs", OLD), settings=SETTINGS)
    assert result.inserted == 0 and fts_index_name(SETTINGS) in result.indexes
    assert probe_answers(table) == []


def test_copies_left_by_an_earlier_writer_are_removed_by_the_next_sync(table):
    sync_source(table, "docs", rows("docs", OLD), settings=SETTINGS)
    table.add(rows("docs", OLD[:5]))
    assert table.count_rows() == len(OLD) + 5
    result = sync_source(table, "docs", rows("docs", OLD), settings=SETTINGS)
    assert result.duplicates_removed == 5 and table.count_rows() == len(OLD)
    assert source_chunk_ids(table, "docs") == ids("docs", OLD)

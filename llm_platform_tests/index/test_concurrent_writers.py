"""Two processes writing the table at once, with no Dagster pool between them: nothing duplicated, nothing lost."""

from __future__ import annotations

import subprocess
import sys
import threading

import lancedb

from llm_platform.index import table as table_module
from llm_platform.index.table import index_schema, open_table, sync_source
from llm_platform_tests.index.tables import DIMENSION, REPO_ROOT, SETTINGS, TABLE, TOPICS, rows, topic_slice


def run_together(uri, *jobs: tuple[str, int, int]) -> list[subprocess.CompletedProcess]:
    """Start one writer process per (source, start, stop) at once and wait for all."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "llm_platform_tests.index.tables", str(uri), source, str(start), str(stop)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for source, start, stop in jobs
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


def chunk_ids(db) -> list[str]:
    return db.open_table(TABLE).search().select(["chunk_id"]).limit(None).to_arrow().column("chunk_id").to_pylist()


def test_two_processes_syncing_the_same_source_leave_each_chunk_once(uri, db, table):
    for result in run_together(uri, ("docs", 0, 60), ("docs", 0, 60)):
        assert result.returncode == 0, result.stderr
    found = chunk_ids(db)
    assert len(found) == 60 and len(set(found)) == 60


def test_two_sources_synced_at_once_both_land(uri, db, table):
    for result in run_together(uri, ("docs", 0, 50), ("notes", 50, 79)):
        assert result.returncode == 0, result.stderr
    found = chunk_ids(db)
    assert len(found) == len(set(found)) == 79
    assert sum(cid.startswith("docs-") for cid in found) == 50


def test_two_processes_changing_the_same_source_end_with_one_of_the_two_sets(uri, db, table):
    run_together(uri, ("docs", 0, 40))
    for result in run_together(uri, ("docs", 10, 50), ("docs", 20, 70)):
        assert result.returncode == 0, result.stderr
    found = chunk_ids(db)
    assert len(found) == len(set(found)) and len(found) in (40, 50)


def test_two_first_syncs_racing_to_create_the_table_both_land(uri, db):
    for result in run_together(uri, ("docs", 0, 30), ("notes", 30, 60)):
        assert result.returncode == 0, result.stderr
    found = chunk_ids(db)
    assert len(found) == 60 and set(found) == {f"docs-{n}" for n in TOPICS[:30]} | {f"notes-{n}" for n in TOPICS[30:60]}


def test_a_sync_whose_handle_is_older_than_a_racing_creators_overwrite_still_lands(db, table):
    """What CI hit: the loser of the create race commits its empty table as an Overwrite after our handle was opened."""
    lancedb.connect(db.uri).create_table(TABLE, schema=index_schema(DIMENSION), mode="overwrite")
    result = sync_source(table, "docs", rows("docs", topic_slice(0, 20)), settings=SETTINGS)
    assert result.rows_for_source == 20 and len(chunk_ids(db)) == 20


def test_a_racing_creator_cannot_wipe_rows_synced_into_the_table_it_created(uri, monkeypatch):
    """A creator that saw no table commits its empty Overwrite late; the
    first sync waits out that window, so its rows stay.
    """

    monkeypatch.setattr(table_module, "CREATE_SETTLE_SECONDS", 1.0)
    late = threading.Timer(
        0.3, lambda: lancedb.connect(str(uri)).create_table(TABLE, schema=index_schema(DIMENSION), mode="overwrite")
    )
    late.start()
    try:
        created = open_table(lancedb.connect(str(uri)), TABLE, DIMENSION)
        sync_source(created, "docs", rows("docs", topic_slice(0, 20)), settings=SETTINGS)
    finally:
        late.join()
    assert len(chunk_ids(lancedb.connect(str(uri)))) == 20


def test_rows_a_late_overwrite_replaced_right_after_the_commit_are_committed_again(uri, monkeypatch):
    """An Overwrite landing after the first commit (past the settle wait): the sync sees its rows gone and recommits."""
    original = table_module.commit_source
    calls = []

    def commit_then_overwritten(table, source, rows):
        original(table, source, rows)
        if not calls:
            lancedb.connect(str(uri)).create_table(TABLE, schema=index_schema(DIMENSION), mode="overwrite")
        calls.append(source)

    created = open_table(lancedb.connect(str(uri)), TABLE, DIMENSION)
    monkeypatch.setattr(table_module, "commit_source", commit_then_overwritten)
    result = sync_source(created, "docs", rows("docs", topic_slice(0, 20)), settings=SETTINGS)

    assert len(calls) == 2 and result.rows_for_source == 20
    assert len(chunk_ids(lancedb.connect(str(uri)))) == 20

"""Two processes writing the table at once, with no Dagster pool between them: nothing duplicated, nothing lost."""

from __future__ import annotations

import subprocess
import sys

from llm_platform_tests.index.tables import REPO_ROOT, TABLE, TOPICS


def run_together(uri, *jobs: tuple[str, int, int]) -> list[subprocess.CompletedProcess]:
    """Start one writer process per (source, start, stop) at once and wait for all."""
    processes = [
        subprocess.Popen([sys.executable, "-m", "llm_platform_tests.index.tables", str(uri), source, str(start), str(stop)],
                         cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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

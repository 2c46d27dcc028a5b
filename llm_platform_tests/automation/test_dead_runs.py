"""Which pool holders lose their slots without the monitoring daemon: dead, ended or deleted runs, never live ones."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus, make_new_run_id

from llm_platform.automation.dead_runs import free_dead_holders
from llm_platform.local_instance import prepare_dagster_home

POOL = "lancedb_writes"


def _instance(home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.event_log_storage.set_concurrency_slots(POOL, 1)
        yield instance


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    yield from _instance(prepare_dagster_home(tmp_path / "dagster"))


def _holder(instance: dg.DagsterInstance, status: DagsterRunStatus, worker_pid: int | None = None) -> DagsterRun:
    run = instance.add_run(DagsterRun(job_name="index_job", run_id=make_new_run_id(), status=status))
    if worker_pid is not None:
        instance.report_engine_event("Executing steps in process", run, EngineEventData.in_process(worker_pid))
    assert instance.event_log_storage.claim_concurrency_slot(POOL, run.run_id, "vector_index").is_claimed
    return run


def _holders(instance: dg.DagsterInstance) -> set[str]:
    return instance.event_log_storage.get_concurrency_info(POOL).active_run_ids


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_run_whose_worker_is_gone_is_failed_and_loses_its_slot(instance: dg.DagsterInstance) -> None:
    run = _holder(instance, DagsterRunStatus.STARTED, worker_pid=_dead_pid())
    [freed] = free_dead_holders(instance, POOL)
    assert freed.run_id == run.run_id and "is gone" in freed.reason
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
    assert not _holders(instance)


def test_run_whose_worker_is_alive_keeps_its_slot(instance: dg.DagsterInstance) -> None:
    run = _holder(instance, DagsterRunStatus.STARTED, worker_pid=os.getpid())
    assert free_dead_holders(instance, POOL) == []
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
    assert _holders(instance) == {run.run_id}


def test_run_that_logged_no_worker_yet_keeps_its_slot(instance: dg.DagsterInstance) -> None:
    run = _holder(instance, DagsterRunStatus.STARTED)
    assert free_dead_holders(instance, POOL) == []
    assert _holders(instance) == {run.run_id}


def test_run_that_ended_loses_its_slot_at_once(instance: dg.DagsterInstance) -> None:
    run = _holder(instance, DagsterRunStatus.FAILURE, worker_pid=_dead_pid())
    [freed] = free_dead_holders(instance, POOL)
    assert freed.run_id == run.run_id and "ended" in freed.reason
    assert not _holders(instance)


def test_run_whose_record_is_gone_loses_its_slot(instance: dg.DagsterInstance) -> None:
    run = _holder(instance, DagsterRunStatus.STARTED, worker_pid=_dead_pid())
    instance.run_storage.delete_run(run.run_id)  # the record only: `dagster run delete` frees the slots itself
    assert [freed.run_id for freed in free_dead_holders(instance, POOL)] == [run.run_id]
    assert not _holders(instance)


def test_holders_on_an_instance_that_runs_elsewhere_are_left_alone(tmp_path: Path) -> None:
    # Without LocalRunLauncher the worker may be a pod on another machine: its pid means nothing here.
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    for instance in _instance(home):
        run = _holder(instance, DagsterRunStatus.STARTED, worker_pid=_dead_pid())
        assert free_dead_holders(instance, POOL) == []
        assert _holders(instance) == {run.run_id}

"""Cleaning and chunking over several worker processes: the same rows, ids and dataset versions as one worker."""

from __future__ import annotations

import dataclasses
import os

import dagster as dg
import pytest

from llm_platform.config import load_config
from llm_platform.documents import batching, worker_pool
from llm_platform.documents.worker_pool import cpu_limit, worker_count
from llm_platform_tests.conftest import materialization

STAGES = ["raw_documents", "cleaned_corpus", "chunks"]


def platform_with_workers(new_platform, workers: int):
    from llm_platform.definitions import build_definitions

    platform = new_platform(f"workers_{workers}")
    config_text = platform.config_path.read_text(encoding="utf-8")
    assert "documents:\n  workers: 1\n" in config_text
    platform.config_path.write_text(
        config_text.replace("documents:\n  workers: 1\n", f"documents:\n  workers: {workers}\n"), encoding="utf-8"
    )
    config = load_config(platform.config_path)
    return dataclasses.replace(
        platform, config=config, defs=build_definitions(config, home=str(platform.home), executor="in_process")
    )


def content_digest(result: dg.ExecuteInProcessResult, stage: str) -> str:
    # A version is "<time stamp>-<content hash>.parquet"; two homes differ only in the stamp.
    return materialization(result, stage)["dataset_version"].rsplit("-", 1)[1]


@pytest.fixture(scope="module")
def one_and_two_workers(new_platform):
    """The docs source through the three stages with one worker and with two, in batches of several documents."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batching, "BATCH_TEXT_BYTES", 40_000)
        patch.setattr(worker_pool, "SPAWN_WORTH_CHARS", 0)  # these small batches must still go to the workers
        runs = {}
        for workers in (1, 2):
            platform = platform_with_workers(new_platform, workers)
            assert platform.config.documents.workers == workers
            runs[workers] = dg.materialize(
                list(platform.defs.assets),
                selection=STAGES,
                partition_key="docs",
                resources=platform.defs.resources,
                instance=dg.DagsterInstance.ephemeral(),
            )
        yield runs


@pytest.mark.parametrize("stage", ["cleaned_corpus", "chunks"])
def test_two_workers_write_the_dataset_version_of_one(one_and_two_workers, stage):
    assert content_digest(one_and_two_workers[2], stage) == content_digest(one_and_two_workers[1], stage)


def test_two_workers_pass_every_check_one_passes(one_and_two_workers):
    outcomes = {
        run: {(e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()}
        for run, result in one_and_two_workers.items()
    }
    assert outcomes[2] == outcomes[1]


def test_unset_workers_means_the_cpu_limit():
    assert worker_count(None) == cpu_limit()
    assert worker_count(3) == 3


def test_a_cgroup_quota_caps_the_workers(tmp_path, monkeypatch):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("50000 100000\n")
    monkeypatch.setattr(worker_pool, "_CGROUP_V2_MAX", cpu_max)
    assert cpu_limit() == 1


def test_an_unlimited_cgroup_leaves_the_cpus_we_may_run_on(tmp_path, monkeypatch):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("max 100000\n")
    monkeypatch.setattr(worker_pool, "_CGROUP_V2_MAX", cpu_max)
    monkeypatch.setattr(worker_pool.os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert cpu_limit() == 3


def test_zero_workers_are_refused():
    with pytest.raises(ValueError, match="workers must be at least 1"):
        worker_pool.WorkerPool(0)


@pytest.mark.parametrize("stage", ["cleaned_corpus", "chunks"])
def test_each_stage_reports_the_workers_it_used(one_and_two_workers, stage):
    assert [materialization(one_and_two_workers[n], stage)["workers"] for n in (1, 2)] == [1, 2]


def test_a_pool_of_two_runs_in_other_processes_and_keeps_input_order():
    with worker_pool.WorkerPool(2) as pool:
        found = pool.map(_pid_and_square, range(8))
    assert [square for _, square in found] == [n * n for n in range(8)]
    assert os.getpid() not in {pid for pid, _ in found}


def _pid_and_square(n: int) -> tuple[int, int]:
    return os.getpid(), n * n


def test_a_pool_of_two_runs_a_call_with_little_text_in_this_process():
    with worker_pool.WorkerPool(2) as pool:
        found = pool.map(_pid_and_square, range(8), chars=worker_pool.SPAWN_WORTH_CHARS - 1)
    assert {pid for pid, _ in found} == {os.getpid()}


def test_a_pool_of_two_runs_a_call_with_much_text_in_other_processes():
    with worker_pool.WorkerPool(2) as pool:
        found = pool.map(_pid_and_square, range(8), chars=worker_pool.SPAWN_WORTH_CHARS)
    assert os.getpid() not in {pid for pid, _ in found}


def test_a_started_pool_runs_a_call_with_little_text_in_its_workers():
    with worker_pool.WorkerPool(2) as pool:
        pool.map(_pid_and_square, range(8))
        found = pool.map(_pid_and_square, range(8), chars=1)
    assert os.getpid() not in {pid for pid, _ in found}

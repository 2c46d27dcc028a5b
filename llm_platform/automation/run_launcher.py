"""The local run launcher: Dagster's default one, plus a health check so run monitoring can fail dead runs.

Dagster's `DefaultRunLauncher` cannot say whether a run's worker is alive, so run
monitoring skips STARTED runs. A run whose process was killed with SIGKILL (OOM
killer, `kill -9`, a closed laptop lid on a CLI run) then stays STARTED forever and
keeps its pool slots: with `lancedb_writes` at one slot, every later `vector_index`
step waits without an error. This launcher answers the health check from the run's
own events (each run logs the pid of the process that executes it), so the
monitoring daemon marks such a run FAILED; `free_slots_after_run_end_seconds` in
dagster.yaml then frees its slots, and run retries start it again.

Only for local instances: it looks the pid up on this machine.
"""

from __future__ import annotations

from dagster._core.events import DagsterEventType
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun

# The process that runs a run can start a little after the run record's start time is set.
_START_SLACK_SECONDS = 5.0


def run_worker_pid(instance, run_id: str) -> int | None:
    """The pid of the process that executes `run_id`: the first engine event of the run that names one."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        pid = data.metadata.get("pid") if data and data.metadata else None
        if pid is not None:
            return int(pid.value)
    return None


def process_is_alive(pid: int, started_by: float | None) -> bool:
    """Whether `pid` is a live (non-zombie) process that already existed when the run started."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        # A pid reused by a process that started after the run is not the run's worker.
        return started_by is None or process.create_time() <= started_by + _START_SLACK_SECONDS
    except psutil.NoSuchProcess:
        return False


class LocalRunLauncher(DefaultRunLauncher):
    """`DefaultRunLauncher` whose runs can be health-checked by run monitoring."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid = run_worker_pid(self._instance, run.run_id)
        if pid is None:
            # Between RUN_START and the executor's first event there is no pid yet: not a failure.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker pid logged yet")
        record = self._instance.get_run_record_by_id(run.run_id)
        started = record.start_time if record else None
        if process_is_alive(pid, started):
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker pid {pid} is alive")
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"the run's worker process (pid {pid}) is gone: it was killed or crashed without reporting",
        )

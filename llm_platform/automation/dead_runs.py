"""Free the pool slots of runs whose worker is gone, without the run-monitoring daemon.

A run killed with SIGKILL stays STARTED and keeps its pool slots; only run
monitoring in `dagster-daemon` fails it (through LocalRunLauncher's health check)
and, `free_slots_after_run_end_seconds` later, frees its slots. A CLI run or the
demo has no daemon, so a step of the same pool would wait forever. This does the
daemon's two jobs for the holders of one pool, at once: a holder whose worker pid
is dead is reported failed, and a holder that ended (or was deleted) loses its slots.

Only for instances that run on this machine (LocalRunLauncher): it looks pids up here.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster._core.storage.dagster_run import DagsterRunStatus

from llm_platform.automation.run_launcher import LocalRunLauncher, process_is_alive, run_worker_pid

_IN_PROGRESS = {DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING}


@dataclass(frozen=True)
class FreedRun:
    """A run whose slots were freed, and why."""

    run_id: str
    reason: str


def _dead_worker_reason(instance, run_id: str, started: float | None) -> str | None:
    pid = run_worker_pid(instance, run_id)
    if pid is None or process_is_alive(pid, started):
        return None  # no pid logged yet, or alive: a live run's slot is never taken
    return f"its worker process (pid {pid}) is gone: it was killed or crashed without reporting"


def _why_free(instance, run_id: str) -> str | None:
    record = instance.get_run_record_by_id(run_id)
    if record is None:
        return "the run's record is gone"
    run = record.dagster_run
    if run.is_finished:
        return f"the run ended ({run.status.value}) without releasing the slot"
    if run.status not in _IN_PROGRESS:
        return None
    reason = _dead_worker_reason(instance, run_id, record.start_time)
    if reason is not None:
        instance.report_run_failed(run, f"Marked failed by llm_platform: {reason}. Its pool slots were freed.")
    return reason


def holder_workers(instance, pool: str) -> dict[str, int | None]:
    """The runs that hold a slot of `pool`, each with its worker pid (None before the run logged one)."""
    run_ids = instance.event_log_storage.get_concurrency_info(pool).active_run_ids
    return {run_id: run_worker_pid(instance, run_id) for run_id in sorted(run_ids)}


def free_dead_holders(instance, pool: str) -> list[FreedRun]:
    """Fail the holders of `pool` whose worker died and free the slots of every holder that is not running."""
    if not isinstance(instance.run_launcher, LocalRunLauncher):
        return []  # a worker on another machine (a k8s pod) cannot be looked up here
    info = instance.event_log_storage.get_concurrency_info(pool)
    # A dead run's pending step can be handed the next free slot, so pending runs are looked at too.
    holders = {slot.run_id for slot in info.claimed_slots} | {step.run_id for step in info.pending_steps}
    freed = []
    for run_id in sorted(holders):
        reason = _why_free(instance, run_id)
        if reason is not None:
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
            freed.append(FreedRun(run_id, reason))
    return freed

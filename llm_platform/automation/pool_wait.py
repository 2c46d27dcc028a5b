"""A step that waits for a pool slot sleeps between checks and takes the slot of a dead holder.

Dagster 1.13 re-checks a blocked slot claim in a loop that never sleeps (the
multiprocess executor's loop has no sleep, and `interval_to_next_pending_claim_check`
is never positive), so a run waiting for `lancedb_writes` spins a core. And only the
run-monitoring daemon frees the slot of a run that was killed, so a CLI run or the
demo, which have no daemon, would wait behind it forever. The guard wraps the claim:
while a step is blocked it sleeps a moment per check, and every few seconds it frees
the slots of holders whose worker is gone (llm_platform/automation/dead_runs.py).
A holder that is alive keeps its slot: the waiting run waits, and SIGTERM stops it.

Dagster's CLI turns SIGTERM and SIGINT into a flag that the executor loop reads;
the multiprocess loop reads it on every turn, the in-process loop (the demo,
LLM_PLATFORM_EXECUTOR=in_process) never does, so a blocked in-process run ignored
SIGTERM. A flag still up at two blocked checks in a row was not read by the loop:
the guard then interrupts the run itself.
"""

from __future__ import annotations

import logging
import time

from llm_platform.automation.dead_runs import free_dead_holders, holder_workers

# Short enough not to slow a run's other steps' events, long enough not to spin.
_BLOCKED_SLEEP_SECONDS = 0.1
_HOLDER_CHECK_SECONDS = 3.0
_GUARD_MARK = "_llm_platform_pool_wait_guard"
_LAST_CHECK = "_llm_platform_last_holder_check"
_INTERRUPT_SEEN = "_llm_platform_interrupt_seen"
_TOLD = "_llm_platform_told_holders"
_log = logging.getLogger(__name__)


def _free_dead_holders_now_and_then(context, pool: str, step_key: str) -> None:
    last_checks = context.__dict__.setdefault(_LAST_CHECK, {})
    if time.monotonic() - last_checks.get(pool, float("-inf")) < _HOLDER_CHECK_SECONDS:
        return
    last_checks[pool] = time.monotonic()
    freed = free_dead_holders(context._instance, pool)
    for run in freed:
        _log.warning(
            "llm_platform: freed the %s pool slot of run %s for step %s: %s", pool, run.run_id, step_key, run.reason
        )
    if freed:
        context._pending_timeouts[step_key] = 0.0  # claim again now, not after Dagster's back-off
    else:
        _tell_who_holds(context, pool, step_key)


def _tell_who_holds(context, pool: str, step_key: str) -> None:
    """Once per pool and run: which live runs the step waits for, and how to stop one instead of waiting."""
    told = context.__dict__.setdefault(_TOLD, set())
    if pool in told:
        return
    told.add(pool)
    for run_id, pid in holder_workers(context._instance, pool).items():
        stop = f"kill {pid}" if pid is not None else f"llm-platform dagster run delete {run_id}"
        _log.warning(
            "llm_platform: step %s waits for the %s pool slot held by live run %s (worker pid %s); it starts "
            "when that run ends. To stop that run instead: %s",
            step_key,
            pool,
            run_id,
            pid,
            stop,
        )


def _stop_if_interrupt_unread(context) -> None:
    from dagster._core.errors import DagsterExecutionInterruptedError
    from dagster._utils.interrupts import check_captured_interrupt

    if not check_captured_interrupt():
        context.__dict__[_INTERRUPT_SEEN] = False
    elif context.__dict__.get(_INTERRUPT_SEEN):
        raise DagsterExecutionInterruptedError("interrupted (SIGTERM or Ctrl-C) while waiting for a pool slot")
    else:
        context.__dict__[_INTERRUPT_SEEN] = True


def install_pool_wait_guard() -> None:
    """Wrap Dagster's slot claim in this process (once): blocked steps sleep and dead holders lose their slots."""
    from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

    claim = InstanceConcurrencyContext.claim
    if getattr(claim, _GUARD_MARK, False):
        return

    def guarded_claim(self, concurrency_key: str, step_key: str, step_priority: int = 0) -> bool:
        if claim(self, concurrency_key, step_key, step_priority):
            return True
        _stop_if_interrupt_unread(self)
        _free_dead_holders_now_and_then(self, concurrency_key, step_key)
        time.sleep(_BLOCKED_SLEEP_SECONDS)
        return False

    setattr(guarded_claim, _GUARD_MARK, True)
    InstanceConcurrencyContext.claim = guarded_claim  # type: ignore[method-assign]


def pool_wait_guard_installed() -> bool:
    from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

    return bool(getattr(InstanceConcurrencyContext.claim, _GUARD_MARK, False))

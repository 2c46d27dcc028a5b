"""Processes that share a document stage's work, batch by batch, in order.

Cleaning and chunking are pure Python or hold the GIL, so threads cannot
spread them; a stage maps each batch's documents over worker processes and
gets the results back in input order, so the rows, their ids, the Parquet
row groups and the dataset version are those of one worker. Only the current
batch is in flight, so memory stays bounded per worker.

Workers start only when the work is worth it: a spawned worker is a fresh
interpreter that imports the stage's libraries (and, chunking, loads the
tokenizer), about a second of CPU each, more than cleaning or chunking a few
changed documents. So a pool not yet started runs a call carrying fewer than
`SPAWN_WORTH_CHARS` characters of text in this process; the results are the
same either way, as they are for any number of workers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any, Self

_CGROUP_V2_MAX = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
_CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
# About a second of cleaning on one core: below this, starting workers costs more than it saves.
SPAWN_WORTH_CHARS = 200_000


def cpu_limit() -> int:
    """The CPUs this process may use: its pod's CPU limit (cgroup quota) when set, else the CPUs it may run on."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota()
    return max(1, min(cpus, math.ceil(quota))) if quota else max(1, cpus)


def _cgroup_quota() -> float | None:
    """CPU quota / period from cgroup v2 `cpu.max` or v1 `cfs_quota_us`; None when unlimited or absent."""
    try:
        if _CGROUP_V2_MAX.is_file():
            quota, period = _CGROUP_V2_MAX.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        if _CGROUP_V1_QUOTA.is_file() and _CGROUP_V1_PERIOD.is_file():
            quota_us = int(_CGROUP_V1_QUOTA.read_text())
            return None if quota_us <= 0 else quota_us / int(_CGROUP_V1_PERIOD.read_text())
    except (OSError, ValueError):
        # An unreadable or odd cgroup file: fall back to the CPUs we can see.
        return None
    return None


def worker_count(configured: int | None) -> int:
    """`documents.workers` when set, else the pod's CPU limit."""
    return configured if configured is not None else cpu_limit()


class WorkerPool:
    """Up to `workers` processes, started on first use; with one worker everything runs in this process."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._executor: Executor | None = None

    def map(self, function: Callable[[Any], Any], items: Iterable[Any], *, chars: int | None = None) -> list[Any]:
        """`function` over `items`, results in input order; `function` must be a module-level (picklable) function.

        `chars` is the text the items carry: under `SPAWN_WORTH_CHARS` they run in this
        process unless the workers are already up. None means: worth the workers.
        """
        items = list(items)
        small = chars is not None and chars < SPAWN_WORTH_CHARS and self._executor is None
        if self.workers == 1 or len(items) < 2 or small:
            return [function(item) for item in items]
        # A few items per task: fewer round trips, while a long document still cannot hold up the others for long.
        chunksize = max(1, len(items) // (self.workers * 4))
        return list(self._started().map(function, items, chunksize=chunksize))

    def _started(self) -> Executor:
        if self._executor is None:
            import multiprocessing

            # Spawned, not forked: the parent may hold threads (Dagster, tokenizers) that a fork would copy mid-state.
            self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

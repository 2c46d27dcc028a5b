"""What the service serves: one immutable snapshot of index and adapter, swapped atomically.

A request reads `state.current` once and uses that snapshot to the end, so it
never mixes versions; a swap is one reference assignment. A watcher thread
polls the two pointers (the Lance tag, the MLflow alias), loads what moved in
the background and swaps only when the load succeeded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

log = logging.getLogger("llm_platform.serving")


@dataclass(frozen=True)
class Snapshot:
    """An index version (its table checked out at that version) and an adapter, possibly absent."""

    index_version: int | None = None
    table: Any = None
    adapter: Any = None  # model_source.RegisteredAdapter
    generation_lock: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(1), compare=False)

    @property
    def adapter_version(self) -> str | None:
        return None if self.adapter is None else self.adapter.version

    @property
    def prompt_version(self) -> str | None:
        return None if self.adapter is None else self.adapter.prompt_template.version

    @property
    def ready(self) -> bool:
        return self.table is not None and self.adapter is not None

    def versions(self) -> dict[str, object]:
        return {"index_version": self.index_version, "adapter_version": self.adapter_version, "prompt_version": self.prompt_version}


@dataclass(frozen=True)
class Sources:
    """How to read the two pointers and load what they point at."""

    index_version: Callable[[], int | None]
    open_index: Callable[[int], Any]
    adapter_version: Callable[[], str | None]
    load_adapter: Callable[[], Any]
    max_concurrent_generations: int = 1


class ServingState:
    """The current snapshot and the watcher that replaces it."""

    def __init__(self, sources: Sources, *, on_swap: Callable[[Snapshot], None] = lambda s: None, on_failure: Callable[[str], None] = lambda m: None) -> None:
        self.sources = sources
        self.current = Snapshot()
        self.last_error: str | None = None
        self._on_swap, self._on_failure = on_swap, on_failure
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Load whatever pointer moved and swap it in; True when the snapshot changed."""
        with self._refresh_lock:
            before = self.current
            try:
                after = self._next(before)
            except Exception as exc:  # any load failure keeps the previous version serving
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("loading a new version failed; still serving %s: %s", before.versions(), self.last_error)
                self._on_failure(self.last_error)
                return False
            if after is before:
                return False
            self.current = after
            self.last_error = None
            log.info("now serving %s (was %s)", after.versions(), before.versions())
            self._on_swap(after)
            return True

    def _next(self, before: Snapshot) -> Snapshot:
        after = before
        index_version = self.sources.index_version()
        if index_version is not None and index_version != before.index_version:
            after = replace(after, index_version=index_version, table=self.sources.open_index(index_version))
        adapter_version = self.sources.adapter_version()
        if adapter_version is not None and adapter_version != before.adapter_version:
            adapter = self.sources.load_adapter()
            after = replace(after, adapter=adapter, generation_lock=threading.Semaphore(self.sources.max_concurrent_generations))
        return after

    def start(self, poll_seconds: float) -> None:
        """Load now and keep polling every `poll_seconds` in a daemon thread."""
        def watch() -> None:
            while not self._stop.is_set():
                self.refresh()
                self._stop.wait(poll_seconds)

        self._thread = threading.Thread(target=watch, name="llm-platform-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

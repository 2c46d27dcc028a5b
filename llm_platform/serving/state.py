"""What the service serves: one immutable snapshot of index and adapter, swapped atomically.

A request reads `state.current` once and uses that snapshot to the end, so it
never mixes versions; a swap is one reference assignment. A watcher thread
polls the two pointers (the Lance tag, the MLflow alias), loads what moved in
the background and swaps only when the load succeeded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from llm_platform.serving.slots import Slots

log = logging.getLogger("llm_platform.serving")
RETRY_FAILED_SECONDS = 60.0


@dataclass(frozen=True)
class Snapshot:
    """An index version (its table checked out at that version) and an adapter, possibly absent."""

    index_version: int | None = None
    table: Any = None
    adapter: Any = None  # model_source.RegisteredAdapter
    slots: Slots = field(default_factory=lambda: Slots(1), compare=False)

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
        return {
            "index_version": self.index_version,
            "adapter_version": self.adapter_version,
            "prompt_version": self.prompt_version,
        }


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

    def __init__(
        self,
        sources: Sources,
        *,
        on_swap: Callable[[Snapshot], None] = lambda s: None,
        on_failure: Callable[[str], None] = lambda m: None,
    ) -> None:
        self.sources = sources
        self.current = Snapshot()
        self.last_error: str | None = None
        self._on_swap, self._on_failure = on_swap, on_failure
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: dict[tuple, float] = {}

    def refresh(self) -> bool:
        """Load whatever pointer moved and swap it in; True when the snapshot changed."""
        with self._refresh_lock:
            before = self.current
            after, errors = self._next(before)
            for error in errors:  # a failed load keeps the previous version of that part serving
                self.last_error = error
                log.error("loading a new version failed; still serving %s: %s", before.versions(), error)
                self._on_failure(error)
            if after is before:
                return False
            self.current = after
            self.last_error = errors[-1] if errors else None
            log.info("now serving %s (was %s)", after.versions(), before.versions())
            self._on_swap(after)
            return True

    def _next(self, before: Snapshot) -> tuple[Snapshot, list[str]]:
        after = before
        errors: list[str] = []
        index_version = self._pointer(self.sources.index_version, "index", errors)
        if (
            index_version is not None
            and index_version != before.index_version
            and self._may_load(("index", index_version))
        ):
            table = self._attempt(("index", index_version), lambda: self.sources.open_index(index_version), errors)
            if table is not None:
                after = replace(after, index_version=index_version, table=table)
        adapter_version = self._pointer(self.sources.adapter_version, "adapter", errors)
        if (
            adapter_version is not None
            and adapter_version != before.adapter_version
            and self._may_load(("adapter", adapter_version))
        ):
            adapter = self._attempt(("adapter", adapter_version), self.sources.load_adapter, errors)
            if adapter is not None:
                after = replace(after, adapter=adapter, slots=Slots(self.sources.max_concurrent_generations))
        return after, errors

    @staticmethod
    def _pointer(read: Callable[[], Any], what: str, errors: list[str]):
        try:
            return read()
        except Exception as exc:  # the registry or the volume is unreachable for a moment
            errors.append(f"reading the {what} pointer: {type(exc).__name__}: {exc}")
            return None

    def _may_load(self, key: tuple) -> bool:
        # A version that failed moments ago is not reloaded every poll.
        failed_at = self._failed.get(key)
        return failed_at is None or time.monotonic() - failed_at >= RETRY_FAILED_SECONDS

    def _attempt(self, key: tuple, load: Callable[[], Any], errors: list[str]):
        try:
            return load()
        except Exception as exc:
            self._failed[key] = time.monotonic()
            errors.append(f"loading {key[0]} version {key[1]}: {type(exc).__name__}: {exc}")
            return None

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

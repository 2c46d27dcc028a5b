"""Generation slots: at most N token loops at once, each request's deadline and cancel
switch, how long each slot is held, and how a generation ends badly.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field


class SlotsBusy(RuntimeError):
    """Every generation slot stayed taken until the request's deadline (HTTP 503)."""


class GenerationFailed(RuntimeError):
    """The model failed on this request (HTTP 500, or an error event in a stream); the service keeps serving."""


class GenerationTimedOut(GenerationFailed):
    """The request's deadline passed before its answer was complete (HTTP 504)."""


class ClientGone(RuntimeError):
    """The client disconnected; its generation was stopped and nobody is left to answer."""


@dataclass
class Control:
    """What stops one request's token loop: its client leaving (`cancel`)
    or its deadline (monotonic seconds) passing.
    """

    deadline: float
    cancel: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def within(cls, seconds: float) -> Control:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def stopped(self) -> bool:
        return self.cancel.is_set() or self.expired()


class Slots:
    """A bounded semaphore that also knows since when each slot is held, for the readiness watchdog."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._free = threading.BoundedSemaphore(count)
        self._held: dict[int, float] = {}
        self._lock = threading.Lock()
        self._tokens = itertools.count()

    def acquire(self, control: Control) -> int:
        """A slot's token, waiting at most until the deadline; SlotsBusy if none came free."""
        if not self._free.acquire(timeout=control.remaining()):
            raise SlotsBusy(
                f"all {self.count} generation slots stayed busy until this request's deadline "
                "(serving.request_timeout_seconds, serving.max_concurrent_generations); retry later"
            )
        with self._lock:
            token = next(self._tokens)
            self._held[token] = time.monotonic()
        return token

    def release(self, token: int) -> None:
        with self._lock:
            del self._held[token]
        self._free.release()

    def in_use(self) -> int:
        with self._lock:
            return len(self._held)

    def longest_held_seconds(self) -> float:
        """How long the oldest held slot has been held (0 when all are free)."""
        with self._lock:
            oldest = min(self._held.values(), default=None)
        return 0.0 if oldest is None else time.monotonic() - oldest

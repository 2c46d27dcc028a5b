"""Ratings as the service writes them: redacted records in per-replica, append-only segments under
`<home>/serving/feedback/`.

A record is the caller's rating of one issued answer, who sent it (a fingerprint
of the API key, never the key, or "anonymous"), and, when the caller sent one, a
corrected answer as a proposal with its id. `model.feedback.fold_feedback` is
the reader: one rating per answer id, corrections only once approved.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable

from llm_platform.config import ServingSettings
from llm_platform.model.feedback import feedback_folder, proposal_id
from llm_platform.segment_log import SegmentWriter
from llm_platform.serving.query_log import redact_record

ANONYMOUS = "anonymous"
REDACTED_FIELDS = ("question", "answer", "corrected_answer")
WINDOW_SECONDS = 60.0
# Forgotten callers are dropped past this many, so a scan of client addresses cannot grow memory without bound.
MAX_TRACKED_CALLERS = 10_000


def caller_identity(api_key: str | None) -> str:
    """Who rated: a short fingerprint of the API key the request carried, or "anonymous"."""
    return f"key:{hashlib.sha256(api_key.encode()).hexdigest()[:12]}" if api_key else ANONYMOUS


def feedback_record(*, answer: dict, rating: int, corrected_answer: str | None, caller: str) -> dict:
    """The redacted line to write for `caller`'s rating of the issued `answer` (its id, question, text, versions)."""
    record = {
        "answer_id": answer["id"],
        "question": answer["question"],
        "answer": answer["answer"],
        "rating": rating,
        "caller": caller,
        "reader_groups": answer.get("reader_groups", []),
        "versions": answer["versions"],
        "rated_at": time.time(),
    }
    if corrected_answer and corrected_answer.strip():
        record["corrected_answer"] = corrected_answer.strip()
    record = redact_record(record, fields=REDACTED_FIELDS)
    if "corrected_answer" in record:  # the id of the text as stored, which is what a reviewer approves
        record["proposal_id"] = proposal_id(answer["id"], record["corrected_answer"])
    return record


class FeedbackLog:
    """Writes each rating durably before returning, in this replica's segments under `<home>/serving/feedback/`."""

    def __init__(self, home: str, settings: ServingSettings | None = None) -> None:
        self.segments = SegmentWriter.rotated_by(feedback_folder(home), settings or ServingSettings())

    def append(self, record: dict) -> None:
        self.segments.append_record(record)


class RateLimiter:
    """At most `per_minute` events per caller in any sliding minute."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute, self._clock = per_minute, clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, caller: str) -> bool:
        now = self._clock()
        with self._lock:
            if len(self._events) > MAX_TRACKED_CALLERS:
                self._events = {
                    who: times for who, times in self._events.items() if times and times[-1] > now - WINDOW_SECONDS
                }
            times = self._events.setdefault(caller, deque())
            while times and times[0] <= now - WINDOW_SECONDS:
                times.popleft()
            if len(times) >= self.per_minute:
                return False
            times.append(now)
            return True

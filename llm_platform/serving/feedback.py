"""Ratings as the service writes them: redacted records in per-replica, append-only segments under `<home>/serving/feedback/`.

A record is the caller's rating of one issued answer, who sent it (a fingerprint
of the API key, never the key, or "anonymous"), and, when the caller sent one, a
corrected answer as a proposal with its id. `model.feedback.fold_feedback` is
the reader: one rating per answer id, corrections only once approved.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import fsspec

from llm_platform.model.feedback import feedback_folder, proposal_id
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
    record = {"answer_id": answer["id"], "question": answer["question"], "answer": answer["answer"], "rating": rating,
              "caller": caller, "versions": answer["versions"], "rated_at": time.time()}
    if corrected_answer and corrected_answer.strip():
        record["corrected_answer"] = corrected_answer.strip()
    record = redact_record(record, fields=REDACTED_FIELDS)
    if "corrected_answer" in record:  # the id of the text as stored, which is what a reviewer approves
        record["proposal_id"] = proposal_id(answer["id"], record["corrected_answer"])
    return record


def segment_name() -> str:
    """This replica's segment: host, process id and start time, so replicas sharing a home never write the same file."""
    return f"{socket.gethostname()}-{os.getpid()}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"


class FeedbackLog:
    """Writes each record durably before returning: a fsynced line in a local segment, or one object per record on an object store."""

    def __init__(self, home: str) -> None:
        self.folder, self.segment = feedback_folder(home), segment_name()
        self.remote = "://" in home
        self._lock, self._written = threading.Lock(), 0
        if not self.remote:
            Path(self.folder).mkdir(parents=True, exist_ok=True)

    @property
    def location(self) -> str:
        return f"{self.folder}/{self.segment}" + ("/" if self.remote else ".jsonl")

    def append(self, record: dict) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            self._written += 1
            if self.remote:
                # Object stores cannot append: one small object per acknowledged rating, read back by the same glob.
                with fsspec.open(f"{self.location}{self._written:09d}.jsonl", "wb") as handle:
                    handle.write(line)
                return
            with open(self.location, "ab") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())


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
                self._events = {who: times for who, times in self._events.items() if times and times[-1] > now - WINDOW_SECONDS}
            times = self._events.setdefault(caller, deque())
            while times and times[0] <= now - WINDOW_SECONDS:
                times.popleft()
            if len(times) >= self.per_minute:
                return False
            times.append(now)
            return True

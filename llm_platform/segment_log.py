"""Per-replica, append-only JSONL segments under a folder on a local disk or an object store, and their reader.

Every record is durable when `append` returns, so a caller may acknowledge it:
on a local disk the line is flushed and fsynced into the replica's current
segment, which rotates to a new file past a size or an age; an object store
cannot append, so each record is its own object (one PUT, atomic: a killed
writer leaves a whole object or none), and rotation is only the naming.

Segment names start with the replica (host, process id, start time and a random
tag), so any number of replicas can share one folder without ever writing the
same file or object.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import fsspec

from llm_platform.storage_files import is_remote

if TYPE_CHECKING:
    from llm_platform.config import ServingSettings

SUFFIX = ".jsonl"


def replica_name() -> str:
    """Host, process id, start time and a random tag: unique even when a
    restarted process reuses a pid within a second.
    """
    started = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{socket.gethostname()}-{os.getpid()}-{started}-{uuid.uuid4().hex[:6]}"


class SegmentWriter:
    """Appends one line per record under `folder`, durably before returning; thread-safe."""

    def __init__(
        self, folder: str, *, max_bytes: int, max_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(folder.rstrip("/"))
        self.remote = is_remote(folder)
        self.replica, self.max_bytes, self.max_seconds, self._clock = replica_name(), max_bytes, max_seconds, clock
        self._lock = threading.Lock()
        self._sequence = 1  # the number of the current local segment, or of the next object
        self._handle: IO[bytes] | None = None
        self._opened_at = 0.0

    @classmethod
    def rotated_by(cls, folder: str, settings: ServingSettings) -> SegmentWriter:
        """A writer under `folder` whose local segments rotate as
        `serving.segment_max_bytes` and `segment_max_seconds` say.
        """
        return cls(folder, max_bytes=settings.segment_max_bytes, max_seconds=settings.segment_max_seconds)

    def append_record(self, record: dict) -> None:
        """Write `record` as one JSON line, durably."""
        self.append(json.dumps(record, ensure_ascii=False).encode("utf-8"))

    @property
    def current(self) -> str:
        """The local segment the next record goes to, or the object it will be."""
        if self.remote:
            return f"{self.root}/{self.replica}/{self._sequence:09d}{SUFFIX}"
        return f"{self.root}/{self.replica}-{self._sequence:06d}{SUFFIX}"

    def append(self, line: bytes) -> None:
        """Write `line` (one JSON document, no newline) durably."""
        if self.remote:
            self._put(line)
            return
        with self._lock:
            handle = self._segment(len(line) + 1)
            try:
                handle.write(line + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            except OSError:
                # The segment may now end in part of this line: later records go to a fresh one, never after it.
                self._rotate()
                raise

    def _put(self, line: bytes) -> None:
        # One object per record: object stores cannot append, and a PUT is all-or-nothing. Only the name is
        # taken under the lock, so concurrent requests upload in parallel; a failed upload leaves a gap in the numbers.
        with self._lock:
            target = self.current
            self._sequence += 1
        self.fs.pipe_file(target, line + b"\n")

    def close(self) -> None:
        with self._lock:
            self._close_segment()

    def _segment(self, incoming: int) -> IO[bytes]:
        handle = self._handle
        if handle is not None and (
            handle.tell() + incoming > self.max_bytes or self._clock() - self._opened_at >= self.max_seconds
        ):
            self._rotate()
            handle = None
        if handle is None:
            Path(self.root).mkdir(parents=True, exist_ok=True)
            handle = self._handle = open(self.current, "ab")  # noqa: SIM115 - kept open across appends, closed on rotation
            self._opened_at = self._clock()
            _fsync_folder(self.root)  # the new file's name must survive a crash too, not only its bytes
        return handle

    def _rotate(self) -> None:
        self._close_segment()
        self._sequence += 1

    def _close_segment(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _fsync_folder(folder: str) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_segments(folder: str) -> list[tuple[str, bytes]]:
    """(path, bytes) of every `.jsonl` file or object under `folder` (none when it does not exist), sorted by path.

    One listing, then one batched read: on an object store the objects are fetched concurrently.
    """
    fs, root = fsspec.core.url_to_fs(folder.rstrip("/"))
    if not fs.exists(root):
        return []
    paths = sorted(fs.glob(f"{root}/**/*{SUFFIX}"))
    if not paths:
        return []
    contents = fs.cat(paths)
    return [(path, contents[path]) for path in paths]

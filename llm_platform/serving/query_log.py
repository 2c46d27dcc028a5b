"""The query log: one redacted JSON line per answered question, read back by `serving_log`.

Each process appends to its own file (host and pid in the name), so replicas
sharing a volume never interleave lines; a line is flushed before the response
leaves.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import fsspec

from llm_platform.documents.pii import redact_pii

QUERY_LOG_DIR = "serving/query_log"
REDACTED_FIELDS = ("question", "answer")


def query_log_folder(home: str) -> str:
    return f"{home.rstrip('/')}/{QUERY_LOG_DIR}"


def redact_record(record: dict, fields: tuple[str, ...] = REDACTED_FIELDS) -> dict:
    """The record with personal data in its text `fields` replaced, and how many were found."""
    redacted, found = dict(record), 0
    for name in fields:
        if isinstance(record.get(name), str):
            redacted[name], counts = redact_pii(record[name])
            found += sum(counts.values())
    redacted["pii_redacted"] = found
    return redacted


class QueryLog:
    """Appends redacted records to `<home>/serving/query_log/<host>-<pid>.jsonl`."""

    def __init__(self, home: str) -> None:
        if "://" in home:
            raise ValueError(f"the query log needs a local storage root (a mounted volume); got {home}")
        folder = Path(query_log_folder(home))
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{socket.gethostname()}-{os.getpid()}.jsonl"
        self._lock = threading.Lock()

    def append(self, record: dict) -> None:
        line = json.dumps({"logged_at": time.time(), **redact_record(record)}, ensure_ascii=False)
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def read_query_log(home: str) -> tuple[list[dict], list[str]]:
    """Every logged record, oldest first, and a message per unreadable line (naming file and line)."""
    fs, folder = fsspec.core.url_to_fs(query_log_folder(home))
    if not fs.exists(folder):
        return [], []
    records, problems = [], []
    for path in sorted(fs.glob(f"{folder}/*.jsonl")):
        for number, line in enumerate(fs.cat_file(path).decode("utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                # A process killed mid-write leaves a torn last line; report it, keep the rest.
                problems.append(f"{path}:{number}: not valid JSON ({exc.msg})")
    return sorted(records, key=lambda r: r.get("logged_at", 0)), problems


def questions(records: Iterable[dict]) -> list[str]:
    return [r["question"] for r in records if isinstance(r.get("question"), str) and r["question"].strip()]

"""The query log: one redacted JSON line per answered question, read back by `serving_log`.

Each replica writes its own segments (see `segment_log`), on a local disk or an
object store, so replicas sharing a home never interleave lines; a record is
durable before the response leaves.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from llm_platform.config import ServingSettings
from llm_platform.documents.pii import redact_pii
from llm_platform.home_layout import QUERY_LOG, under
from llm_platform.segment_log import SegmentWriter, read_segments

REDACTED_FIELDS = ("question", "answer")


def query_log_folder(home: str) -> str:
    return under(home, QUERY_LOG)


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
    """Appends redacted records, durably, to this replica's segments under `<home>/serving/query_log/`."""

    def __init__(self, home: str, settings: ServingSettings | None = None) -> None:
        self.segments = SegmentWriter.rotated_by(query_log_folder(home), settings or ServingSettings())

    def append(self, record: dict) -> None:
        self.segments.append_record({"logged_at": time.time(), **redact_record(record)})


def read_query_log(home: str) -> tuple[list[dict], list[str]]:
    """Every logged record of every replica's segments, oldest first, and a
    message per unreadable line (naming file and line).
    """
    records, problems = [], []
    for path, data in read_segments(query_log_folder(home)):
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
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

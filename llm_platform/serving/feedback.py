"""Ratings appended to `sft.feedback_location` in the JSONL shape `read_feedback` reads.

A record is {"question", "answer", "rating"} plus where it came from. A corrected
answer is written as the answer, rated 5: a person wrote it, so it is the
training pair; the served answer and its rating are kept alongside.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

SERVED_FEEDBACK_FILE = "served-feedback.jsonl"


def feedback_file(location: str | None, config_path: str) -> Path:
    """The file ratings go to: `location` itself when it names a .jsonl file, else a file inside that folder."""
    if not location:
        raise ValueError(f"{config_path}: sft.feedback_location is not set, so ratings have nowhere to go; set it to a folder or .jsonl file")
    if "://" in location:
        raise ValueError(f"{config_path}: sft.feedback_location {location} is remote; the service appends to a local or mounted path")
    path = Path(location)
    return path if path.suffix == ".jsonl" else path / SERVED_FEEDBACK_FILE


def feedback_record(*, answer: dict, rating: int, corrected_answer: str | None) -> dict:
    """The line to append for a rating of the issued `answer` (its id, question, text, versions)."""
    record = {"question": answer["question"], "answer": answer["answer"], "rating": rating}
    if corrected_answer:
        record = {"question": answer["question"], "answer": corrected_answer.strip(), "rating": 5, "served_answer": answer["answer"], "served_rating": rating}
    return {**record, "answer_id": answer["id"], "versions": answer["versions"], "rated_at": time.time()}


def append_feedback(path: Path, record: dict) -> None:
    """Append one line durably: under an exclusive lock (several replicas), flushed and fsynced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    with open(path, "ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

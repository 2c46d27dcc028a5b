"""Served feedback as `sft_dataset` reads it: one rating per answer, corrections only once a reviewer approved them.

A caller's rating is a claim about one answer, so the latest rating of an
answer id replaces the earlier ones. A corrected answer is a proposal: it trains
only when its proposal id is in the approvals file a reviewer writes
(`llm-platform feedback approve`); until then only the caller's own rating of
the served answer counts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import fsspec

from llm_platform.home_layout import FEEDBACK, SFT_APPROVALS, under
from llm_platform.identity import normalize_for_hash, stable_hash
from llm_platform.model.sft import jsonl_records

# An approved correction trains as a top-rated pair: a reviewer vouched for its text.
APPROVED_RATING = 5
BAD_APPROVAL = 'expected {"proposal_id": "prop-..."} (as `llm-platform feedback approve` writes it)'


def feedback_folder(home: str) -> str:
    """Where the service's per-replica feedback segments live under the storage root."""
    return under(home, FEEDBACK)


def approvals_location(configured: str | None, home: str) -> str:
    """`sft.approved_corrections`, else the default file under the storage root."""
    return configured or under(home, SFT_APPROVALS)


def proposal_id(answer_id: str, corrected_answer: str) -> str:
    """A correction's identity: the same text proposed for the same answer is the same proposal."""
    return "prop-" + stable_hash(answer_id, normalize_for_hash(corrected_answer))[:16]


@dataclass(frozen=True)
class Proposal:
    """A corrected answer a caller proposed, where it was written and by whom."""

    id: str
    answer_id: str
    question: str
    corrected_answer: str
    rating: int | None
    caller: str
    proposed_at: float
    path: str
    line: int


@dataclass
class FoldedFeedback:
    """The records `sft_rules.check_supplied` reads, the proposals found, and notes on what was folded away."""

    records: list[tuple[str, int, dict, str | None]]
    proposals: dict[str, Proposal]
    notes: list[str]


def _served_and_correction(record: dict) -> tuple[dict, str | None]:
    """The caller's rating of the served answer, and the correction (records
    written before corrections were proposals too).
    """
    if "served_answer" in record:  # the old shape stored the correction as the answer, rated 5
        legacy = {**record, "answer": record["served_answer"], "rating": record.get("served_rating")}
        return legacy, record.get("answer")
    corrected = record.get("corrected_answer")
    return record, corrected if isinstance(corrected, str) and corrected.strip() else None


def _timestamp(record: dict) -> float:
    value = record.get("rated_at")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def fold_feedback(files: Sequence[tuple[str, bytes]], approved: Iterable[str] = ()) -> FoldedFeedback:
    """One rating per answer id (latest `rated_at` wins, then file order), plus one pair per approved proposal.

    Records without an answer id (hand-written files) each stand alone.
    """
    latest: dict[str, tuple[float, int, str, int, dict]] = {}
    proposals: dict[str, Proposal] = {}
    broken: list[tuple[str, int, dict, str | None]] = []
    order = 0
    for path, data in files:
        for line, record, problem in jsonl_records(path, data):
            order += 1
            if problem is not None:
                broken.append((path, line, record, problem))
                continue
            rated, corrected = _served_and_correction(record)
            given = record.get("answer_id")
            answer_id = given if isinstance(given, str) else f"{path}:{line}"
            key = (_timestamp(record), order)
            if answer_id not in latest or key >= latest[answer_id][:2]:
                latest[answer_id] = (*key, path, line, rated)
            if corrected is not None and isinstance(record.get("question"), str):
                found = Proposal(
                    proposal_id(answer_id, corrected),
                    answer_id,
                    record["question"],
                    corrected.strip(),
                    rated.get("rating") if isinstance(rated.get("rating"), int) else None,
                    str(record.get("caller", "unknown")),
                    _timestamp(record),
                    path,
                    line,
                )
                proposals.setdefault(found.id, found)
    return _folded(latest, proposals, broken, set(approved), order)


def _folded(
    latest: dict, proposals: dict[str, Proposal], broken: list, approved: set[str], seen: int
) -> FoldedFeedback:
    records = broken + [(path, line, rated, None) for _, _, path, line, rated in latest.values()]
    records += [
        (p.path, p.line, {"question": p.question, "answer": p.corrected_answer, "rating": APPROVED_RATING}, None)
        for p in proposals.values()
        if p.id in approved
    ]
    notes = []
    superseded = seen - len(broken) - len(latest)
    if superseded:
        notes.append(f"{superseded} feedback record(s) replaced by a later rating of the same answer id")
    pending = [p.id for p in proposals.values() if p.id not in approved]
    if pending:
        notes.append(
            f"{len(pending)} correction proposal(s) await review (llm-platform feedback review), not trained on"
        )
    unknown = sorted(approved - set(proposals))
    if unknown:
        notes.append(f"approved proposal id(s) not found in any feedback: {', '.join(unknown[:10])}")
    return FoldedFeedback(records, proposals, notes)


def read_approvals(location: str) -> tuple[set[str], list[str]]:
    """The approved proposal ids in the approvals JSONL file (none when it
    does not exist), and problems naming file and line.
    """
    fs, path = fsspec.core.url_to_fs(location)
    if not fs.exists(path):
        return set(), []
    approved: set[str] = set()
    problems: list[str] = []
    for line, record, problem in jsonl_records(location, fs.cat_file(path)):
        found = record.get("proposal_id")
        if problem is None and isinstance(found, str) and found.startswith("prop-"):
            approved.add(found)
        else:
            problems.append(f"{location}:{line}: {problem or BAD_APPROVAL}")
    return approved, problems


def append_approvals(location: str, proposal_ids: Sequence[str], *, reviewer: str) -> None:
    """Append one approval line per id to the approvals file (created with its folder when missing)."""
    fs, path = fsspec.core.url_to_fs(location)
    existing = fs.cat_file(path) if fs.exists(path) else b""
    lines = "".join(
        json.dumps({"proposal_id": pid, "approved_by": reviewer, "approved_at": time.time()}) + "\n"
        for pid in proposal_ids
    )
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    # Rewritten whole (object stores cannot append); approvals are few and written by one reviewer at a time.
    with fs.open(path, "wb") as handle:
        handle.write(existing + lines.encode("utf-8"))

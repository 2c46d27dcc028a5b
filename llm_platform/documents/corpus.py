"""Raw documents to the cleaned corpus of one source, reusing unchanged work.

A document whose raw `content_hash` matches the previous cleaned row, cleaned
under the same `cleaning_version` (rendering, cleaning rules, PII detector), is
not cleaned again; any change to those re-cleans it. Deduplication always runs over the whole source (on stored MinHash
signatures, so it is cheap), because a new document can make an old one a
duplicate.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from llm_platform.documents.cleaning import RECORD_FORMATS, clean_document, cleaning_version
from llm_platform.documents.dedup import find_duplicates, minhash_signature
from llm_platform.identity import content_hash

CLEANED_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("locator", pa.string()),
        ("format", pa.string()),
        ("title", pa.string()),
        ("text", pa.large_string()),
        ("raw_content_hash", pa.string()),
        ("content_hash", pa.string()),
        ("quality", pa.float64()),
        ("pii_counts", pa.string()),
        ("minhash", pa.list_(pa.uint64())),
        ("cleaning_version", pa.string()),
    ]
)
DUPLICATE_KINDS = frozenset({"exact_duplicate", "near_duplicate"})


@dataclass(frozen=True)
class CleaningRules:
    """Thresholds a cleaned document must meet to enter the corpus.

    `min_record_chars` replaces `min_chars` for record formats (JSONL): a
    one-sentence FAQ answer is a whole record, not a truncated page.
    """

    min_chars: int
    min_quality: float
    near_duplicate_threshold: float
    max_chars: int = 5_000_000
    min_record_chars: int = 20

    def min_chars_for(self, fmt: str) -> int:
        return self.min_record_chars if fmt in RECORD_FORMATS else self.min_chars


@dataclass
class CleanedCorpus:
    """Cleaned rows, what was set aside (with reasons), and counts for metadata."""

    rows: list[dict]
    quarantine: list[dict]
    cleaned: int = 0
    reused: int = 0
    pii_counts: Counter = field(default_factory=Counter)

    @property
    def duplicates(self) -> list[dict]:
        return [q for q in self.quarantine if q["kind"] in DUPLICATE_KINDS]

    @property
    def rejected(self) -> list[dict]:
        return [q for q in self.quarantine if q["kind"] not in DUPLICATE_KINDS]


def _set_aside(row: dict, kind: str, reason: str) -> dict:
    return {"source": row["source"], "stage": "cleaned_corpus", "locator": row["locator"], "kind": kind, "reason": reason}


def _clean_row(raw: dict, version: str) -> dict:
    cleaned = clean_document(raw["text"], fmt=raw["format"], title=raw["title"])
    return {
        "doc_id": raw["doc_id"],
        "source": raw["source"],
        "locator": raw["locator"],
        "format": raw["format"],
        "title": cleaned.title,
        "text": cleaned.text,
        "raw_content_hash": raw["content_hash"],
        "content_hash": content_hash(cleaned.text),
        "quality": float(cleaned.quality),
        "pii_counts": json.dumps(cleaned.pii_counts, sort_keys=True),
        "minhash": minhash_signature(cleaned.text).tolist() if cleaned.text.strip() else [],
        "cleaning_version": version,
    }


def _rule_violation(row: dict, rules: CleaningRules) -> tuple[str, str] | None:
    length = len(row["text"].strip())
    minimum = rules.min_chars_for(row["format"])
    if length < minimum:
        return "too_short", f"{row['locator']}: only {length} characters after cleaning (minimum {minimum})"
    if length > rules.max_chars:
        reason = f"{row['locator']}: {length:,} characters after cleaning, above cleaning.max_document_chars={rules.max_chars:,}; split the file or raise the limit"
        return "too_long", reason
    if row["quality"] < rules.min_quality:
        return "low_quality", f"{row['locator']}: quality score {row['quality']:.2f} below minimum {rules.min_quality:.2f}"
    return None


def clean_corpus(raw_rows: Iterable[dict], previous: pa.Table | None, rules: CleaningRules) -> CleanedCorpus:
    """Clean, filter and deduplicate one source's raw documents."""
    version = cleaning_version()
    earlier = {}
    if previous is not None:
        earlier = {row["raw_content_hash"]: row for row in previous.to_pylist() if row.get("cleaning_version") == version}
    result = CleanedCorpus(rows=[], quarantine=[])
    candidates = []
    for raw in raw_rows:
        reused = earlier.get(raw["content_hash"])
        if reused is not None and reused["doc_id"] == raw["doc_id"]:
            row = reused
            result.reused += 1
        else:
            row = _clean_row(raw, version)
            result.cleaned += 1
        result.pii_counts.update(json.loads(row["pii_counts"]))
        violation = _rule_violation(row, rules)
        if violation:
            result.quarantine.append(_set_aside(row, *violation))
        else:
            candidates.append(row)
    _drop_duplicates(candidates, result, rules.near_duplicate_threshold)
    return result


def _drop_duplicates(candidates: list[dict], result: CleanedCorpus, threshold: float) -> None:
    items = [(r["doc_id"], r["content_hash"], np.asarray(r["minhash"], dtype=np.uint64)) for r in candidates]
    duplicates = {d.doc_id: d for d in find_duplicates(items, threshold=threshold)}
    by_id = {r["doc_id"]: r for r in candidates}
    for row in candidates:
        dup = duplicates.get(row["doc_id"])
        if dup is None:
            result.rows.append(row)
            continue
        kept = by_id[dup.duplicate_of]["locator"]
        kind = "exact_duplicate" if dup.kind == "exact" else "near_duplicate"
        result.quarantine.append(_set_aside(row, kind, f"{row['locator']}: {dup.kind} duplicate of {kept}"))

"""One document's cleaned row, and whether it enters the cleaned corpus or is set aside, and why.

`clean_row` runs in the stage's worker processes (it is module-level, so
picklable); the rest runs in the stage's process, on rows cleaned now or reused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from llm_platform.documents import pii
from llm_platform.documents.cleaning import RECORD_FORMATS, clean_document
from llm_platform.documents.dedup import minhash_signature
from llm_platform.identity import content_hash, stable_hash


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


def set_aside_record(row: dict, kind: str, reason: str) -> dict:
    return {
        "source": row["source"],
        "stage": "cleaned_corpus",
        "locator": row["locator"],
        "kind": kind,
        "reason": reason,
    }


def clean_row(job: tuple[dict, str]) -> tuple[dict, list[bytes]]:
    """The cleaned row of (raw row, cleaning version), with what rendering lost (`lost_in_rendering`, None if
    nothing), and the digests of its text and title the redactor found clean (see `pii.clean_digests`).
    """
    raw, version = job
    cleaned = clean_document(raw["text"], fmt=raw["format"], title=raw["title"])
    row = {
        "doc_id": raw["doc_id"],
        "source": raw["source"],
        "locator": raw["locator"],
        "format": raw["format"],
        "title": cleaned.title,
        "text": cleaned.text,
        "raw_content_hash": raw["content_hash"],
        "raw_title_hash": raw_title_hash(raw),
        "content_hash": content_hash(cleaned.text),
        "quality": float(cleaned.quality),
        "pii_counts": json.dumps(cleaned.pii_counts, sort_keys=True),
        "minhash": minhash_signature(cleaned.text).tolist() if cleaned.text.strip() else [],
        "cleaning_version": version,
        "readers": readers_of(raw),
        "lost_in_rendering": cleaned.lost_in_rendering,
    }
    row["redactor_found_clean"] = all(pii.clean_digests([text]) for text in _redacted_texts(row))
    return row, pii.clean_digests([row["text"], row["title"] or ""])


def raw_title_hash(raw: dict) -> str:
    """The digest of the raw row's title: cleaning reads it beside the text (a JSONL title field, a PDF's metadata)."""
    return stable_hash(raw["title"] or "")


def _redacted_texts(row: dict) -> list[str]:
    return [row["text"], row["title"]] if row["title"] else [row["text"]]


def take_as_found_clean(row: dict) -> None:
    """Take a reused row's text and title as found clean when the redactor's last round on them found nothing.

    The row was cleaned under this run's cleaning version, so under this PII
    detector: what no_pii_left's redactor opinion would find in it is what that
    round found, nothing. A row whose redaction stopped at the round limit says
    so (False) and is scanned again. The independent audit still reads every row.
    """
    if row["redactor_found_clean"]:
        pii.remember_clean_texts(_redacted_texts(row))


def readers_of(raw: dict) -> list[str]:
    # A raw row written before readers existed has none: fail closed.
    return raw.get("readers") or []


def rule_violation(row: dict, rules: CleaningRules) -> tuple[str, str] | None:
    if row["lost_in_rendering"]:
        return "lost_in_rendering", f"{row['locator']}: {row['lost_in_rendering']}"
    length = len(row["text"].strip())
    minimum = rules.min_chars_for(row["format"])
    if length < minimum:
        return "too_short", f"{row['locator']}: only {length} characters after cleaning (minimum {minimum})"
    if length > rules.max_chars:
        reason = (
            f"{row['locator']}: {length:,} characters after cleaning, above "
            f"cleaning.max_document_chars={rules.max_chars:,}; split the file or raise the limit"
        )
        return "too_long", reason
    if row["quality"] < rules.min_quality:
        return (
            "low_quality",
            f"{row['locator']}: quality score {row['quality']:.2f} below minimum {rules.min_quality:.2f}",
        )
    return None

"""Supervised fine-tuning pairs: from corpus chunks, curated files and user feedback.

A pair's identity is the hash of its normalized text, and its train/eval split is
derived from that hash alone, so the same pair lands in the same split on every
run and an eval pair can never leak into training.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from llm_platform.identity import normalize_for_hash, stable_hash

ORIGINS = frozenset({"curated", "corpus", "feedback"})
SPLITS = ("train", "eval")
MIN_INSTRUCTION_CHARS = 10
MIN_CHUNK_CHARS = 120
MAX_RESPONSE_CHARS = 1200
DEFAULT_CURATED_QUALITY = 0.9

_QUESTION_TEMPLATES = (
    "Explain {topic}.",
    "What does the documentation say about {topic}?",
    "Summarize the section on {topic}.",
    "Describe {topic}.",
)
# Headings that say where a section is, not what it is about.
_GENERIC_HEADINGS = frozenset(
    {
        "introduction",
        "overview",
        "notes",
        "note",
        "example",
        "examples",
        "summary",
        "contents",
        "see also",
        "details",
        "background",
        "usage",
        "misc",
        "other",
    }
)
_HEADING_NOISE = re.compile(r"^[#\s]*(\d+(\.\d+)*\.?\s+)?|[\s:#]+$")
_SENTENCE_END = re.compile(r"[.!?](?=\s)")
_HEX = re.compile(r"^[0-9a-f]{8,}$")


@dataclass(frozen=True)
class SftPair:
    """One instruction/response pair and where it came from."""

    instruction: str
    response: str
    quality: float
    origin: str
    reference: str | None

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise ValueError(f"SftPair.origin must be one of {sorted(ORIGINS)}, got {self.origin!r}")
        if not 0.0 <= self.quality <= 1.0:
            raise ValueError(f"SftPair.quality must be in [0, 1], got {self.quality}")

    @property
    def hash(self) -> str:
        """The pair's identity (see `pair_hash`)."""
        return pair_hash(self.instruction, self.response)


def pair_hash(instruction: str, response: str) -> str:
    """Return the sha256-based identity of a pair after normalizing its text."""
    # Case-folded too: pairs that differ only in case must share a split.
    return stable_hash(normalize_for_hash(instruction).casefold(), normalize_for_hash(response).casefold())


def split_of(pair_hash: str, *, eval_fraction: float) -> str:
    """Return "eval" for about `eval_fraction` of hashes and "train" for the rest."""
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    if not _HEX.match(pair_hash):
        raise ValueError(f"pair_hash must be a hex digest from pair_hash(), got {pair_hash!r}")
    bucket = int(pair_hash[:8], 16) / 0x1_0000_0000
    return "eval" if bucket < eval_fraction else "train"


def dedupe_pairs(pairs: Iterable[SftPair]) -> list[SftPair]:
    """Keep one pair per `pair_hash`, the highest-quality one, in first-seen order."""
    best: dict[str, SftPair] = {}
    for pair in pairs:
        kept = best.get(pair.hash)
        if kept is None or pair.quality > kept.quality:
            best[pair.hash] = pair
    return list(best.values())


def pairs_from_chunks(
    chunks: Iterable[tuple[str, str | None, str | None, str]],
) -> list[SftPair]:
    """Turn (chunk_id, title, heading, text) chunks into question/answer pairs.

    Chunks with neither heading nor title, or with under MIN_CHUNK_CHARS of text,
    give no pair: there is no question to ask or not enough of an answer.
    """
    pairs = []
    for chunk_id, title, heading, text in chunks:
        topic, heading_score = _topic_of(title, heading)
        body = text.strip()
        if topic is None or len(body) < MIN_CHUNK_CHARS:
            continue
        response = trim_to_sentence(body, max_chars=MAX_RESPONSE_CHARS)
        length_score = min(1.0, len(response) / 400)
        pairs.append(
            SftPair(
                instruction=_question_about(topic, chunk_id),
                response=response,
                quality=round(0.5 * length_score + 0.5 * heading_score, 3),
                origin="corpus",
                reference=chunk_id,
            )
        )
    return pairs


def trim_to_sentence(text: str, *, max_chars: int) -> str:
    """Return `text` cut at the last sentence end within `max_chars` (or a word end)."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    ends = [match.end() for match in _SENTENCE_END.finditer(head + " ")]
    # A cut in the first third would throw most of the answer away; a word cut is better.
    if ends and ends[-1] >= max_chars // 3:
        return head[: ends[-1]].rstrip()
    return head.rsplit(None, 1)[0].rstrip()


def _clean_heading(value: str | None) -> str:
    return _HEADING_NOISE.sub("", value or "").strip()


def _topic_of(title: str | None, heading: str | None) -> tuple[str | None, float]:
    clean_heading, clean_title = _clean_heading(heading), _clean_heading(title)
    if clean_heading and clean_heading.casefold() not in _GENERIC_HEADINGS:
        words = len(clean_heading.split())
        return clean_heading, 1.0 if 2 <= words <= 10 else 0.7
    if clean_heading and clean_title:
        return f"the {clean_heading.lower()} of {clean_title}", 0.6
    if clean_title:
        return clean_title, 0.6
    return None, 0.0


def _question_about(topic: str, chunk_id: str) -> str:
    template = _QUESTION_TEMPLATES[int(stable_hash(chunk_id)[:8], 16) % len(_QUESTION_TEMPLATES)]
    return template.format(topic=topic)


def read_curated_pairs(path: str, data: bytes) -> tuple[list[SftPair], list[str]]:
    """Parse curated JSONL {"instruction", "response", "quality"?} into pairs.

    Bad lines are returned as messages naming `path` and the line, never raised.
    """
    pairs, messages = [], []
    for line_no, record, problem in jsonl_records(path, data):
        if problem is None:
            pair, problem = _curated_pair(record, reference=f"{path}#L{line_no}")
            if pair is not None:
                pairs.append(pair)
        if problem is not None:
            messages.append(f"{path}:{line_no}: {problem}")
    return pairs, messages


def read_feedback(path: str, data: bytes, *, min_rating: int = 4) -> tuple[list[SftPair], list[str]]:
    """Parse feedback JSONL {"question", "answer", "rating" 1-5} into pairs.

    quality = rating / 5. Records rated below `min_rating` are dropped and, like
    malformed lines, reported as messages naming `path` and the line.
    """
    if not 1 <= min_rating <= 5:
        raise ValueError(f"min_rating must be between 1 and 5, got {min_rating}")
    pairs, messages = [], []
    for line_no, record, problem in jsonl_records(path, data):
        if problem is None:
            pair, problem = _feedback_pair(record, f"{path}#L{line_no}", min_rating)
            if pair is not None:
                pairs.append(pair)
        if problem is not None:
            messages.append(f"{path}:{line_no}: {problem}")
    return pairs, messages


def jsonl_records(path: str, data: bytes) -> Iterable[tuple[int, dict, str | None]]:
    """(line number, record, problem) per non-blank line; problem names what is wrong and what to do."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        yield 0, {}, f"not UTF-8 ({err}); re-save {path} as UTF-8"
        return
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            yield line_no, {}, f"not valid JSON ({err.msg}); fix or remove the line"
            continue
        if not isinstance(record, dict):
            yield line_no, {}, "expected a JSON object on the line"
            continue
        yield line_no, record, None


def _text_field(record: dict, field: str, min_chars: int) -> tuple[str, str | None]:
    value = record.get(field)
    if not isinstance(value, str) or not value.strip():
        return "", f'missing or empty "{field}" (a non-empty string is required)'
    if len(value.strip()) < min_chars:
        return "", f'"{field}" is too short ({len(value.strip())} chars, minimum {min_chars})'
    return value.strip(), None


def _curated_pair(record: dict, reference: str) -> tuple[SftPair | None, str | None]:
    instruction, problem = _text_field(record, "instruction", MIN_INSTRUCTION_CHARS)
    if problem:
        return None, problem
    response, problem = _text_field(record, "response", 1)
    if problem:
        return None, problem
    quality = record.get("quality", DEFAULT_CURATED_QUALITY)
    if isinstance(quality, bool) or not isinstance(quality, int | float) or not 0 <= quality <= 1:
        return None, f'"quality" must be a number in [0, 1], got {quality!r}'
    return SftPair(instruction, response, float(quality), "curated", reference), None


def _feedback_pair(record: dict, reference: str, min_rating: int) -> tuple[SftPair | None, str | None]:
    question, problem = _text_field(record, "question", MIN_INSTRUCTION_CHARS)
    if problem:
        return None, problem
    answer, problem = _text_field(record, "answer", 1)
    if problem:
        return None, problem
    rating = record.get("rating")
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        return None, f'"rating" must be an integer from 1 to 5, got {rating!r}'
    if rating < min_rating:
        return None, f"rating {rating} is below min_rating {min_rating}; dropped"
    return SftPair(question, answer, rating / 5, "feedback", reference), None

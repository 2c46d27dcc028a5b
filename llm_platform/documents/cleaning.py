"""Clean one document's text: rendering to prose, Unicode repair, layout
normalization, boilerplate removal, PII redaction and a quality score.

Everything is linear in the text length and needs no per-call setup, so
cleaning stays cheap next to embedding.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from llm_platform.documents import pii
from llm_platform.documents.chunking import find_headings
from llm_platform.documents.pii import redact_pii
from llm_platform.documents.rendering import RENDERER_VERSION, render_document
from llm_platform.documents.text_repair import repaired_text

# Bump when normalization, boilerplate or quality rules change what a document becomes.
CLEANER_VERSION = "2"
# Formats whose documents are records (an FAQ answer, a ticket), not pages.
RECORD_FORMATS = frozenset({"jsonl"})

_BOILERPLATE = re.compile(
    r"^(?:copyright\b|©|\(c\)\s*\d{4})"
    r"|all rights reserved"
    r"|^skip to (?:main )?content"
    r"|\b(?:we|this (?:web)?site) uses? cookies"
    r"|\baccept (?:all )?cookies\b"
    r"|^(?:cookie|privacy) (?:policy|settings|preferences)\b",
    re.IGNORECASE,
)
# Only short lines can be boilerplate: a paragraph that mentions copyright is content.
_MAX_BOILERPLATE_CHARS = 160
# A line seen this often is page furniture ("Back to top"), unless it is
# code, markup or a heading, which legitimately repeat.
_REPEATED_LINE_LIMIT = 5
_MIN_REPEATED_LINE_CHARS = 8
_MARKUP_START = re.compile(r"[#`~|>*=\-+_\s]")
_LETTER = re.compile(r"[^\W\d_]")
_INNER_SPACES = re.compile(r"(?<=\S)(?:[ \t\u00a0]{2,}|[\t\u00a0])")
_EXTRA_BLANK_LINES = re.compile(r"\n{4,}")

_MIN_WORDS = 50
# A record of a sentence or two is complete; the page-length rule does not fit it.
_MIN_RECORD_WORDS = 8
_WORD_LENGTH_RANGE = (3.0, 10.0)
_MIN_ALPHA_WORD_SHARE = 0.8
_MIN_UNIQUE_LINE_SHARE = 0.7


@dataclass(frozen=True)
class CleanedDocument:
    """A document's cleaned, redacted text with its title, PII counts and quality.

    `lost_in_rendering` says what rendering dropped, when it did (see
    `rendering.render_document`): such a document is set aside, not indexed cut.
    """

    text: str
    title: str | None
    pii_counts: dict[str, int]
    quality: float
    lost_in_rendering: str | None = None


def normalize_text(text: str) -> str:
    """Repair and tidy text: ftfy, newlines, spaces, blank lines, boilerplate lines.

    Leading indentation is kept because it carries code and list structure;
    runs of spaces, tabs and no-break spaces inside a line become one space.
    """
    lines = [_INNER_SPACES.sub(" ", line).rstrip() for line in repaired_text(text).split("\n")]
    repeated = _repeated_lines(lines)
    kept = "\n".join(line for line in lines if not _is_boilerplate(line, repeated))
    return _EXTRA_BLANK_LINES.sub("\n\n\n", kept).strip()


def cleaning_version() -> str:
    """What made a cleaned row: rendering, cleaning rules and the PII detector.

    Stored with each cleaned row; a row is reused only under the same version,
    so a new PII pattern or cleaning rule reaches documents cleaned before.
    """
    return f"render-{RENDERER_VERSION}/clean-{CLEANER_VERSION}/pii-{pii.DETECTOR_VERSION}"


def quality_score(text: str, *, fmt: str = "txt") -> float:
    """Return a quality score in [0, 1]: the product of four Gopher-style rule scores.

    After Rae et al. (2021), "Scaling Language Models" (Gopher) quality rules,
    each softened to a score in [0, 1]:
    - length: at least 50 words, 8 for a record format such as JSONL (score =
      words / minimum below that);
    - symbols: at least 80% of words contain a letter;
    - word length: mean word length within 3..10 characters (decays by a
      third per character outside);
    - repetition: at least 70% of non-blank lines are unique.
    The product means failing any one rule pulls the score down, as in Gopher.
    """
    words = text.split()
    if not words:
        return 0.0
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    min_words = _MIN_RECORD_WORDS if fmt in RECORD_FORMATS else _MIN_WORDS
    scores = (
        min(1.0, len(words) / min_words),
        min(1.0, sum(1 for w in words if _LETTER.search(w)) / len(words) / _MIN_ALPHA_WORD_SHARE),
        _word_length_score(sum(len(w) for w in words) / len(words)),
        min(1.0, len(set(lines)) / len(lines) / _MIN_UNIQUE_LINE_SHARE),
    )
    product = 1.0
    for score in scores:
        product *= score
    return round(product, 4)


def clean_document(text: str, *, fmt: str, title: str | None) -> CleanedDocument:
    """Clean one extracted document: render to prose, normalize, redact PII, score quality on the prose."""
    rendering = render_document(text, fmt)
    redacted, pii_counts = redact_pii(normalize_text(rendering.prose))
    title = title or _first_heading(redacted, fmt)
    clean_title, title_pii = redact_pii(" ".join(repaired_text(title).split())) if title else ("", {})
    counts = Counter(pii_counts) + Counter(title_pii)
    return CleanedDocument(
        redacted, clean_title or None, dict(counts), quality_score(redacted, fmt=fmt), rendering.lost
    )


def _first_heading(prose: str, fmt: str) -> str | None:
    # A README opening with <h1 align="center"> has no Markdown title until rendered.
    if fmt not in ("md", "rst", "html"):
        return None
    return next((h.title for h in find_headings(prose, fmt) if h.level == 1), None)


def _repeated_lines(lines: list[str]) -> Counter[str]:
    return Counter(line for line in lines if len(line) >= _MIN_REPEATED_LINE_CHARS and not _MARKUP_START.match(line))


def _is_boilerplate(line: str, repeated: Counter[str]) -> bool:
    if not line or len(line) > _MAX_BOILERPLATE_CHARS:
        return False
    if repeated[line] >= _REPEATED_LINE_LIMIT and _LETTER.search(line):
        return True
    return bool(_BOILERPLATE.search(line.strip()))


def _word_length_score(mean_length: float) -> float:
    low, high = _WORD_LENGTH_RANGE
    distance = max(low - mean_length, mean_length - high, 0.0)
    return max(0.0, 1.0 - distance / 3)

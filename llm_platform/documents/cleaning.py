"""Clean one document's text: main-content extraction, Unicode repair, layout
normalization, boilerplate removal, PII redaction and a quality score.

Everything is linear in the text length and needs no per-call setup, so
cleaning stays cheap next to embedding.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass


from llm_platform.documents.pii import redact_pii

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
_HTML_FALLBACK_DROP = "//script|//style|//nav|//header|//footer|//aside|//noscript|//form"

_MIN_WORDS = 50
_WORD_LENGTH_RANGE = (3.0, 10.0)
_MIN_ALPHA_WORD_SHARE = 0.8
_MIN_UNIQUE_LINE_SHARE = 0.7


@dataclass(frozen=True)
class CleanedDocument:
    """A document's cleaned, redacted text with its title, PII counts and quality."""

    text: str
    title: str | None
    pii_counts: dict[str, int]
    quality: float


def html_to_text(html: str) -> str:
    """Return the main content of an HTML page as Markdown (nav, footer, sidebars dropped).

    trafilatura does the extraction; its Markdown output keeps headings, which
    chunking uses. A plain tag strip is the fallback only when trafilatura
    finds no main content at all.
    """
    import trafilatura

    extracted = trafilatura.extract(html, output_format="markdown", include_comments=False, include_tables=True)
    return extracted if extracted else _strip_tags(html)


def normalize_text(text: str) -> str:
    """Repair and tidy text: ftfy, newlines, spaces, blank lines, boilerplate lines.

    Leading indentation is kept because it carries code and list structure;
    runs of spaces, tabs and no-break spaces inside a line become one space.
    """
    import ftfy

    lines = [_INNER_SPACES.sub(" ", line).rstrip() for line in ftfy.fix_text(text).split("\n")]
    repeated = _repeated_lines(lines)
    kept = "\n".join(line for line in lines if not _is_boilerplate(line, repeated))
    return _EXTRA_BLANK_LINES.sub("\n\n\n", kept).strip()


def quality_score(text: str) -> float:
    """Return a quality score in [0, 1]: the product of four Gopher-style rule scores.

    After Rae et al. (2021), "Scaling Language Models" (Gopher) quality rules,
    each softened to a score in [0, 1]:
    - length: at least 50 words (score = words / 50 below that);
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
    scores = (
        min(1.0, len(words) / _MIN_WORDS),
        min(1.0, sum(1 for w in words if _LETTER.search(w)) / len(words) / _MIN_ALPHA_WORD_SHARE),
        _word_length_score(sum(len(w) for w in words) / len(words)),
        min(1.0, len(set(lines)) / len(lines) / _MIN_UNIQUE_LINE_SHARE),
    )
    product = 1.0
    for score in scores:
        product *= score
    return round(product, 4)


def clean_document(text: str, *, fmt: str, title: str | None) -> CleanedDocument:
    """Clean one extracted document: HTML to text, normalize, redact PII, score quality."""
    body = html_to_text(text) if fmt == "html" else text
    redacted, pii_counts = redact_pii(normalize_text(body))
    import ftfy

    clean_title, title_pii = redact_pii(" ".join(ftfy.fix_text(title).split())) if title else ("", {})
    counts = Counter(pii_counts) + Counter(title_pii)
    return CleanedDocument(redacted, clean_title or None, dict(counts), quality_score(redacted))


def _strip_tags(html: str) -> str:
    import lxml.etree
    import lxml.html

    try:
        root = lxml.html.fromstring(html)
    # Raised for markup with no elements (blank, or only comments): there is
    # no text, and the empty result is quarantined downstream as too short.
    except lxml.etree.ParserError:
        return ""
    for element in root.xpath(_HTML_FALLBACK_DROP):
        element.drop_tree()
    return root.text_content()


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

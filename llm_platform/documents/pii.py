"""Find and redact personal data and secrets in text.

Regexes find candidates; validators (Luhn, ipaddress, digit counts) keep only
real hits, so ordinary numbers such as versions, dates and line numbers pass
through. Presidio would be the library choice, but it needs spaCy models
fetched from a hub, which the platform cannot do offline.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable

DETECTOR_VERSION = "1"  # bump when detection changes; part of the cleaning version, so cleaned rows are redone
_EMAIL = r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}\b"
# Without a leading "+", only North-American shapes with - or . separators
# count: bare space-separated digit groups are too often not phone numbers.
_PHONE = (
    r"(?<![\w+.-])(?:"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)|\d{1,4})(?:[ .-]\d{2,4}){2,4}"
    r"|(?:\(\d{3}\) ?|\d{3}[.-])\d{3}[.-]\d{4}"
    r")(?![\w-]|\.\d)"
)
_IPV4 = r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)"
_IPV6 = r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"
_CARD = r"(?<![\d.-])\d(?:[ -]?\d){12,18}(?![\d-]|\.\d)"
_API_KEY = "|".join(
    (
        r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",
        r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",
        r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
        r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}",
        r"\bAIza[0-9A-Za-z_-]{35}",
        r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        r"\b[Bb]earer +[A-Za-z0-9._~+/-]{20,}=*",
    )
)

# Insertion order is the tie-break when hits of two kinds start at the same
# place with the same length (an API key wins over anything inside it).
PII_PATTERNS: dict[str, re.Pattern[str]] = {
    "api_key": re.compile(_API_KEY),
    "email": re.compile(_EMAIL),
    "credit_card": re.compile(_CARD),
    "ip_address": re.compile(f"{_IPV4}|{_IPV6}"),
    "phone": re.compile(_PHONE),
}

# Issuer prefixes of Visa, Mastercard, Amex, Discover and Diners: a Luhn check
# alone passes one random digit string in ten.
_CARD_ISSUER = re.compile(r"4|5[1-5]|2[2-7]|3[47]|3[068]|6(?:011|5|4[4-9])")
_MAX_REDACTION_ROUNDS = 5


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _is_card(text: str) -> bool:
    digits = _digits(text)
    return 13 <= len(digits) <= 19 and bool(_CARD_ISSUER.match(digits)) and _luhn_valid(digits)


def _is_ip(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if address.version == 6:
        # "1::2" is a valid address but also a Python slice; demand some substance.
        return sum(1 for group in text.split(":") if group) >= 3
    return True


def _is_phone(text: str) -> bool:
    return 8 <= len(_digits(text)) <= 15


_VALIDATORS: dict[str, Callable[[str], bool]] = {
    "credit_card": _is_card,
    "ip_address": _is_ip,
    "phone": _is_phone,
}


def _candidate_spans(text: str) -> list[tuple[int, int, int, str]]:
    spans = []
    for priority, (kind, pattern) in enumerate(PII_PATTERNS.items()):
        validator = _VALIDATORS.get(kind)
        for match in pattern.finditer(text):
            if validator is None or validator(match.group()):
                spans.append((match.start(), match.end(), priority, kind))
    return spans


def _hit_spans(text: str) -> list[tuple[int, int, str]]:
    """Return non-overlapping (start, end, kind), earliest and then longest first."""
    candidates = sorted(_candidate_spans(text), key=lambda s: (s[0], -(s[1] - s[0]), s[2]))
    hits: list[tuple[int, int, str]] = []
    for start, end, _, kind in candidates:
        if not hits or start >= hits[-1][1]:
            hits.append((start, end, kind))
    return hits


def find_pii(text: str) -> list[tuple[str, str]]:
    """Return (kind, matched text) for each validated PII hit in `text`, in order."""
    return [(kind, text[start:end]) for start, end, kind in _hit_spans(text)]


def _redact_once(text: str, counts: Counter[str]) -> tuple[str, bool]:
    hits = _hit_spans(text)
    if not hits:
        return text, False
    pieces, cursor = [], 0
    for start, end, kind in hits:
        pieces.append(text[cursor:start])
        pieces.append(f"[REDACTED_{kind.upper()}]")
        counts[kind] += 1
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces), True


def redact_pii(text: str) -> tuple[str, dict[str, int]]:
    """Replace each PII hit with "[REDACTED_<KIND>]"; return the text and counts by kind."""
    counts: Counter[str] = Counter()
    # A candidate that lost an overlap to a longer hit can leave a shorter valid
    # hit behind, so repeat until nothing is found.
    for _ in range(_MAX_REDACTION_ROUNDS):
        text, changed = _redact_once(text, counts)
        if not changed:
            break
    return text, dict(counts)

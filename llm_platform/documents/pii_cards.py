"""Payment card numbers: a Luhn-valid stretch of 13 to 19 digits, wherever it is written.

No issuer table decides: a list of issuer prefixes goes stale (it missed JCB
`35`, UnionPay `62` and Maestro `50`/`56`-`69` cards, real numbers that were
left in the text), and the independent audit behind `no_pii_left` flags every
Luhn-valid stretch anyway. What keeps ordinary figures out is the shape a
card is written in: unbroken, or in groups split by separators (mixed ones
too: `4111 1111-1111-1111`), the first group of four digits or more (`4111 1111 1111 1111`,
`3782 822463 10005`), in a run of at most eight groups (a longer run is a
table of figures, where one stretch in ten would pass Luhn). A stretch may
start inside a short run, so a card next to a year or an expiry date
(`2023 4111 1111 1111 1111 12 27`) or after a group glued to a word
(`Card1 4111 1111 1111 1111`; the glued group itself starts an IBAN or an
id) is still found; none starts with 0 (an
all-zero UUID passes Luhn) or after a decimal point (`3.14159265358979`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from llm_platform.documents.pii_prefilter import TextGate

# Any one separator between digit groups: space, dot, dash, slash, underscore, no-break or thin space, Unicode dashes.
_DIGIT_RUN = re.compile(r"\d+(?:[ .\-/_\u00a0\u2009\u2010-\u2015]\d+)*")
_DIGIT_GROUP = re.compile(r"\d+")
# A card is at least 13 digits of one run, one separator (of _DIGIT_RUN's) at most between two.
_CARD_GATE = TextGate(re.compile(r"\d(?:[ .\-/_\u00a0\u2009\u2010-\u2015]?\d){12}"))
_IBAN_COUNTRY = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}")
_MAX_RUN_GROUPS = 8
_MIN_FIRST_GROUP_DIGITS = 4
_MIN_CARD_DIGITS, _MAX_CARD_DIGITS = 13, 19

Span = tuple[int, int]


def card_spans(text: str) -> Iterator[Span]:
    """(start, end) of the longest card number starting at each digit group of `text` that can start one."""
    from stdnum import luhn

    if not _CARD_GATE.lets_through(text):
        return
    for run in _DIGIT_RUN.finditer(text):
        groups = [group.span() for group in _DIGIT_GROUP.finditer(text, run.start(), run.end())]
        if len(groups) > _MAX_RUN_GROUPS:
            continue
        # A group glued to a letter ("v12 ...") starts an id or a name, not a card, but the groups after it
        # still may ("Card1 4111 1111 1111 1111"); a run after an IBAN's country code ("DE89 3704 ...") is its body.
        if _IBAN_COUNTRY.fullmatch(text, max(run.start() - 2, 0), groups[0][1]):
            continue
        glued = text[run.start() - 1 : run.start()].isalpha()
        for first, (start, first_end) in enumerate(groups):
            too_short = first_end - start < _MIN_FIRST_GROUP_DIGITS
            if too_short or text[start] == "0" or _after_a_point(text, groups, first) or (glued and not first):
                continue
            longest = None
            for _, end in groups[first:]:
                digits = "".join(text[s:e] for s, e in groups[first:] if e <= end)
                if len(digits) > _MAX_CARD_DIGITS:
                    break
                if len(digits) >= _MIN_CARD_DIGITS and luhn.is_valid(digits):
                    longest = (start, end)
            if longest:
                yield longest


def _after_a_point(text: str, groups: list[Span], index: int) -> bool:
    # The digits after a decimal point ("3.14159265358979") are a fraction, not the start of a card.
    return index > 0 and text[groups[index - 1][1] : groups[index][0]] == "."

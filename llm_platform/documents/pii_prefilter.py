"""Cheap tests that say where an expensive PII pattern cannot match, so it runs only where it can, with the same hits.

Keyword-led patterns run only where their keyword is (`KeywordScan`); other
detectors run only on texts their `TextGate` lets through.

A pattern that starts with assertions (`\\b`, look-behinds) gives the regex
engine no literal or character class to skip ahead with, so `finditer` tries a
full match at every character of the text. Where every match of the pattern
starts with one of a few keywords (`password`, `token`, `call`), a `KeywordScan`
finds where those keywords are with `str.find` (which skips ahead in C) and tries
the pattern only there.

Why the matches are the same: `finditer` reports the match at the lowest
position at or after its cursor where the pattern matches, then moves the cursor
to that match's end. The pattern can match only where a keyword starts, so the
lowest such position among the keyword positions is the same position, and
`pattern.match(text, position)` there is the same match (assertions still see
the characters before `position`: `pos` is not a slice).

The keywords are found case-blind the way `re.IGNORECASE` is: a letter matches
its lower case and, for the ASCII letters, four more characters (Python's `re`
documentation names them); those are folded to the letter they match first, so
`paſſword` (long s) is seen where the pattern sees it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

# The non-ASCII characters `re.IGNORECASE` matches to an ASCII letter, and the letter each matches.
FOLDS_TO_ASCII = {"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"}
_FOLD_TABLE = str.maketrans(FOLDS_TO_ASCII)


def ascii_case_folded(text: str) -> str | None:
    """`text` lower-cased as `re.IGNORECASE` compares ASCII letters, index for index; None where lowering moves them."""
    # translate() costs far more than lower(), and these characters are rare.
    if not text.isascii() and any(character in text for character in FOLDS_TO_ASCII):
        text = text.translate(_FOLD_TABLE)
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else None


class KeywordScan(NamedTuple):
    """`pattern`, every match of which starts with one of `keywords` (lower case, found case-blind)."""

    pattern: re.Pattern[str]
    keywords: tuple[str, ...]

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """The matches `self.pattern.finditer(text)` yields, in the same order."""
        folded = ascii_case_folded(text)
        if folded is None:
            yield from self.pattern.finditer(text)
            return
        cursor = 0
        for position in _keyword_positions(folded, self.keywords):
            if position < cursor:
                continue
            match = self.pattern.match(text, position)
            if match:
                yield match
                cursor = match.end()


def _keyword_positions(folded: str, keywords: tuple[str, ...]) -> list[int]:
    positions = set()
    for keyword in keywords:
        position = folded.find(keyword)
        while position >= 0:
            positions.add(position)
            position = folded.find(keyword, position + 1)
    return sorted(positions)


class TextGate(NamedTuple):
    """`regex`, which some stretch of every hit of a detector matches: where it finds nothing, the detector cannot.

    The regex looks at nothing outside its own match (no look-ahead; a look-behind
    only over characters a hit holds), so it matches inside a hit as it does in
    the whole text; it starts with a character class, so the engine skips ahead
    to where it can start, which the detector's own look-behind-led pattern cannot.
    """

    regex: re.Pattern[str]

    def lets_through(self, text: str) -> bool:
        """Whether the detector may find anything in `text`."""
        return self.regex.search(text) is not None

"""Phone numbers in any region, found by `phonenumbers` (Google's libphonenumber).

libphonenumber knows which numbers exist in each region (area codes, mobile
ranges, lengths), which no regex can. Two rules of our own keep ordinary
figures out: a bare digit run needs a phone word before it, and the matcher
reads only stretches of digits that can hold a phone number. Four take in
what its data drops but any reader calls a phone number: a "+" number of
E.164 length, a number right after a phone word, the North American 3-3-4
layout and a number after the trunk "0" of an area code, whatever the
codes in them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from llm_platform.documents.pii_prefilter import KeywordScan, TextGate

# National formats (no leading "+") are read as numbers of these regions;
# international formats are found whatever the region.
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN")
_DIGIT_RUN = re.compile(r"(?<![A-Za-z0-9_])[+(]?\d[\d \t\u00a0().\-/]*\d")
_GAP = re.compile(r"[ \t\u00a0]{2,}")
_MAX_PHONE_DIGITS = 18
_PHONE_CONTEXT = 4
_MIN_PHONE_DIGITS = 6
_MIN_INTERNATIONAL_DIGITS = 9
_PHONE_WORD = re.compile(
    r"(?i)\b(?:(?:call|phone|telephone|mobile|cell|fax|contact|dial|ring|telefon|handy|mobil|rufnummer|t[ée]l[ée]phone|portable)s?"
    r"|tel|reach|sms|whatsapp|text me|t[ée]l|ph)\b|[\u260e\U0001f4de]"
)
_PHONE_WORD_DISTANCE = 40
_DATE = re.compile(r"\d{1,2}([./-])\d{1,2}\1\d{2,4}|\d{4}([./-])\d{1,2}\2\d{1,2}")
_BARE_NUMBER = re.compile(r"\(?\d+\)?")
# The plus signs libphonenumber reads as the start of a country code.
_PLUS_SIGNS = "+\uff0b"
# Stretches of digits recur (addresses, ids, figures in tables); the matcher's answer for each is remembered.
_REMEMBERED_WINDOWS = 8192
# A "+" and a country code say "phone number" on their own. libphonenumber
# drops one whose length does not fit that country ("+770913552288" is a digit
# too long for +7), but a mistyped or newly allocated number is still someone's,
# so any such number of E.164 length (at most 15 digits) counts; North American
# numbers (+1) always have 11.
_E164_NUMBER = re.compile(r"(?<![\w+\uff0b])[+\uff0b][1-9](?:[ \t\u00a0.\-/()]{0,2}\d){7,14}")
# _E164_NUMBER without its look-behind, its repeat cut to the fewest it takes.
_E164_GATE = TextGate(re.compile(r"[+\uff0b][1-9](?:[ \t\u00a0.\-/()]{0,2}\d){7}"))
_MAX_E164_DIGITS = 15
_NORTH_AMERICAN_E164_DIGITS = 11
# Written 3-3-4 with separators ("364-127-7954", "(212) 555 0199") a number
# reads as North American to anyone, even where its area or exchange code is
# unassigned (a typo, a made-up example): libphonenumber drops those. A run that
# goes on (more groups, or a dash and a word: an id) is not one, nor is a
# bracketed area code starting with 1 (none anywhere does: the audit agrees).
_NORTH_AMERICAN_LAYOUT = re.compile(
    r"(?<![\w.+\-/])(?<!\d )(?:\([02-9]\d\d\) ?|\d{3}[ .\-/])\d{3}[ .\-/]\d{4}(?![\w]|[ .\-/]\d|-[^\W\d_])"
)
# The last two groups of every _NORTH_AMERICAN_LAYOUT hit.
_NORTH_AMERICAN_LAYOUT_GATE = TextGate(re.compile(r"\d{3}[ .\-/]\d{4}"))
# A number written after the trunk "0" of its area code, bracketed or not, in
# two to five groups ("(085) 289-222", "0769/53333", "030 1234 567"), reads as
# a phone number to anyone, even where libphonenumber's data has no such area
# code or length: 9 to 13 digits, as the audit reads a national number. A run
# that goes on (more groups, a dash and a word: an id) is not one, nor a date,
# nor what no phone number is written as (`_is_other_figure`).
_TRUNK_LAYOUT = re.compile(
    r"(?<![\w.+\-/])(?<!\d )(?:\(0\d{1,4}\)[ \t\u00a0]?|0\d{1,4}[ .\-/])\d{2,8}(?:[ .\-/]\d{2,8}){0,3}"
    r"(?![\w]|[ .\-/]\d|-[^\W\d_])"
)
# The area code and the first digit after it, in every _TRUNK_LAYOUT hit.
_TRUNK_LAYOUT_GATE = TextGate(re.compile(r"0\d{0,4}(?:\)[ \t\u00a0]?|[ .\-/])\d"))
_TRUNK_NUMBER_DIGITS = range(9, 14)
# Right after a phone word on its line ("cell: 612345678", "fax=0301234567"),
# a number is one whatever the region: the word says so, and the regions'
# data (Spain's nine digits are in none of PHONE_REGIONS) would miss it.
_DIALLED = re.compile(
    r"(?i)\b(?:call|phone|tel|mobile|cell|fax|contact|dial|sms|whatsapp|telefon|handy|ring)s?\b"
    r"[^\w\n]{1,20}(\+?\d[\d ()./-]{6,}\d)"
)
# Each phone word of _DIALLED starts with one of these ("telefon" with "tel"); `\b` takes no characters.
_DIALLED_SCAN = KeywordScan(
    _DIALLED,
    ("call", "phone", "tel", "mobile", "cell", "fax", "contact", "dial", "sms", "whatsapp", "handy", "ring"),
)

Span = tuple[int, int]


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def phone_spans(text: str) -> Iterator[Span]:
    """(start, end) of each phone number in `text`; the same number may come more than once."""
    yield from _e164_spans(text)
    yield from _dialled_spans(text)
    yield from _north_american_layout_spans(text)
    yield from _trunk_layout_spans(text)
    for start, end in _phone_candidates(text):
        # A little context lets the matcher see letters next to a number.
        offset = max(0, start - _PHONE_CONTEXT)
        for match_start, match_end, international in _matcher_hits(text[offset : end + _PHONE_CONTEXT]):
            hit = (offset + match_start, offset + match_end)
            if _is_phone(text, *hit, international=international):
                yield hit


def _e164_spans(text: str) -> Iterator[Span]:
    if not _E164_GATE.lets_through(text):
        return
    for match in _E164_NUMBER.finditer(text):
        digits = len(_digits(match.group()))
        longest = _NORTH_AMERICAN_E164_DIGITS if match.group()[1] == "1" else _MAX_E164_DIGITS
        shortest = _NORTH_AMERICAN_E164_DIGITS if match.group()[1] == "1" else _MIN_INTERNATIONAL_DIGITS
        if shortest <= digits <= longest:
            yield match.span()


def _north_american_layout_spans(text: str) -> Iterator[Span]:
    if not _NORTH_AMERICAN_LAYOUT_GATE.lets_through(text):
        return
    for match in _NORTH_AMERICAN_LAYOUT.finditer(text):
        if not _DATE.search(match.group()):
            yield match.span()


def _trunk_layout_spans(text: str) -> Iterator[Span]:
    if not _TRUNK_LAYOUT_GATE.lets_through(text):
        return
    for match in _TRUNK_LAYOUT.finditer(text):
        number = match.group()
        if len(_digits(number)) in _TRUNK_NUMBER_DIGITS and not _DATE.search(number) and not _is_other_figure(number):
            yield match.span()


def _is_other_figure(number: str) -> bool:
    """Whether `number`, though grouped like a national phone number, is written as no phone number is."""
    separators = set(re.findall(r"[^\d()]+", number))
    return bool(
        # After the trunk "0" comes an area code, after "00" a country code: neither starts with 0.
        number.startswith("000")
        # A dot after other separators is a decimal point: "0086 723.91" is a row of a table.
        or ("." in separators and len(separators) > 1)
        # Four dotted groups of up to three digits are an address's shape ("08.472.486.04").
        or re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", number)
    )


def _dialled_spans(text: str) -> Iterator[Span]:
    for match in _DIALLED_SCAN.finditer(text):
        # More digits than E.164 allows is a list of numbers, which the matcher splits.
        if _MIN_PHONE_DIGITS <= len(_digits(match.group(1))) <= _MAX_E164_DIGITS and not _DATE.search(match.group(1)):
            yield match.span(1)


@functools.lru_cache(maxsize=_REMEMBERED_WINDOWS)
def _matcher_hits(window: str) -> tuple[tuple[int, int, bool], ...]:
    """(start, end, international) of each number libphonenumber's matcher finds in `window`, in search order."""
    import phonenumbers

    # A number written with its country code ("+44 ...") counts when its length
    # fits that country, so reserved ranges such as the UK's 07700 900xxx
    # (used in examples, rejected as invalid) are redacted too. Without a
    # region the parser reads only numbers that start with a plus sign, so
    # that search is skipped where the window has none.
    international = [("ZZ", phonenumbers.Leniency.POSSIBLE)] if any(plus in window for plus in _PLUS_SIGNS) else []
    searches = international + [(region, phonenumbers.Leniency.VALID) for region in PHONE_REGIONS]
    return tuple(
        (match.start, match.end, leniency == phonenumbers.Leniency.POSSIBLE)
        for region, leniency in searches
        for match in phonenumbers.PhoneNumberMatcher(window, region, leniency=leniency)
    )


def _phone_candidates(text: str) -> Iterator[Span]:
    """Stretches of digits and separators that may hold a phone number.

    The matcher costs about a millisecond a call, so it reads only these: a
    number's groups are one separator apart, so a wider gap splits a run, and a
    stretch of more digits than any phone number has (a table of figures) is
    read only when a phone word or "+" says it holds one.
    """
    for run in _DIGIT_RUN.finditer(text):
        cursor = run.start()
        for gap in [*_GAP.finditer(text, run.start(), run.end()), None]:
            end = gap.start() if gap else run.end()
            digits = len(_digits(text[cursor:end]))
            wanted = (
                digits <= _MAX_PHONE_DIGITS
                or "+" in text[cursor:end]
                or _PHONE_WORD.search(text, max(0, cursor - _PHONE_WORD_DISTANCE), cursor)
            )
            if digits >= _MIN_PHONE_DIGITS and wanted:
                yield cursor, end
            cursor = gap.end() if gap else end


def _is_phone(text: str, start: int, end: int, *, international: bool) -> bool:
    digits = len(_digits(text[start:end]))
    if _DATE.fullmatch(text[start:end]):
        return False
    if international:
        return digits >= _MIN_INTERNATIONAL_DIGITS
    # Four in five random 10-digit numbers are valid in some region; a bare
    # digit run (a timestamp, an integer limit) is a phone number only when
    # the text says so.
    if _BARE_NUMBER.fullmatch(text[start:end]):
        return bool(_PHONE_WORD.search(text, max(0, start - _PHONE_WORD_DISTANCE), start))
    return True

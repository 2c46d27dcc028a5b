"""A second opinion on redacted text: broad scans that share no rule with the redactor.

`no_pii_left` must not pass just because the redactor missed something: with
the same detectors, a miss of one is a pass of the other. These scans are
deliberately wider and simpler than the redactor's rules (no provider formats,
no phone-number data), and judge a value by its shape
rather than by the redactor's lists of placeholders and code patterns
(`pii_audit_values`), so a new variant of a number or a credential trips the
check even when the redactor lets it through. They are not used to redact: on
arbitrary text they would flag too much; on cleaned text, real documentation
included, they should find nothing.

A run of letters and digits that only looks generated, with no key name or
provider prefix to say it is a key, is reported apart (`audit_random_tokens`):
invite links and ids in base62 look the same, so it warns rather than blocks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from llm_platform.documents.pii_audit_values import is_mixed, is_passphrase, is_random, is_secret_value
from llm_platform.documents.pii_prefilter import KeywordScan, TextGate

_REDACTED = re.compile(r"\[REDACTED_[A-Z_]+\]")
# What a placeholder is blanked to: no scan reads it as a digit, a separator or part of a value.
_BLANK = "\x00"
# Any one separator between digit groups, or none.
_DIGIT_RUN = re.compile(r"\d+(?:[ .\-/_\u00a0\u2009\u2010-\u2015]\d+)*")
_DIGIT_GROUP = re.compile(r"\d+")
_SSN_LIKE = re.compile(r"(?<!\d)\d{3}[^\w\n]\d{2}[^\w\n]\d{4}(?!\d)")
# _SSN_LIKE without its look-arounds.
_SSN_LIKE_GATE = TextGate(re.compile(r"\d{3}[^\w\n]\d{2}[^\w\n]\d{4}"))
_SSN_NAMED = re.compile(r"(?i)(?:ssn|social security)\D{0,20}(\d{9})(?!\d)")
_SSN_NAMED_SCAN = KeywordScan(_SSN_NAMED, ("ssn", "social security"))
_IBAN_START = re.compile(r"(?i)(?<![a-z0-9])[a-z]{2}\d{2}")
_IBAN_BODY = re.compile(r"(?:[ .\-]?[A-Za-z0-9]){0,40}")
# An IBAN is 15 characters at least: its start (letters and check digits) and 11 of its body.
# Digits first: the engine skips to digits, which prose has few of; letters it would try at every one.
_IBAN_GATE = TextGate(re.compile(r"(?i)\d\d(?<=[a-z]{2}\d\d)(?:[ .\-]?[a-z0-9]){11}"))
# No "/" in the local part: "tiktok.com/@scikit.learn" is a profile link, not an address.
_ADDRESS = re.compile(
    r"(?<![^\s@<>()\[\]{}\"',;:/\x00])[^\s@<>()\[\]{}\"',;:/\x00]+@[^\s@<>()\[\]{}\"',;:\x00]+\.[^\W\d_]{2,}"
)
# Every _ADDRESS hit holds its "@".
_ADDRESS_GATE = TextGate(re.compile("@"))
_OBFUSCATED_AT = re.compile(r"(?i)\w\s*[\[({]\s*at\s*[\])}]\s*\w")
# _OBFUSCATED_AT without the word characters at its ends.
_OBFUSCATED_AT_GATE = TextGate(re.compile(r"(?i)[\[({]\s*at\s*[\])}]"))
# Key and value on one line: a heading underlined with "=" is not an assignment.
# "pass" is a key glued to anything (`DBPASS`, `adminpass:`, `passkey`) but a
# lower-case prose word ("bypass", "compass", "passenger"); "author",
# "authored", "authority" are no "auth", "authorization" is.
_SECRET_KEY = re.compile(
    r"(?i)(?P<key>(?:(?-i:(?<!by)(?<!com)(?<!sur)(?<!tres)(?<!over)(?<!under))pass(?:word|wd|phrase|code|wort|key|(?![a-z]))"
    r"|pwd|secret|token|api.?key|access.?key|private.?key|auth(?!or(?!ization))|credential)[\w.-]{0,40})"
    r"[\"'*`]{0,3}\]?[ \t]*(?:=>|:=|=|:)[*_]{0,2}[ "
    r"\t]*[\"'`]?(?!(?:basic|bearer|token|digest|negotiate)\s)(?P<value>[^\s\"'`&;,\x00]+)"
)
# Each alternative of the key starts with one of these (look-behinds take no characters).
_SECRET_KEY_SCAN = KeywordScan(
    _SECRET_KEY, ("pass", "pwd", "secret", "token", "api", "access", "private", "auth", "credential")
)
_AUTH_HEADER = re.compile(r"(?i)authorization[\"']?[ \t]*[:=][ \t]*[\"']?\w+[ \t]+([^\s\"'\x00]{6,})")
_URL_USERINFO = re.compile(r"://[^\s/@:]*:([^\s/@\x00]+)@")
_PRIVATE_KEY = re.compile(r"BEGIN[A-Z ]*PRIVATE KEY")
# A provider's prefix ("ghp_", "sk_live_", "hf_"; "ghp\_" as Markdown escapes it) and a random body.
_PREFIXED_TOKEN = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2,8}(?:\\?_[A-Za-z]{2,8})?\\?[_-]([A-Za-z0-9]{20,})(?![A-Za-z0-9])"
)
# The separator and body of every _PREFIXED_TOKEN hit.
_PREFIXED_TOKEN_GATE = TextGate(re.compile(r"[_-][A-Za-z0-9]{20}"))
# A webhook URL is its own credential: whoever has it can post.
_WEBHOOK_URL = re.compile(r"(?i)https?://[^\s/]{0,100}hook[^\s]{0,300}/([A-Za-z0-9]{16,})(?![A-Za-z0-9])")
# Without a key name or a prefix, only unbroken runs of letters and digits.
_BARE_TOKEN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{20,}(?![A-Za-z0-9])")
_HEX = re.compile(r"[0-9a-f]+|[0-9A-F]+")
_AWS_KEY_ID = re.compile(r"A[KS]IA[0-9A-Z]{16}")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
# Every _IPV4 hit from its first group's last digit to its last group's first.
_IPV4_GATE = TextGate(re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d"))
_INTERNATIONAL_PHONE = re.compile(r"(?<![\w+])\+[1-9](?:[ .\-/()]{0,2}\d){7,14}")
# _INTERNATIONAL_PHONE without its look-behind, its repeat cut to the fewest it takes.
_INTERNATIONAL_PHONE_GATE = TextGate(re.compile(r"\+[1-9](?:[ .\-/()]{0,2}\d){7}"))
# North American numbers (+1, or a bracketed area code, which never starts with 0 or 1) have ten digits.
_NORTH_AMERICAN = re.compile(r"\+1|\([2-9]\d\d\)")
_NORTH_AMERICAN_DIGITS = 10
# National numbers: a whole run of two to five groups of digits, 9 to 13
# digits in all (a run that goes on is a table of figures); or any digits
# after a phone word.
# A run joined by a dash to a word goes on as an id ("0923-164208-meows279", a cluster id).
_GROUPED_NUMBER = re.compile(
    r"(?<![\w.+\-/])(?<!\d )\(?\d{2,5}\)?(?:[ .\-/]\(?\d{2,8}\)?){1,4}(?![\w]|[ .\-/]\d|-[^\W\d_])"
)
# A national number has 9 digits at least, in groups split by one separator, maybe with brackets.
_GROUPED_NUMBER_GATE = TextGate(re.compile(r"\d(?:\)?[ .\-/]?\(?\d){8}"))
_DATE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
# The word or its plural ("dialect", "callback" are neither), then the number on the same line.
_AFTER_PHONE_WORD = re.compile(
    r"(?i)\b(?:call|phone|tel|mobile|cell|fax|contact|dial|sms|whatsapp|telefon|handy|ring)s?\b"
    r"[^\w\n]{1,20}(\+?\d[\d ()./-]{6,}\d)"
)
# Each phone word starts with one of these ("telefon" with "tel"); `\b` takes no characters.
_AFTER_PHONE_WORD_SCAN = KeywordScan(
    _AFTER_PHONE_WORD,
    ("call", "phone", "tel", "mobile", "cell", "fax", "contact", "dial", "sms", "whatsapp", "handy", "ring"),
)
_MAX_CARD_RUN_GROUPS = 8
# A card is at least 13 digits of one run, one separator (of _DIGIT_RUN's) at most between two.
_CARD_GATE = TextGate(re.compile(r"\d(?:[ .\-/_\u00a0\u2009\u2010-\u2015]?\d){12}"))
_MIN_CARD_FIRST_GROUP = 4

Span = tuple[int, int]
_MAX_PHRASE_CHARS = 100
_MIN_DIALLED_DIGITS = 6


def _luhn_valid(digits: str) -> bool:
    from stdnum import luhn

    return luhn.is_valid(digits)


def _cards(text: str) -> Iterator[Span]:
    # Every stretch of whole groups in a short run, so a card next to a year or
    # an expiry date ("2023 4111 1111 1111 1111 12 27") is still seen; a longer
    # run is a table of figures, where one stretch in ten would pass Luhn. A
    # card starts with a group of four or more digits, not with 0 (an all-zero
    # UUID passes Luhn) nor after a decimal point: "8.8 221343 090954" is a row
    # of a process table. Separators may mix ("4111 1111-1111-1111"): the audit is the wider of the two.
    if not _CARD_GATE.lets_through(text):
        return
    for run in _DIGIT_RUN.finditer(text):
        groups = [g.span() for g in _DIGIT_GROUP.finditer(text, run.start(), run.end())]
        if len(groups) > _MAX_CARD_RUN_GROUPS:
            continue
        # A group glued to a letter ("v12 ...") starts an id or a name, not a card, but the groups after it
        # still may ("Card1 4111 1111 1111 1111"); a run after an IBAN's country code ("DE89 3704 ...") is its body.
        if _IBAN_START.match(text, max(run.start() - 2, 0), run.start() + 2) and groups[0][1] - run.start() == 2:
            continue
        glued = text[run.start() - 1 : run.start()].isalpha()
        for first, (start, first_end) in enumerate(groups):
            after_point = first > 0 and text[groups[first - 1][1] : start] == "."
            if first_end - start < _MIN_CARD_FIRST_GROUP or text[start] == "0" or after_point or (glued and not first):
                continue
            digits = ""
            for group_start, end in groups[first:]:
                digits += text[group_start:end]
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and _luhn_valid(digits):
                    yield start, end


def _ssns(text: str) -> Iterator[Span]:
    from stdnum.us import ssn

    for match in _SSN_LIKE.finditer(text) if _SSN_LIKE_GATE.lets_through(text) else ():
        if ssn.is_valid(re.sub(r"\D", "", match.group())):
            yield match.span()
    for match in _SSN_NAMED_SCAN.finditer(text):
        if ssn.is_valid(match.group(1)):
            yield match.span(1)


def _ibans(text: str) -> Iterator[Span]:
    from stdnum import iban

    if not _IBAN_GATE.lets_through(text):
        return
    for start in _IBAN_START.finditer(text):
        body = _IBAN_BODY.match(text, start.end())
        end = body.end() if body else start.end()
        compact = re.sub(r"[^A-Za-z0-9]", "", text[start.start() : end]).upper()[:34]
        if any(iban.is_valid(compact[:length]) for length in range(15, len(compact) + 1)):
            yield start.start(), end


def _is_secret_assignment(match: re.Match[str]) -> bool:
    # A value that opens a quoted phrase ("submits high") is judged with the whole phrase; a
    # variable passed under its own name (`getpass=getpass`) is code.
    key, value = match.group("key"), match.group("value")
    if value.rstrip(".,;:)]}>") == _name_around(match.string, match.start("key"), match.end("key")):
        return False
    phrase = _quoted_phrase(match.string, match.start("value"), match.end("value"))
    return is_secret_value(key, value) and (phrase is None or is_passphrase(key, phrase))


def _name_around(text: str, start: int, end: int) -> str:
    """The whole identifier the key name at `start`..`end` ends ("getpass" around "pass")."""
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    return text[start:end]


def _quoted_phrase(text: str, start: int, end: int) -> str | None:
    """The quoted phrase with spaces the value at `start`..`end` opens, if it opens one on its line."""
    quote = text[start - 1 : start]
    if quote not in ("'", '"') or text[end : end + 1] != " ":
        return None
    closing = text.find(quote, end, end + _MAX_PHRASE_CHARS)
    phrase = text[start:closing] if closing >= 0 else ""
    return phrase if phrase and "\n" not in phrase else None


def _is_secret_token(match: re.Match[str]) -> bool:
    return is_random(match.group()) and not _HEX.fullmatch(match.group())


def _is_international_phone(match: re.Match[str]) -> bool:
    digits = sum(c.isdigit() for c in match.group())
    return digits == _NORTH_AMERICAN_DIGITS + 1 if match.group().startswith("+1") else True


def _is_national_phone(match: re.Match[str]) -> bool:
    # A national number starts with its trunk "0" or an area code in brackets,
    # or has the North American 3-3-4 or Indian 5-5 shape; other grouped
    # figures ("1024 2048 4096") are sizes and counts.
    number = match.group()
    groups = [len(group) for group in re.findall(r"\d+", number)]
    # Indian mobile numbers (the 5-5 shape) start with 6 to 9.
    shaped = number.startswith(("0", "(")) or groups == [3, 3, 4] or (groups == [5, 5] and number[0] in "6789")
    if _NORTH_AMERICAN.match(number) and sum(groups) != _NORTH_AMERICAN_DIGITS:
        return False
    return shaped and 9 <= sum(groups) <= 13 and not _DATE.search(number) and not _is_other_figure(number)


def _is_other_figure(number: str) -> bool:
    """Whether `number`, though grouped like a national phone number, is written as no phone number is."""
    separators = set(re.findall(r"[^\d()]+", number))
    return bool(
        # After the trunk "0" comes an area code, after "00" a country code: neither starts with 0.
        number.startswith("000")
        # No area code in brackets starts with 1 ("(106) 709-7777"; Brazil's "(11)" has two digits).
        or re.match(r"\(1\d\d\)", number)
        # A dot after other separators is a decimal point: "0086 723.91" is a row of a table.
        or ("." in separators and len(separators) > 1)
        # A bracket closed but never opened ends an interval ("[92,08) 473-5177977"): no area code.
        or number.count("(") != number.count(")")
        # Four dotted groups of up to three digits are an address's shape ("08.472.486.04").
        or re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", number)
    )


def _is_dialled_number(match: re.Match[str]) -> bool:
    # No phone number has fewer than six digits: "mobile 8.9 / 69.5 ms" is a row of timings.
    return not _DATE.search(match.group(1)) and sum(c.isdigit() for c in match.group(1)) >= _MIN_DIALLED_DIGITS


def _is_ipv4(address: str) -> bool:
    # A leading zero ("012.4.4.0") is how a version string reads, and no address
    # parser takes it (it could be octal); an address zero-padded to three
    # digits in every octet ("192.168.001.010") is still one.
    octets = address.split(".")
    padded = all(len(octet) == 3 for octet in octets)
    return all(int(octet) <= 255 and (padded or octet == "0" or not octet.startswith("0")) for octet in octets)


def _found(
    pattern: re.Pattern[str] | KeywordScan,
    valid: Callable[[re.Match[str]], bool] = lambda match: True,
    gate: TextGate | None = None,
) -> Callable[[str], Iterator[Span]]:
    def spans(text: str) -> Iterator[Span]:
        if gate is None or gate.lets_through(text):
            yield from (match.span() for match in pattern.finditer(text) if valid(match))

    return spans


def _found_group(
    pattern: re.Pattern[str] | KeywordScan, group: str | int, valid: Callable[[re.Match[str]], bool]
) -> Callable[[str], Iterator[Span]]:
    return lambda text: (match.span(group) for match in pattern.finditer(text) if valid(match))


_SCANS: tuple[tuple[str, Callable[[str], Iterable[Span]]], ...] = (
    ("credit_card", _cards),
    ("ssn", _ssns),
    ("iban", _ibans),
    ("email", _found(_ADDRESS, gate=_ADDRESS_GATE)),
    ("email", _found(_OBFUSCATED_AT, gate=_OBFUSCATED_AT_GATE)),
    (
        "credential",
        _found_group(_SECRET_KEY_SCAN, "value", _is_secret_assignment),
    ),
    ("credential", _found(_AUTH_HEADER, lambda m: not m.group(1).rstrip(".,;:)").isalpha())),
    ("password", _found(_URL_USERINFO)),
    ("private_key", _found(_PRIVATE_KEY)),
    ("api_key", _found(_PREFIXED_TOKEN, lambda m: is_mixed(m.group()), _PREFIXED_TOKEN_GATE)),
    ("api_key", _found_group(_WEBHOOK_URL, 1, lambda m: is_random(m.group(1)))),
    ("api_key", _found(_AWS_KEY_ID)),
    ("ip_address", _found(_IPV4, lambda m: _is_ipv4(m.group()), _IPV4_GATE)),
    ("phone", _found(_INTERNATIONAL_PHONE, _is_international_phone, _INTERNATIONAL_PHONE_GATE)),
    ("phone", _found(_GROUPED_NUMBER, _is_national_phone, _GROUPED_NUMBER_GATE)),
    ("phone", _found(_AFTER_PHONE_WORD_SCAN, _is_dialled_number)),
)
# Less certain: a generated-looking run with no key name or prefix to say it is
# a key (ids in links, hashes in base62). Reported, not blocking.
_TOKEN_SCANS: tuple[tuple[str, Callable[[str], Iterable[Span]]], ...] = (
    ("random_token", _found(_BARE_TOKEN, _is_secret_token)),
)


def _spans(text: str, scans: tuple[tuple[str, Callable[[str], Iterable[Span]]], ...]) -> list[tuple[int, int, str]]:
    # Blanked to the same length, so spans stay those of `text`.
    scanned = _REDACTED.sub(lambda m: _BLANK * len(m.group()), text)
    return sorted((start, end, kind) for kind, scan in scans for start, end in scan(scanned))


def audit_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of each thing in `text` that looks like personal data or a secret and is not redacted."""
    return _spans(text, _SCANS)


def audit_pii(text: str) -> list[tuple[str, str]]:
    """(kind, matched text) for each thing in `text` that looks like personal data or a secret and is not redacted."""
    return [(kind, text[start:end]) for start, end, kind in audit_spans(text)]


def random_token_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, "random_token") of each run of letters and digits in `text`
    that reads as a generated key, with nothing naming it one.
    """
    return _spans(text, _TOKEN_SCANS)


def audit_random_tokens(text: str) -> list[tuple[str, str]]:
    """("random_token", matched text) for each run of letters and digits in `text`
    that reads as a generated key, with nothing naming it one.
    """
    return [(kind, text[start:end]) for start, end, kind in random_token_spans(text)]


def mask_audit_hits(text: str) -> str:
    """`text` with every audit hit replaced by "[FLAGGED_<KIND>]", so a
    failing check can show where without showing what.
    """
    pieces, cursor = [], 0
    for start, end, kind in sorted(_spans(text, _SCANS + _TOKEN_SCANS)):
        if start < cursor:
            cursor = max(cursor, end)
            continue
        pieces += [text[cursor:start], f"[FLAGGED_{kind.upper()}]"]
        cursor = end
    return "".join([*pieces, text[cursor:]])

"""Find and redact personal data and secrets in text.

Well-kept detectors do the deciding where one exists: `phonenumbers`
(Google's libphonenumber) for phone numbers, `detect-secrets`' regex plugins
for keys and tokens, `python-stdnum` for checksummed ids (IBAN mod-97, US SSN
rules). Regexes of our own cover what those lack (e-mails, obfuscated
e-mails, whole private-key blocks, AWS secret keys named without "aws"), each
with a validator so versions, dates, hashes and line numbers pass through.
Presidio would bundle much of this, but it needs spaCy models fetched from a
hub, which the platform cannot do offline.

Detection runs on a view of the text with Markdown backslash escapes removed
(`ghp\\_...` reads as `ghp_...`), and hits are mapped back to the text.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from llm_platform.documents.pii_cards import card_spans
from llm_platform.documents.pii_credentials import credential_spans
from llm_platform.documents.pii_phones import phone_spans
from llm_platform.documents.pii_prefilter import KeywordScan, TextGate
from llm_platform.documents.pii_secrets import secret_spans

# Bump _RULES_VERSION when our rules change. The libraries' versions are part
# of it because their data changes what is found (phonenumbers ships new
# number ranges monthly). Cleaning is keyed by it, so documents cleaned
# before are cleaned again.
# 4: cards by Luhn and shape, with no issuer table (JCB, UnionPay and Maestro
# cards were left in); "+" numbers of E.164 length whatever their country's
# own length; zero-padded dotted quads ("192.168.001.010") are addresses;
# "pass" is a secret key name (`DB_PASS=`, `pass:`); a number right after a
# phone word, or in the North American 3-3-4 layout, is a phone in any region.
# 5: a value starting with "/" is a path only when its names are not random
# (base64 and AWS secret keys start with "/"), a one-name path with a digit or
# a file name under a password key is the password; "pass" glued to a name
# (`DBPASS`, `adminpass`, `passkey`, `Passwort`) and "authorization" are secret
# keys; a card may mix separators or follow a group glued to a word (`Card1 4111 …`).
# 6: a quoted value with spaces under a password key is a passphrase
# (`pass="two words"`); a number after a trunk area code (`(085) 289-222`,
# `0769/53333`) is a phone in any region; a named SSN or an Authorization header in any case
# (`AuthoriZation: Basic …`, `ſſn: …` were screened by case-sensitive checks).
_RULES_VERSION = "6"
_LIBRARIES = ("phonenumbers", "detect-secrets", "python-stdnum")
PII_KINDS = (
    "private_key",
    "password",
    "webhook_url",
    "api_key",
    "credential",
    "email",
    "iban",
    "ssn",
    "credit_card",
    "ip_address",
    "phone",
)

Span = tuple[int, int]
# Local part and domain may be Unicode (jörg@exämple.de); a top-level domain is letters or punycode.
_EMAIL = re.compile(r"(?<![\w.+-])[^\W_][\w.%+-]*@(?:[^\W_](?:[\w-]*[^\W_])?\.)+(?:[^\W\d_]{2,}|xn--[a-z0-9-]+)\b")
# Every _EMAIL hit holds its "@".
_EMAIL_GATE = TextGate(re.compile("@"))
_URL_USERINFO = re.compile(r"://[^\s:/?#@]+:$")
_OPEN, _CLOSE = r"[\[({<]", r"[\])}>]"
# "alice [at] example [dot] com", "bob(at)example(dot)org", "carol AT example DOT net":
# the bracketed or upper-case word stands for "@"; plain "at ... dot" is too common in prose.
_OBFUSCATED_AT = rf"(?:\s*{_OPEN}\s*(?i:at)\s*{_CLOSE}\s*|\s+AT\s+)"
_OBFUSCATED_DOT = rf"(?:\s*{_OPEN}\s*(?i:dot)\s*{_CLOSE}\s*|\s+DOT\s+|\.)"
_OBFUSCATED_EMAIL = re.compile(
    rf"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*(?:{_OBFUSCATED_AT}|@)[A-Za-z0-9-]+(?:{_OBFUSCATED_DOT}[A-Za-z0-9-]+)*{_OBFUSCATED_DOT}[A-Za-z]{{2,}}\b"
)
_OBFUSCATION = re.compile(rf"{_OPEN}\s*(?i:at|dot)\s*{_CLOSE}|\s(?:AT|DOT)\s")
_OBFUSCATION_REACH = 120
_IPV4 = r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)"
_IPV6 = r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"
_IP = re.compile(f"{_IPV4}|{_IPV6}")
# An IPv4 hit reads `\d\.\d{1,3}\.\d{1,3}\.\d` from its first group's last digit; an IPv6 hit
# has two colons with at most four hex digits between them (its first two groups).
_IP_GATE = TextGate(re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d|:[0-9A-Fa-f]{0,4}:"))
# ipaddress rejects a leading zero (it could be octal); written with every octet
# in three digits, as some logs and Windows dialogs do, it is still an address.
_PADDED_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|[01]\d\d)\.){3}(?:25[0-5]|2[0-4]\d|[01]\d\d)")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]{1,4}){2,8}", re.IGNORECASE)
# An _IBAN hit's check digits, the letters before them, and the first two characters of its groups.
# Digits first: the engine skips to digits, which prose has few of; letters it would try at every one.
_IBAN_GATE = TextGate(re.compile(r"(?i)\d\d(?<=[a-z]{2}\d\d)(?:[ -]?[a-z0-9]){2}"))
_IBAN_LAST_GROUP = re.compile(r"[ -]?[A-Z0-9]{1,4}$", re.IGNORECASE)
_SSN = re.compile(r"(?<![\w.-])\d{3}([-. ])\d{2}\1\d{4}(?![\w-]|\.\d)")
# _SSN without its look-arounds, its back-reference widened to the separators it repeats.
_SSN_GATE = TextGate(re.compile(r"\d{3}[-. ]\d{2}[-. ]\d{4}"))
# Nine bare digits are an SSN only when the text says so.
_SSN_NAMED = re.compile(r"(?i)\b(?:ssn|social security(?: number| no\.?)?)\W{1,10}(\d{9})(?!\d)")
# Found case-blind as the pattern is (`ſſn` is `SSN` to re.IGNORECASE; a `str.lower()` screen missed it).
_SSN_NAMED_SCAN = KeywordScan(_SSN_NAMED, ("ssn", "social security"))
_PLACEHOLDER = re.compile(r"\[REDACTED_[A-Z_]+\]")
_ESCAPE = re.compile(r"\\(?=[!-/:-@\[-`{-~])")
_MAX_REDACTION_ROUNDS = 5
_PREVIEW_SCAN_CHARS = 2_000
# Digests of texts in which a redaction round found nothing, oldest first: no_pii_left
# reads the cleaned texts again right after cleaning, and every detector's answer for
# them is already known. 16-byte keys: a few MiB for a source of any size.
_FOUND_CLEAN: dict[bytes, None] = {}
_MAX_FOUND_CLEAN = 100_000


def _is_ip(text: str) -> bool:
    if _PADDED_IPV4.fullmatch(text):
        return True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if address.version == 6:
        # "1::2" is a valid address but also a Python slice; demand some substance.
        return sum(1 for group in text.split(":") if group) >= 3
    return True


def _is_ssn(text: str) -> bool:
    from stdnum.us import ssn

    return ssn.is_valid(text.replace(" ", "-").replace(".", "-"))


def _matches(pattern: re.Pattern[str], text: str, valid: Callable[[str], bool] | None = None) -> Iterator[Span]:
    for match in pattern.finditer(text):
        if valid is None or valid(match.group()):
            yield match.span()


def _ibans(text: str) -> Iterator[Span]:
    from stdnum import iban

    if not _IBAN_GATE.lets_through(text):
        return
    for match in _IBAN.finditer(text):
        # The pattern may run on into a following word ("... 00 AND"); keep the
        # longest prefix of whole groups that passes the checksum.
        candidate = match.group()
        while candidate:
            if iban.is_valid(candidate.upper()):
                yield match.start(), match.start() + len(candidate)
                break
            shorter = _IBAN_LAST_GROUP.sub("", candidate)
            candidate = shorter if shorter != candidate and any(c in candidate for c in " -") else candidate[:-1]
            if len(iban.compact(candidate)) < 15:
                break


def _ssns(text: str) -> Iterator[Span]:
    if _SSN_GATE.lets_through(text):
        yield from _matches(_SSN, text, _is_ssn)
    for match in _SSN_NAMED_SCAN.finditer(text):
        if _is_ssn(match.group(1)):
            yield match.span(1)


def _ips(text: str) -> Iterator[Span]:
    if _IP_GATE.lets_through(text):
        yield from _matches(_IP, text, _is_ip)


def _emails(text: str) -> Iterator[Span]:
    if not _EMAIL_GATE.lets_through(text):
        return
    for start, end in _matches(_EMAIL, text):
        # "user:pass@host" in a URL is a password, not an address.
        if not _URL_USERINFO.search(text, max(0, start - 200), start):
            yield start, end


def _obfuscated_emails(text: str) -> Iterator[Span]:
    # The full pattern is slow to scan (it starts at every word), so it runs
    # only on stretches around the "[at]"/"(dot)" markers.
    for start, end in _merged(
        (max(0, m.start() - _OBFUSCATION_REACH), m.end() + _OBFUSCATION_REACH) for m in _OBFUSCATION.finditer(text)
    ):
        for match in _OBFUSCATED_EMAIL.finditer(text, start, end):
            if _OBFUSCATION.search(match.group()):
                yield match.span()


def _merged(spans: Iterable[Span]) -> Iterator[Span]:
    current: Span | None = None
    for start, end in spans:
        if current and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current:
            yield current
        current = (start, end)
    if current:
        yield current


# Order is the tie-break when hits of two kinds cover the same characters.
_DETECTORS: tuple[tuple[str, Callable[[str], Iterable[Span]]], ...] = (
    *(
        (kind, functools.partial(secret_spans, kind=kind))
        for kind in ("private_key", "password", "webhook_url", "api_key")
    ),
    ("credential", credential_spans),
    ("email", _emails),
    ("email", _obfuscated_emails),
    ("iban", _ibans),
    ("ssn", _ssns),
    ("credit_card", card_spans),
    ("ip_address", _ips),
    ("phone", phone_spans),
)


def _unescaped(text: str) -> tuple[str, list[int]]:
    """`text` without Markdown backslash escapes, and where each removed backslash was in that view."""
    removed = [match.start() for match in _ESCAPE.finditer(text)] if "\\" in text else []
    if not removed:
        return text, removed
    return _ESCAPE.sub("", text), [position - count for count, position in enumerate(removed)]


def _to_text(index: int, removed: list[int]) -> int:
    """The index in the text of the view's character at `index`."""
    return index + bisect.bisect_right(removed, index)


def _hit_spans(text: str) -> list[tuple[int, int, str]]:
    """Return non-overlapping (start, end, kind) in `text`, earliest and then longest first."""
    view, removed = _unescaped(text)
    candidates = [
        (start, end, priority, kind)
        for priority, (kind, detect) in enumerate(_DETECTORS)
        for start, end in detect(view)
        if end > start and not _PLACEHOLDER.fullmatch(view, start, end)
    ]
    candidates.sort(key=lambda s: (s[0], -(s[1] - s[0]), s[2]))
    hits: list[tuple[int, int, str]] = []
    for start, end, _, kind in candidates:
        if not hits or start >= hits[-1][1]:
            hits.append((start, end, kind))
    if not removed:
        return hits
    return [(_to_text(start, removed), _to_text(end - 1, removed) + 1, kind) for start, end, kind in hits]


def find_pii(text: str) -> list[tuple[str, str]]:
    """Return (kind, matched text) for each validated PII hit in `text`, in order."""
    if _digest(text) in _FOUND_CLEAN:
        return []
    return [(kind, text[start:end]) for start, end, kind in _hit_spans(text)]


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _remember_clean(text: str) -> None:
    remember_clean_digests([_digest(text)])


def clean_digests(texts: Iterable[str]) -> list[bytes]:
    """The digests of those `texts` a redaction round in this process found clean, to hand to another process."""
    return [digest for digest in map(_digest, texts) if digest in _FOUND_CLEAN]


def remember_clean_digests(digests: Iterable[bytes]) -> None:
    """Take texts found clean elsewhere (a worker process's `clean_digests`) as found clean here."""
    for digest in digests:
        _FOUND_CLEAN[digest] = None
    while len(_FOUND_CLEAN) > _MAX_FOUND_CLEAN:
        del _FOUND_CLEAN[next(iter(_FOUND_CLEAN))]


def remember_clean_texts(texts: Iterable[str]) -> None:
    """Take `texts` as found clean here: each is what a redaction under this DETECTOR_VERSION ended on, its last round
    finding nothing (a reused cleaned row records so), so find_pii need not scan it again.
    """
    remember_clean_digests(map(_digest, texts))


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
            _remember_clean(text)
            break
    return text, dict(counts)


def redact_locator(locator: str) -> str:
    """`locator` (a path, maybe with a `#L<n>` line) with PII in file and folder names redacted.

    Each name is redacted without its extension, so "alice@example.com.md"
    stays a Markdown file rather than becoming one long e-mail address.
    """
    path, hash_mark, line = locator.partition("#L")
    # Each name on its own too, as `no_pii_left` reads a path: a number that starts a folder's name has "/" before it.
    if not _hit_spans(locator) and not any(_hit_spans(name) for name in path.split("/")):
        return locator
    return "/".join(_redact_name(part) for part in path.split("/")) + hash_mark + line


def _redact_name(name: str) -> str:
    stem, dot, suffix = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
    redacted = redact_pii(stem)[0] + dot + suffix
    # A name whose "extension" is part of the PII ("alice@example.com") is redacted whole.
    return redacted if not find_pii(redacted) else redact_pii(name)[0]


def redacted_rows(rows: Sequence[Mapping], columns: Sequence[str], limit: int) -> list[dict]:
    """The first `limit` rows with PII redacted in `columns`, for previews shown in the UI.

    Only the start of each value is scanned (previews show a few dozen
    characters), so a preview of a large document stays cheap.
    """
    redact = lambda value: value if not isinstance(value, str) else redact_pii(value[:_PREVIEW_SCAN_CHARS])[0]
    return [{**row, **{c: redact(row.get(c)) for c in columns}} for row in list(rows)[:limit]]


@functools.lru_cache(maxsize=1)
def _detector_version() -> str:
    import importlib.metadata

    return "+".join([_RULES_VERSION, *(f"{name}-{importlib.metadata.version(name)}" for name in _LIBRARIES)])


def __getattr__(name: str) -> str:
    # DETECTOR_VERSION is computed on first use: reading package metadata takes
    # a fifth of a second, which `import llm_platform.definitions` should not pay.
    if name == "DETECTOR_VERSION":
        return _detector_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

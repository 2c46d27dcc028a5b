"""Credentials known by their context: the value after a secret-like key name, or in an Authorization header.

A password has no shape of its own (`s3cr3tP4ss`, `hunter2xyz`); only the
name in front of it says what it is. Any config or URL syntax counts:
`key=value`, `key: value`, `"key": "value"`, `key => value`, `key := value`,
`?key=value&`, libpq/ODBC `key=value;`, `export KEY=value`. The key name is
kept and only the value is reported, so the text stays readable
(`DB_PASSWORD=[REDACTED_CREDENTIAL]`).

A value counts when it could be a secret: no spaces, at least
`MIN_VALUE_CHARS` characters, not a placeholder (`<password>`, `${VAR}`,
`***`, `changeme`, ...) and not code (`os.environ[...]`, `getpass()`,
`self.token`), so prose ("the password field must be set", "token: see
below") and program text pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

Span = tuple[int, int]

MIN_VALUE_CHARS = 6
# Secret words; a key name may have anything in front (DB_PASSWORD, PGPASSWORD,
# client_secret) but only these endings after, so "tokenizer", "max_tokens",
# "author" and "secret_name" are not secret keys. "pass" alone (`DB_PASS=`,
# `pass:`) counts where no letter comes before it: "bypass" and "compass" are words.
SECRET_WORD = (
    r"(?:pass(?:word|wd|phrase|code)|(?<![A-Za-z])pass|pwd|secret|token|api[_-]?key|api"
    r"key|access[_-]?key|private[_-]?key|auth|credentials?)"
)
_KEY_ENDING = r"(?:[_.-]?(?:key|value|string|str|hash|b64|base64|enc|encrypted|plain|plaintext|\d))?"
_KEY = re.compile(rf"(?i){SECRET_WORD}{_KEY_ENDING}(?![A-Za-z0-9]|_[A-Za-z0-9])")
# A quoted value runs to its closing quote; a bare one stops at the separators
# of query strings, libpq/ODBC strings and lists.
# Markdown may wrap the key or the value: "**Password:** `hunter2xyz`".
_ASSIGNMENT = re.compile(
    r"[\"'*_`]{0,3}\]?\s*(?:=>|:=|=|:)[*_]{0,2}[ \t]*"
    r"(?:\"(?P<double>[^\s\"]+)\"|'(?P<single>[^\s']+)'|`(?P<tick>[^\s`]+)`|(?P<bare>[^\s\"'`&;,]+))"
)
_HEADER = re.compile(
    r"(?i)\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:basic|bearer|token|digest|apikey|negotiate)\s+([A-Za-z0-9._~+/=-]{8,})"
)
_TRAILING = ".)]}>"
_PLACEHOLDER_WORDS = {
    "changeme",
    "change_me",
    "password",
    "passwd",
    "secret",
    "token",
    "required",
    "optional",
    "example",
    "redacted",
    "undefined",
    "none",
    "null",
    "true",
    "false",
    "string",
    "hidden",
    "yourpassword",
    "your_password",
    "mypassword",
    "xxxxxx",
    "placeholder",
    "default",
    "empty",
}
_PLACEHOLDER_START = ("$", "<", "{", "%", "*", "[redacted_", "/", "~/", "./", "..")
# An attribute (`self.token`, `getpass.getpass`) or a call or subscript (`os.environ['X']`, `read_secret(`).
_CODE = re.compile(r"[A-Za-z_][\w.]*[(\[].*|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")


def is_placeholder(value: str) -> bool:
    """Whether `value` stands for a secret rather than being one (`<password>`, `${DB_PASSWORD}`, `***`, `changeme`)."""
    lowered = value.lower()
    return (
        lowered.startswith(_PLACEHOLDER_START)
        or lowered.strip("_-") in _PLACEHOLDER_WORDS
        or len(set(lowered)) == 1
        or lowered.startswith(("your", "my_", "enter", "example", "dummy", "fake", "test_", "sample"))
    )


def _is_secret_value(text: str, start: int, end: int, key: str) -> bool:
    value = text[start:end]
    followed_by_code = end < len(text) and text[end] in "([" and not text[start - 1 : start] in "\"'"
    return (
        end - start >= MIN_VALUE_CHARS
        and not is_placeholder(value)
        and not followed_by_code
        and not _CODE.fullmatch(value)
        and key.lower() not in value.lower()
    )


def _value_span(match: re.Match[str]) -> Span:
    for group in ("double", "single", "tick"):
        if match.group(group):
            return match.span(group)
    start = match.start("bare")
    # A bare value that ends a sentence or a bracket keeps that punctuation out.
    return start, start + len(match.group("bare").rstrip(_TRAILING))


def credential_spans(text: str) -> Iterator[Span]:
    """(start, end) of each value given under a secret-like key name or in an Authorization header."""
    value_end = 0
    for key in _KEY.finditer(text):
        # A key name inside the value before it is part of that value; reading
        # it again would make "password=password=..." quadratic.
        assignment = _ASSIGNMENT.match(text, key.end()) if key.start() >= value_end else None
        if assignment:
            start, value_end = _value_span(assignment)
            if _is_secret_value(text, start, value_end, key.group()):
                yield start, value_end
    if "uthorization" in text or "UTHORIZATION" in text:
        for header in _HEADER.finditer(text):
            yield header.span(1)

"""Credentials known by their context: the value after a secret-like key name, or in an Authorization header.

A password has no shape of its own (`s3cr3tP4ss`, `hunter2xyz`); only the
name in front of it says what it is. Any config or URL syntax counts:
`key=value`, `key: value`, `"key": "value"`, `key => value`, `key := value`,
`?key=value&`, libpq/ODBC `key=value;`, `export KEY=value`. The key name is
kept and only the value is reported, so the text stays readable
(`DB_PASSWORD=[REDACTED_CREDENTIAL]`).

A value counts when it could be a secret: no spaces (but a quoted passphrase
under a password key), at least
`MIN_VALUE_CHARS` characters, not a placeholder (`<password>`, `${VAR}`,
`***`, `changeme`, ...) and not code (`os.environ[...]`, `getpass()`,
`self.token`), so prose ("the password field must be set", "token: see
below") and program text pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from llm_platform.documents.pii_audit_values import is_random
from llm_platform.documents.pii_prefilter import KeywordScan

Span = tuple[int, int]

MIN_VALUE_CHARS = 6
MAX_PHRASE_CHARS = 100
# Secret words; a key name may have anything in front (DB_PASSWORD, PGPASSWORD,
# client_secret) but only these endings after, so "tokenizer", "max_tokens",
# "author" and "secret_name" are not secret keys. "pass" counts glued to any
# name (`DBPASS=`, `adminpass:`, `pass:`) but a lower-case prose word ("bypass", "compass").
SECRET_WORD = (
    r"(?:(?-i:(?<!by)(?<!com)(?<!sur)(?<!tres)(?<!over)(?<!under))pass(?:word|wd|phrase|code|wort|key)?|pwd|secret"
    r"|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|auth(?:orization)?|credentials?)"
)
_KEY_ENDING = r"(?:[_.-]?(?:key|value|string|str|hash|b64|base64|enc|encrypted|plain|plaintext|\d))?"
_KEY = re.compile(rf"(?i){SECRET_WORD}{_KEY_ENDING}(?![A-Za-z0-9]|_[A-Za-z0-9])")
# Each alternative of SECRET_WORD starts with one of these (look-behinds take no characters).
_KEY_SCAN = KeywordScan(_KEY, ("pass", "pwd", "secret", "token", "api", "access", "private", "auth", "credential"))
# A quoted value runs to its closing quote; a bare one stops at the separators
# of query strings, libpq/ODBC strings and lists.
# Markdown may wrap the key or the value: "**Password:** `hunter2xyz`".
# Under a password key a quoted value may hold spaces: a passphrase ("correct horse battery staple").
_ASSIGNMENT = re.compile(
    r"[\"'*_`]{0,3}\]?\s*(?:=>|:=|=|:)[*_]{0,2}[ \t]*"
    r"(?:\"(?P<double>[^\s\"]+)\"|'(?P<single>[^\s']+)'|`(?P<tick>[^\s`]+)`|(?P<bare>[^\s\"'`&;,]+)"
    rf"|\"(?P<double_phrase>[^\"\n]{{1,{MAX_PHRASE_CHARS}}})\"|'(?P<single_phrase>[^'\n]{{1,{MAX_PHRASE_CHARS}}})')"
)
_HEADER = re.compile(
    r"(?i)\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:basic|bearer|token|digest|apikey|negotiate)\s+([A-Za-z0-9._~+/=-]{8,})"
)
# Case-blind as the pattern is: a case-sensitive screen missed `AuthoriZation: Basic …`.
_HEADER_SCAN = KeywordScan(_HEADER, ("proxy-authorization", "authorization"))
_TRAILING = ".)]}>"
# The scheme of an Authorization header is no value: the credential after it is (`_HEADER`).
_AUTH_SCHEMES = {"basic", "bearer", "token", "digest", "apikey", "negotiate"}
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
_PLACEHOLDER_START = ("$", "<", "{", "%", "*", "[redacted_", "...")
# A file path (`/run/secrets/db`, `~/.pgpass`): names of letters, digits, ".",
# "_", "-" ("+" and "=" are base64), none of them random, as the audit reads it
# (`/kJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8pLw3a` is an AWS secret key).
_PATH = re.compile(r"(?:~|\.{1,2})?(?P<names>(?:/[\w.-]+)+)/?|~")
# A file name that could be a password (`hunter2.key`); pages and documents (`page1.html`) never are.
_FILE_NAME = re.compile(r"[\w.-]+\.(?:json|ya?ml|toml|ini|cfg|conf|env|pem|key|crt|py|sh)")
_PASSWORD_KEY = re.compile(r"(?i)pass|pwd")
_PASSPHRASE_KEY = re.compile(r"(?i)pass")
_LETTER_AND_DIGIT = re.compile(r"(?=\S*[^\W\d_])(?=\S*\d)")
# Words that make a quoted phrase prose: passphrases are chosen words, not sentences.
_PROSE_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "below",
        "above",
        "by",
        "contain",
        "contains",
        "characters",
        "chars",
        "default",
        "empty",
        "for",
        "here",
        "in",
        "is",
        "it",
        "least",
        "must",
        "none",
        "not",
        "of",
        "on",
        "optional",
        "or",
        "required",
        "see",
        "set",
        "the",
        "this",
        "to",
        "use",
        "with",
        "your",
    }
)
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


def _is_path(value: str, key: str) -> bool:
    """Whether `value` under `key` is a path to a secret rather than the secret.

    Under a password key a path of one name with a digit in it (`../hunter2pw`) is the password
    itself; `PWD=/workspace` is still the working directory.
    """
    path = _PATH.fullmatch(value)
    names = path.group("names").strip("/").split("/") if path and path.group("names") else []
    if not path or any(is_random(name) for name in names):
        return False
    one_name_with_a_digit = len(names) == 1 and any(c.isdigit() for c in value)
    return not (_PASSWORD_KEY.match(key) and one_name_with_a_digit)


def _is_code(value: str, key: str) -> bool:
    # Under a password key a file name is the password (`password: hunter2.key`), not an attribute.
    return bool(_CODE.fullmatch(value)) and not (_PASSWORD_KEY.match(key) and _FILE_NAME.fullmatch(value))


def _is_secret_value(text: str, start: int, end: int, key: str) -> bool:
    value = text[start:end]
    followed_by_code = end < len(text) and text[end] in "([" and not text[start - 1 : start] in "\"'"
    is_auth_scheme = value.lower() in _AUTH_SCHEMES and text[end : end + 1] in (" ", "\t")
    return (
        end - start >= MIN_VALUE_CHARS
        and not is_auth_scheme
        and not is_placeholder(value)
        and not followed_by_code
        and not _is_code(value, key)
        and not _is_path(value, key)
        and key.lower() not in value.lower()
    )


def _is_passphrase(phrase: str, key: str) -> bool:
    """Whether a quoted `phrase` with spaces under `key` is a passphrase rather than prose.

    Only under a pass… key (`PWD='/home/me/My Documents'` is the working
    directory); a word mixing letters and digits (`Tr0ub4dor and 3`) makes it
    one, else only lower-case words, none of them a word of prose (`not
    required`, `see below`), do: a hint, a label or a translation (`Must contain
    8 chars`, `Mot de passe`) starts with a capital.
    """
    if not _PASSPHRASE_KEY.match(key):
        return False
    words = phrase.split()
    if any(_LETTER_AND_DIGIT.match(word) for word in words):
        return True
    return phrase == phrase.lower() and not _PROSE_WORDS & {word.strip(".,;:!?()") for word in words}


def _value_span(match: re.Match[str]) -> Span:
    for group in ("double", "single", "tick", "double_phrase", "single_phrase"):
        if match.group(group):
            return match.span(group)
    start = match.start("bare")
    # A bare value that ends a sentence or a bracket keeps that punctuation out.
    return start, start + len(match.group("bare").rstrip(_TRAILING))


def credential_spans(text: str) -> Iterator[Span]:
    """(start, end) of each value given under a secret-like key name or in an Authorization header."""
    value_end = 0
    for key in _KEY_SCAN.finditer(text):
        # A key name inside the value before it is part of that value; reading
        # it again would make "password=password=..." quadratic.
        assignment = _ASSIGNMENT.match(text, key.end()) if key.start() >= value_end else None
        if assignment:
            start, end = _value_span(assignment)
            phrase = assignment.group("double_phrase") or assignment.group("single_phrase")
            if phrase and not (_is_passphrase(phrase, key.group()) and _is_secret_value(text, start, end, key.group())):
                continue  # prose in quotes: a key inside it is read on its own
            value_end = end
            if _is_secret_value(text, start, end, key.group()):
                yield start, end
    for header in _HEADER_SCAN.finditer(text):
        yield header.span(1)

"""What a secret looks like, by its own shape: the audit's test of a value under a key name and of a bare token.

The redactor decides by exceptions (placeholder words, code patterns); the
audit decides by shape, so the two fail differently. A value given under a
secret key name is a secret when it mixes letters and digits (as generated
keys and most passwords do), or, under a password key, when it is any word
that is not a reference to one. A bare token is a secret when its pieces are
too short to be words: identifiers (`Base64HighEntropyString`) and paths
split into words, random keys into fragments of one or two characters.
"""

from __future__ import annotations

import math
import re
from collections import Counter

_PASSWORD_KEY = re.compile(r"(?i)(?:pass(?:word|wd|phrase|code|wort|key)?|pwd)(?![a-z])")
_PASSPHRASE_KEY = re.compile(r"(?i)pass")
_SENTENCE_WORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "in", "is", "it", "of", "on", "or", "the", "this", "to"}
    | {"with", "your", "not", "see", "set", "must", "none", "below", "above", "here", "use", "least", "default"}
    | {"empty", "optional", "required", "contain", "contains", "characters", "chars"}
)
# A key that names where a secret is kept (`password_file`, `secret_path`), not the secret.
_LOCATION_KEY = re.compile(r"(?i)file|path|dir|location")
# Words that name a secret, read as whole pieces of a value ("not-a-real-secret", "YourPassword"; not "monkey").
_SECRET_WORDS = {
    "pass",
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "key",
    "apikey",
    "auth",
    "credential",
    "credentials",
}
# Program text and references, never the secret itself: a call, subscript or
# literal (`os.environ[`, `input(`, `{Sylvain`), an attribute (`self.token`),
# a constant or environment variable name (`AWS_SECRET_ACCESS_KEY`).
_REFERENCE = re.compile(r".*[()\[\]{}<>$%].*|[A-Za-z_]+(?:\.[A-Za-z_]\w*)+|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
# A file path (`/run/secrets/db`, `~/.pgpass`) or name (`secrets1.txt`), as the
# redactor reads them too: names of letters, digits, ".", "_", "-" ("+" and "="
# are base64), none of them random (`/kJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8pLw3a` is an AWS secret key).
_PATH = re.compile(r"(?:~|\.{1,2})?(?P<names>(?:/[\w.-]+)+)/?|~")
# Under a password key a page or document name (`page1.html`) is still a
# reference, other file names (`hunter2.key`) may be the password.
_DOCUMENT_NAME = re.compile(r"[\w.-]+\.(?:html?|md|rst|txt)")
_FILE_NAME = re.compile(r"[\w.-]+\.(?:json|ya?ml|toml|ini|cfg|conf|env|pem|key|crt|py|sh)")
# A placeholder written as one: "xxxxxx", "******", "...", "your-api-key", "example-token".
_PLACEHOLDER = re.compile(r"(?i)(.)\1*|.*\.\.\..*|(?:your|my|example|sample|dummy|fake)(?:[^a-z].*)?")
_TYPE_NAMES = {
    "str",
    "string",
    "bytes",
    "int",
    "bool",
    "none",
    "null",
    "optional",
    "secretstr",
    "any",
    "object",
    "true",
    "false",
}
_TRAILING = ".,:;!?)]}>"
_MIN_VALUE_CHARS = 6
# Pieces of a token: a capitalized or lower-case word, an upper-case run, a digit run.
_PIECE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_MIN_WORD_PIECE_CHARS = 3.0
_MIN_TOKEN_ENTROPY = 3.5


def entropy(text: str) -> float:
    """Shannon entropy of `text` in bits per character."""
    return -sum(n / len(text) * math.log2(n / len(text)) for n in Counter(text).values())


def is_mixed(token: str) -> bool:
    """Whether `token` mixes letters and digits with high entropy: enough
    where a provider's prefix already says "key".
    """
    return (
        any(c.isalpha() for c in token)
        and sum(c.isdigit() for c in token) >= 2
        and entropy(token) >= _MIN_TOKEN_ENTROPY
    )


def is_random(token: str) -> bool:
    """Whether `token` (letters and digits) reads as generated: mixed, and in pieces too short to be words."""
    pieces = _PIECE.findall(token)
    return is_mixed(token) and len(token) / len(pieces) < _MIN_WORD_PIECE_CHARS


def _is_location(key: str, value: str) -> bool:
    """Whether `value` under `key` says where a secret is kept rather than being it.

    Under a password key a file name, or a path of one name with a digit in it (`../hunter2pw`), is the
    password itself; `PWD=/workspace` is still the working directory.
    """
    path = _PATH.fullmatch(value)
    names = path.group("names").strip("/").split("/") if path and path.group("names") else []
    if any(is_random(name) for name in names):
        return False
    if _DOCUMENT_NAME.fullmatch(value):
        return True
    if _LOCATION_KEY.search(key) or not _PASSWORD_KEY.search(key):
        return bool(path or _FILE_NAME.fullmatch(value))
    one_name_with_a_digit = len(names) == 1 and any(c.isdigit() for c in value)
    return bool(path) and not one_name_with_a_digit


def is_secret_value(key: str, value: str) -> bool:
    """Whether `value`, given under the key name `key`, has the shape of a
    secret rather than of a reference or an example.
    """
    value = value.rstrip(_TRAILING)
    if (
        len(value) < _MIN_VALUE_CHARS
        or value.lower() in _TYPE_NAMES
        or _REFERENCE.fullmatch(value)
        or _is_location(key, value)
        or _PLACEHOLDER.fullmatch(value)
    ):
        return False
    if any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
        return True
    # Under a password key a plain word is the password ("sunshine"), unless it names one ("client_password").
    return bool(_PASSWORD_KEY.search(key)) and not _SECRET_WORDS & {piece.lower() for piece in _PIECE.findall(value)}


def is_passphrase(key: str, phrase: str) -> bool:
    """Whether `phrase`, a quoted value with spaces under the key name `key`, is a chosen passphrase.

    Under a pass… key only; a word with letters and digits in it makes it one,
    else every word must be lower case and none a word sentences are made of.
    """
    if not _PASSPHRASE_KEY.search(key):
        return False
    words = phrase.split()
    if any(any(c.isdigit() for c in word) and any(c.isalpha() for c in word) for word in words):
        return True
    return phrase.islower() and not {word.strip(".,;:!?()") for word in words} & _SENTENCE_WORDS

"""Stable identities for documents, chunks and texts.

Every identity is a truncated sha256 of its parts, so it is the same on every
machine and every run: re-running on unchanged input produces unchanged ids.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Unit separator: cannot appear in paths or ordinary text, so ("a", "bc") and
# ("ab", "c") never hash alike.
_SEPARATOR = "\x1f"
_HEX_CHARS = 32
_WHITESPACE = re.compile(r"\s+")


def stable_hash(*parts: str) -> str:
    """Return the first 32 hex chars of sha256 over `parts` joined by U+001F."""
    joined = _SEPARATOR.join(parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:_HEX_CHARS]


def doc_id_for(source: str, locator: str) -> str:
    """Return the id of the document at `locator` (path, or path#Lnn) in `source`."""
    return stable_hash(source, locator)


def normalize_for_hash(text: str) -> str:
    """Return `text` in NFC with whitespace runs collapsed to one space, stripped."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def content_hash(text: str) -> str:
    """Return the hash of `text` after normalization, so layout-only edits keep it."""
    return stable_hash(normalize_for_hash(text))


def chunk_id_for(doc_id: str, position: int, text: str, chunker_version: str) -> str:
    """Return the id of the chunk at `position` of `doc_id` made by `chunker_version`."""
    return stable_hash(doc_id, str(position), text, chunker_version)


def text_hash(text: str) -> str:
    """Return the hash of `text` exactly as given (the key for its embedding)."""
    return stable_hash(text)

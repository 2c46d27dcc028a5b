"""Find exact and near-duplicate documents with MinHash LSH (datasketch)."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from datasketch import MinHash

SHINGLE_WORDS = 5
# Stated explicitly: datasketch refuses to rebuild a MinHash from stored hash
# values without knowing which scheme produced them.
_SCHEME = "affine64"
_WORD = re.compile(r"\w+")
_SHINGLE_BATCH = 8192
_PIECE_CHARS = 1 << 20
_SPACE = re.compile(r"\s")


@dataclass(frozen=True)
class Duplicate:
    """`doc_id` repeats `duplicate_of` (kept); kind is "exact" or "near"."""

    doc_id: str
    duplicate_of: str
    kind: str


def minhash_signature(text: str, *, num_perm: int = 128) -> np.ndarray:
    """Return the MinHash hash values (uint64) of `text`'s lowercased word 5-shingles."""
    from datasketch import MinHash

    minhash = MinHash(num_perm=num_perm, permutations=_permutations(num_perm), scheme=_SCHEME)
    # update_batch holds a (num_perm x batch) array; whole-document batches of a
    # 19 MB text took gigabytes. Batches give the same minimum, in bounded memory.
    for batch in _batches(_shingles(text), _SHINGLE_BATCH):
        minhash.update_batch(batch)
    return minhash.hashvalues.copy()


def find_duplicates(
    items: Sequence[tuple[str, str, np.ndarray]], *, threshold: float = 0.85, num_perm: int = 128
) -> list[Duplicate]:
    """Return the duplicates among (doc_id, content_hash, signature) items.

    The first occurrence in `items` is kept; a later item is an exact duplicate
    when its content hash was seen, else a near duplicate when its estimated
    Jaccard similarity to a kept item is at least `threshold` (the earliest
    such item is named). The result depends only on the order of `items`.
    """
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    first_by_hash: dict[str, str] = {}
    kept: dict[str, tuple[int, MinHash]] = {}
    duplicates: list[Duplicate] = []
    for doc_id, digest, signature in items:
        if digest in first_by_hash:
            duplicates.append(Duplicate(doc_id, first_by_hash[digest], "exact"))
            continue
        first_by_hash[digest] = doc_id
        minhash = _minhash_from(signature, num_perm)
        original = _earliest_similar(lsh.query(minhash), minhash, kept, threshold)
        if original is not None:
            duplicates.append(Duplicate(doc_id, original, "near"))
            continue
        kept[doc_id] = (len(kept), minhash)
        lsh.insert(doc_id, minhash)
    return duplicates


def _shingles(text: str) -> Iterator[bytes]:
    """Lowercased word 5-shingles, streamed a piece of text at a time, never the document's word list.

    A text of fewer than five words is one shingle of all of them.
    """
    carried: list[str] = []
    whole_window = False
    for piece in _lowered_pieces(text):
        # The last words of the piece before start the first shingles of this one.
        words = carried + _WORD.findall(piece)
        if len(words) >= SHINGLE_WORDS:
            whole_window = True
            yield from (
                " ".join(words[i : i + SHINGLE_WORDS]).encode("utf-8") for i in range(len(words) - SHINGLE_WORDS + 1)
            )
            words = words[-(SHINGLE_WORDS - 1) :]
        carried = words
    if not whole_window:
        yield " ".join(carried).encode("utf-8")


def _lowered_pieces(text: str) -> Iterator[str]:
    # str.lower() allocates 12 bytes per character of its input as scratch
    # (228 MB for 19 MB of text); lowering pieces cut after whitespace gives the
    # same words, since no word and no case rule crosses whitespace.
    start = 0
    while start < len(text):
        space = _SPACE.search(text, min(start + _PIECE_CHARS, len(text)))
        end = space.end() if space else len(text)
        yield text[start:end].lower()
        start = end


def _batches(items: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    while batch := list(itertools.islice(items, size)):
        yield batch


@functools.lru_cache(maxsize=8)
def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    # Drawing permutations is the costly part of building a MinHash; do it once.
    from datasketch import MinHash

    return MinHash(num_perm=num_perm, scheme=_SCHEME).permutations


def _minhash_from(signature: np.ndarray, num_perm: int) -> MinHash:
    if len(signature) != num_perm:
        raise ValueError(
            f"signature has {len(signature)} values but num_perm is {num_perm}; "
            f"recompute the signatures with num_perm={num_perm} or pass num_perm={len(signature)}"
        )
    from datasketch import MinHash

    return MinHash(hashvalues=signature, permutations=_permutations(num_perm), scheme=_SCHEME)


def _earliest_similar(
    candidates: list[str], minhash: MinHash, kept: dict[str, tuple[int, MinHash]], threshold: float
) -> str | None:
    # LSH candidates are probable matches only; confirm each with the estimate.
    similar = [key for key in candidates if minhash.jaccard(kept[key][1]) >= threshold]
    return min(similar, key=lambda key: kept[key][0]) if similar else None

"""Shards of a source: which documents each one owns, and its partition key.

A source with `shards: N` (N > 1) is split into N partitions, `<source>.<i>-of-<N>`
(`wiki.0-of-4` … `wiki.3-of-4`); a source with one shard keeps its plain name as its
key. A document belongs to the shard whose slice of the hash space holds its doc_id:
doc ids are already uniform hex hashes, so the first 8 hex digits, read as a number
x in [0, 2^32), give shard `x * N >> 32`. Slices are contiguous, so the rows a shard
owns in the index are one range of doc_id (a filter on an existing column), and
changing N moves only the documents whose slice changed.

This module imports nothing from the platform: config, documents, index and
automation all read keys and ownership from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HASH_SPACE = 1 << 32
_PREFIX = 8
_KEY = re.compile(r"^(?P<source>[a-z0-9][a-z0-9_-]{0,62})(?:\.(?P<index>[0-9]+)-of-(?P<count>[0-9]+))?$")
_HEX = re.compile(r"^[0-9a-f]{8}")


class ShardKeyError(ValueError):
    """A partition key that names no source shard; the message shows the expected form."""


def _position(doc_id: str) -> int:
    if not _HEX.match(doc_id):
        raise ValueError(
            f"doc_id {doc_id!r} is not a lowercase hex hash: shards split the doc_id "
            "hash space (llm_platform.identity.doc_id_for)"
        )
    return int(doc_id[:_PREFIX], 16)


def shard_of(doc_id: str, count: int) -> int:
    """The shard (0 … count-1) that owns `doc_id` when its source has `count` shards."""
    return _position(doc_id) * count >> 32


def _bound(index: int, count: int) -> str:
    # The least position of shard `index`: ceil(index * 2^32 / count), as 8 hex digits.
    return f"{-(-index * _HASH_SPACE // count):08x}"


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` of `source`; one shard of one is the whole source."""

    source: str
    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ShardKeyError(
                f"shard {self.index} of {self.count} of source {self.source!r}: the index must be 0 … count-1"
            )

    @property
    def key(self) -> str:
        """The partition key: the source name alone, or `<source>.<index>-of-<count>`."""
        return self.source if self.count == 1 else f"{self.source}.{self.index}-of-{self.count}"

    @property
    def is_whole_source(self) -> bool:
        return self.count == 1

    def owns(self, doc_id: str) -> bool:
        """Whether the document `doc_id` belongs to this shard."""
        return self.count == 1 or shard_of(doc_id, self.count) == self.index

    def doc_id_range(self) -> tuple[str | None, str | None]:
        """(lowest, end): this shard owns exactly the doc ids with lowest <= doc_id < end; None is open.

        Both are 8 hex digits; doc ids are longer hex strings, and comparing them as
        text with these bounds compares their first 8 digits as numbers.
        """
        lowest = _bound(self.index, self.count) if self.index > 0 else None
        end = _bound(self.index + 1, self.count) if self.index + 1 < self.count else None
        return lowest, end


def shards_of(source: str, count: int) -> list[Shard]:
    """Every shard of `source` split `count` ways, in order."""
    return [Shard(source, index, count) for index in range(count)]


def parse_partition_key(key: str) -> Shard:
    """The shard a partition key names: `wiki` (the whole source) or `wiki.2-of-4`."""
    found = _KEY.match(key)
    if found is None:
        raise ShardKeyError(
            f"partition key {key!r} is neither a source name nor '<source>.<shard>-of-<count>' (e.g. 'wiki.0-of-4')"
        )
    if found["count"] is None:
        return Shard(found["source"])
    index, count = int(found["index"]), int(found["count"])
    if count == 1:
        raise ShardKeyError(
            f"partition key {key!r}: a source of one shard is keyed by its name alone, {found['source']!r}"
        )
    shard = Shard(found["source"], index, count)
    if shard.key != key:
        raise ShardKeyError(f"partition key {key!r}: write shard numbers without leading zeros, as {shard.key!r}")
    return shard

"""Whose search it is: the reader groups of a caller, and the filter that limits a search to the rows they may read.

A row may be read by a caller when its `readers` share a group with the caller's,
or hold the public marker `*`. The filter runs inside the search (a LanceDB
prefilter), so top-k is taken among readable rows only and is never emptied by
filtering afterwards. LanceDB's expression builder has no array functions, so
the filter is SQL text: every group name in it is checked against the group-name
rule first, and that rule admits no quote, space or operator.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from llm_platform.readers import EVERYONE, ReadersError, check_group


@dataclass(frozen=True)
class ReaderGroups:
    """The groups a search runs as. Build one with `of(...)`, `public_only()` or, for internal work, `everyone()`."""

    groups: frozenset[str]
    unrestricted: bool = False

    def __post_init__(self) -> None:
        for name in self.groups:
            check_group(name, "reader groups of a search")

    @classmethod
    def of(cls, groups: Iterable[str]) -> ReaderGroups:
        """A caller who belongs to `groups`: reads their rows and public rows."""
        if isinstance(groups, str):
            raise ReadersError(f"reader groups must be a collection of names, not the string {groups!r}")
        return cls(frozenset(groups))

    @classmethod
    def public_only(cls) -> ReaderGroups:
        """A caller in no group: reads public rows only. What a search runs as when nobody says otherwise."""
        return cls(frozenset())

    @classmethod
    def everyone(cls) -> ReaderGroups:
        """Every row, whoever may read it: for evaluation and operators, never for a request's caller."""
        return cls(frozenset(), unrestricted=True)

    def can_read(self, readers: Iterable[str] | None) -> bool:
        """Whether a row with `readers` is readable by this caller (the filter's rule, in Python)."""
        row = set(readers or ())
        return self.unrestricted or EVERYONE in row or bool(row & self.groups)

    def describe(self) -> str:
        if self.unrestricted:
            return "every reader group"
        return f"groups {', '.join(sorted(self.groups))} and public rows" if self.groups else "public rows only"


PUBLIC_ONLY = ReaderGroups.public_only()


def readers_filter(readers: ReaderGroups) -> str | None:
    """The SQL filter for rows `readers` may read; None only for `everyone()`."""
    if not isinstance(readers, ReaderGroups):
        raise TypeError(
            f"readers must be a ReaderGroups (ReaderGroups.of(...), .public_only() or .everyone()), got {readers!r}"
        )
    if readers.unrestricted:
        return None
    names = sorted(check_group(name, "reader groups of a search") for name in readers.groups)
    quoted = ", ".join(f"'{name}'" for name in [EVERYONE, *names])
    return f"array_has_any(readers, [{quoted}])"

"""Who may read a document: reader groups, the public marker, and a document's effective readers.

A row's `readers` column lists the groups that may read it. The marker `*` (not a
valid group name, so no group can be called that) means everyone: it is what a
public source gives its documents. An empty list is read by nobody: access fails
closed. A document's own declaration replaces its source's readers; it does not
add to them, and a document that declares readers in a public source is no
longer public.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

EVERYONE = "*"
GROUP_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
GROUP_NAME_RULE = "a lowercase letter, then lowercase letters, digits, '-' or '_' (at most 63 characters)"


class ReadersError(ValueError):
    """A readers declaration a person got wrong: the message says what to change."""


def check_group(name: object, where: str) -> str:
    """`name` if it is a valid group name; else ReadersError naming `where` it was declared."""
    if not isinstance(name, str) or not GROUP_NAME.match(name):
        raise ReadersError(f"{where}: reader group {name!r} is not a group name ({GROUP_NAME_RULE})")
    return name


def groups_of(names: Iterable[object], where: str) -> list[str]:
    """Valid group names, sorted and without repeats, so equal declarations store equal lists."""
    return sorted({check_group(name, where) for name in names})


def declared_readers(value: object, where: str) -> list[str]:
    """A document's `readers` declaration (a list of names, or one name) as sorted group names."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ReadersError(f"{where}: readers must be a list of group names, e.g. readers: [hr, legal]; got {value!r}")
    return groups_of(value, where)


def source_readers(readers: Iterable[str], *, public: bool) -> list[str]:
    """What a source gives a document that declares nothing: its groups, plus everyone when public."""
    return sorted(set(readers) | ({EVERYONE} if public else set()))


def effective_readers(declared: list[str] | None, default: list[str]) -> list[str]:
    """The document's own declaration when it has one (it replaces the source's), else the source's."""
    return list(declared) if declared is not None else list(default)

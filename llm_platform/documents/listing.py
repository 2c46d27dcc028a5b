"""Listing a source: its files matching a glob, with links followed inside it and bad entries named.

A listing never fails on one entry: a name that is not UTF-8 or holds control
characters, a link that leaves the source, loops or points nowhere, and a
special file (named pipe, socket, device) become a `SourceFile` with a
`problem`, which reading quarantines under that name. A special file is never
opened: reading a named pipe blocks until someone writes to it.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, replace

import fsspec
from fsspec.utils import glob_translate

from llm_platform.documents.extraction import Rejection


@dataclass(frozen=True)
class SourceFile:
    """One file in a source listing; `locator` is its path relative to the source root.

    `problem` is set for an entry that cannot be read as a document (a bad
    name, a link leaving the source or looping, a special file): it is quarantined.
    """

    locator: str
    url: str
    size: int
    modified: float
    problem: Rejection | None = None


def _modified(info: dict) -> float:
    for key in ("mtime", "LastModified", "updated", "created"):
        value = info.get(key)
        if value is None:
            continue
        return float(value.timestamp()) if hasattr(value, "timestamp") else float(value)
    return 0.0


def list_source(location: str, glob: str) -> list[SourceFile]:
    """Every file under `location` matching `glob`, sorted by locator.

    Links are followed while they stay inside the source; a link leaving it,
    looping or broken, a special file, and a bad name are listed with a problem.
    """
    _check_glob(location, glob)
    fs, root = fsspec.core.url_to_fs(location)
    if not fs.exists(root):
        raise FileNotFoundError(f"source location {location} does not exist or is not mounted")
    root = root.rstrip("/")
    protocol = location.split("://", 1)[0] + "://" if "://" in location else ""
    files = []
    for path, info in fs.glob(f"{root}/{glob}", detail=True).items():
        if not path.startswith(root + "/"):
            continue
        locator = path[len(root) + 1 :]
        if info.get("islink"):
            files += _followed(root, path, locator, glob, protocol)
        elif info.get("type") == "file":
            files.append(
                SourceFile(
                    locator=locator, url=f"{protocol}{path}", size=int(info.get("size") or 0), modified=_modified(info)
                )
            )
        elif info.get("type") != "directory":
            files.append(_special_file(locator, path))
    return sorted((_with_name_problem(file) for file in files), key=lambda f: f.locator)


class GlobOutsideSourceError(ValueError):
    """A source's glob names paths outside its folder (`..`, or absolute)."""


def _check_glob(location: str, glob: str) -> None:
    parts = glob.replace("\\", "/").split("/")
    if glob.startswith("/") or ".." in parts:
        raise GlobOutsideSourceError(
            f"glob {glob!r} of source at {location} reaches outside the source folder; "
            "use a pattern relative to the folder, such as '**/*.md'"
        )


def _followed(
    root: str, path: str, locator: str, glob: str, protocol: str, seen: frozenset[str] = frozenset()
) -> list[SourceFile]:
    """The files a link stands for: its target if inside the source, else one entry with a problem.

    `seen` holds the real folders on the way here; a link to one of them or to
    a folder above them (however indirectly) ends as `link_loop`, not in recursion.
    """
    try:
        target = os.path.realpath(path, strict=True)
    except OSError as error:
        kind = "broken_link" if isinstance(error, FileNotFoundError) else "link_loop"
        what = "points to nothing" if kind == "broken_link" else f"cannot be resolved ({error.strerror})"
        return [_problem(locator, path, kind, f"{locator}: link {what}; fix or remove the link")]
    real_root = os.path.realpath(root)
    if target != real_root and not target.startswith(real_root + os.sep):
        reason = (
            f"{locator}: link to {target} leaves the source folder {root}; copy "
            "the file into the source or remove the link"
        )
        return [_problem(locator, path, "outside_source", reason)]
    if os.path.isfile(target):
        found = os.stat(target)
        return [SourceFile(locator=locator, url=f"{protocol}{path}", size=found.st_size, modified=found.st_mtime)]
    if not os.path.isdir(target):
        return [_special_file(locator, target)]
    chain = seen | {os.path.realpath(os.path.dirname(path))}
    if any((folder + os.sep).startswith(target + os.sep) for folder in chain):
        reason = f"{locator}: link to folder {target}, which contains the link or leads back to it; remove the link"
        return [_problem(locator, path, "link_loop", reason)]
    return _files_in_linked_folder(root, path, locator, glob, protocol, chain | {target})


def _files_in_linked_folder(
    root: str, path: str, locator: str, glob: str, protocol: str, seen: frozenset[str]
) -> list[SourceFile]:
    # Folder links are followed one level: links inside a followed folder are
    # resolved again through _followed, which refuses loops.
    pattern = re.compile(glob_translate(f"{root}/{glob}"))
    files = []
    for entry in os.scandir(path):
        entry_path, entry_locator = f"{path}/{entry.name}", f"{locator}/{entry.name}"
        if entry.is_symlink():
            if pattern.match(entry_path) or os.path.isdir(entry_path):
                files += _followed(root, entry_path, entry_locator, glob, protocol, seen)
        elif entry.is_dir():
            files += _files_in_linked_folder(root, entry_path, entry_locator, glob, protocol, seen)
        elif entry.is_file() and pattern.match(entry_path):
            found = entry.stat()
            files.append(
                SourceFile(
                    locator=entry_locator, url=f"{protocol}{entry_path}", size=found.st_size, modified=found.st_mtime
                )
            )
        elif pattern.match(entry_path):
            files.append(_special_file(entry_locator, entry_path))
    return files


_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _special_file(locator: str, path: str) -> SourceFile:
    mode = os.stat(path).st_mode if os.path.exists(path) else 0
    what = next((name for test, name in _SPECIAL_KINDS if test(mode)), "an entry of another kind")
    reason = (
        f"{locator}: {what}, not a regular file; it was not opened (reading it could "
        "block the run); remove it from the source folder"
    )
    return _problem(locator, path, "special_file", reason)


# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: a
# newline in a locator would split log lines, CSV rows and the UI's lists.
_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _with_name_problem(file: SourceFile) -> SourceFile:
    """`file` as a `bad_name` entry when its name is not UTF-8 or holds control characters, shown escaped."""
    try:
        file.locator.encode("utf-8")
        shown, what = file.locator, "contains control characters (shown escaped)"
    except UnicodeEncodeError:
        # The OS hands undecodable bytes over as surrogates; show them as \x escapes.
        shown = file.locator.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        what = "is not valid UTF-8"
    shown = _CONTROL_CHARACTERS.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), shown)
    if shown == file.locator:
        return file
    reason = f"{shown}: file name {what}; rename the file"
    return replace(file, locator=shown, problem=Rejection(shown, "bad_name", reason))


def _problem(locator: str, path: str, kind: str, reason: str) -> SourceFile:
    return SourceFile(locator=locator, url=path, size=0, modified=0.0, problem=Rejection(locator, kind, reason))

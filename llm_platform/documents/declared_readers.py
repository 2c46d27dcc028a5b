"""A document's own reader groups, read from the document itself.

Markdown declares them in YAML front matter (`readers: [hr, legal]` between a
first line `---` and the next `---`); a JSONL record in the source's
`jsonl_readers_field`. A declaration replaces the source's readers. A malformed
one raises ReadersError: the document is quarantined, never served with its
source's (possibly wider) readers.
"""

from __future__ import annotations

import re

import yaml

from llm_platform.readers import ReadersError, declared_readers

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
READERS_KEY = "readers"


def front_matter_readers(text: str, locator: str) -> list[str] | None:
    """The `readers` of a Markdown document's front matter, or None when it declares none."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return None
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        if READERS_KEY not in match.group(1):
            return None
        raise ReadersError(
            f"{locator}: front matter is not valid YAML ({error.__class__.__name__}); fix it so its readers can be read"
        ) from None
    if not isinstance(meta, dict) or READERS_KEY not in meta:
        return None
    return declared_readers(meta[READERS_KEY], f"{locator}: front matter")


def record_readers(record: dict, field: str | None, locator: str) -> list[str] | None:
    """A JSONL record's reader groups from `field`, or None when the record has no such field."""
    if not field or field not in record:
        return None
    return declared_readers(record[field], f"{locator}: field {field!r}")

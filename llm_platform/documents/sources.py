"""Listing a source and turning its files into raw document rows, incrementally.

A file whose size and modification time match the previous materialization is
not read again: its rows are carried over. Everything else is read, hashed and
extracted; the document-level diff (added, changed, removed, unchanged) is by
`doc_id` and `content_hash`, so a touched-but-identical file counts as unchanged,
and by `readers`, so a document whose readers alone changed counts as changed.
A carried-over row's readers are worked out again from its own declaration and
the source's current readers, so a config change reaches every document.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import fsspec
import pyarrow as pa

from llm_platform.documents.batching import BATCH_TEXT_BYTES, row_batches, rows_of
from llm_platform.documents.cleaning import RECORD_FORMATS
from llm_platform.documents.extraction import (
    EXTRACTOR_VERSION,
    SNIFF_BYTES,
    JsonlLine,
    Rejection,
    detect_format,
    extract_documents,
    extract_jsonl,
    jsonl_streamable,
)
from llm_platform.documents.listing import SourceFile, list_source
from llm_platform.documents.pii import redact_locator, redact_pii
from llm_platform.documents.previous_rows import PreviousRows
from llm_platform.identity import content_hash, doc_id_for
from llm_platform.readers import effective_readers
from llm_platform.shards import Shard

RAW_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("locator", pa.string()),
        ("format", pa.string()),
        ("size", pa.int64()),
        ("modified", pa.float64()),
        ("file_hash", pa.string()),
        ("content_hash", pa.string()),
        ("title", pa.string()),
        ("text", pa.large_string()),
        ("extractor_version", pa.string()),
        ("declared_readers", pa.list_(pa.string())),
        ("readers", pa.list_(pa.string())),
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("stage", pa.string()),
        ("locator", pa.string()),
        ("kind", pa.string()),
        ("reason", pa.string()),
    ]
)


PREVIEW_ROWS = 5
# Read size for skipping the rest of an oversized JSONL line.
_SKIP_BYTES = 1 << 20


class SuspiciousListingError(RuntimeError):
    """A listing lost too many documents at once; deleting them needs explicit consent."""


@dataclass
class RawDocuments:
    """The result of reading a source: quarantine, the diff, counts and a preview; `rows` only when collected."""

    rows: list[dict]
    quarantine: list[dict]
    documents: int = 0
    preview: list[dict] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    files_listed: int = 0
    files_read: int = 0
    bytes_read: int = 0
    readable_by_nobody: int = 0

    @property
    def quarantine_by_kind(self) -> dict[str, int]:
        return dict(Counter(q["kind"] for q in self.quarantine))


def _file_rows(
    source: str, file: SourceFile, file_hash: str, extracted, default_readers: list[str]
) -> tuple[list[dict], list[Rejection]]:
    documents, rejections = extracted
    rows = [
        {
            "doc_id": doc_id_for(source, doc.locator),
            "source": source,
            # File names can hold PII; doc_id stays keyed by the real path.
            "locator": redact_locator(doc.locator),
            "format": doc.format,
            "size": file.size,
            "modified": file.modified,
            "file_hash": file_hash,
            "content_hash": content_hash(doc.text),
            "title": doc.title,
            "text": doc.text,
            "extractor_version": EXTRACTOR_VERSION,
            "declared_readers": None if doc.readers is None else list(doc.readers),
            "readers": effective_readers(None if doc.readers is None else list(doc.readers), default_readers),
        }
        for doc in documents
    ]
    return rows, rejections


def _quarantine_row(source: str, rejection: Rejection) -> dict:
    reason = rejection.reason.replace(rejection.locator, redact_locator(rejection.locator))
    return {
        "source": source,
        "stage": "raw_documents",
        "locator": redact_locator(rejection.locator),
        "kind": rejection.kind,
        "reason": redact_pii(reason)[0],
    }


def _read_bytes(file: SourceFile) -> bytes:
    with fsspec.open(file.url, "rb") as handle:
        return handle.read()


def _extract_file(
    file: SourceFile,
    result: RawDocuments,
    *,
    text_field: str,
    title_field: str | None,
    readers_field: str | None,
    max_bytes: int,
):
    """(file hash, extraction) of one file; JSONL is streamed line by line, so one huge line costs at most max_bytes."""
    digest = hashlib.sha256()
    if detect_format(file.locator) == "jsonl" and _streamable(file):
        lines = list(_jsonl_lines(file, max_bytes, digest))
        result.bytes_read += file.size
        extracted = extract_jsonl(
            file.locator,
            lines,
            text_field=text_field,
            title_field=title_field,
            readers_field=readers_field,
            max_bytes=max_bytes,
        )
    else:
        data = _read_bytes(file)
        digest.update(data)
        result.bytes_read += len(data)
        extracted = extract_documents(
            file.locator,
            data,
            jsonl_text_field=text_field,
            jsonl_title_field=title_field,
            jsonl_readers_field=readers_field,
            max_bytes=max_bytes,
        )
    return digest.hexdigest()[:32], extracted


def _streamable(file: SourceFile) -> bool:
    with fsspec.open(file.url, "rb") as handle:
        return jsonl_streamable(handle.read(SNIFF_BYTES))


def _jsonl_lines(file: SourceFile, max_bytes: int, digest) -> Iterator[JsonlLine]:
    """Each line's bytes, or the size of a line over `max_bytes`, which is skipped, never held whole."""
    with fsspec.open(file.url, "rb") as handle:
        while line := handle.readline(max_bytes + 1):
            digest.update(line)
            if line.endswith(b"\n") or len(line) <= max_bytes:
                yield line.rstrip(b"\n").rstrip(b"\r")
                continue
            size = len(line)
            while not line.endswith(b"\n") and (line := handle.readline(_SKIP_BYTES)):
                digest.update(line)
                size += len(line)
            yield size - line.endswith(b"\n")


# What reuse and the diff need from the previous version; its text stays on disk.
PREVIOUS_KEY_COLUMNS = ("doc_id", "locator", "size", "modified", "extractor_version", "content_hash", "readers")


def _previous_by_locator(previous: PreviousRows | None) -> dict[str, list[int]]:
    by_file: dict[str, list[int]] = {}
    if previous is None:
        return by_file
    for position, locator in enumerate(previous.column("locator")):
        by_file.setdefault(_file_of(locator), []).append(position)
    return by_file


def _same_file(source: str, file: SourceFile, row: dict) -> bool:
    # Stored locators are redacted, so two files whose names differ only in
    # PII share one; the doc_id, hashed from the real path, tells them apart.
    line = row["locator"][len(_file_of(row["locator"])) :]
    return row["doc_id"] == doc_id_for(source, file.locator + line)


def _file_of(locator: str) -> str:
    return locator.split("#L", 1)[0]


def _unchanged(earlier: dict, file: SourceFile) -> bool:
    same_file = earlier["size"] == file.size and earlier["modified"] == file.modified
    return same_file and earlier.get("extractor_version") == EXTRACTOR_VERSION


def _key_row(keys: dict[str, list], position: int) -> dict:
    return {name: values[position] for name, values in keys.items()}


def files_read_by(shard: Shard, files: list[SourceFile]) -> list[SourceFile]:
    """The files of a listing that `shard` reads (all of them for a whole source)."""
    return [file for file in files if _read_by(shard, file)]


def _read_by(shard: Shard, file: SourceFile) -> bool:
    """Whether `shard` reads `file`: a record file (JSONL) may hold documents
    of every shard; any other file is one document.
    """
    return (
        shard.is_whole_source
        or detect_format(file.locator) in RECORD_FORMATS
        or shard.owns(doc_id_for(shard.source, file.locator))
    )


def _set_aside(result: RawDocuments, shard: Shard, rejection: Rejection) -> None:
    """Quarantine `rejection` in the one shard that owns its locator (a whole file's, or a JSONL line's)."""
    if shard.owns(doc_id_for(shard.source, rejection.locator)):
        result.quarantine.append(_quarantine_row(shard.source, rejection))


def _carried_over(rows: list[dict], default_readers: list[str]) -> list[dict]:
    """Previous rows of an unchanged file, their readers worked out again under the source's current readers."""
    return [{**row, "readers": effective_readers(row.get("declared_readers"), default_readers)} for row in rows]


def _iter_rows(
    source: str,
    files: list[SourceFile],
    previous: PreviousRows | None,
    previous_quarantine: list[dict],
    result: RawDocuments,
    shard: Shard,
    default_readers: list[str],
    **extract_args,
) -> Iterator[dict]:
    previous_files = _previous_by_locator(previous)
    keys = {name: previous.column(name) for name in PREVIOUS_KEY_COLUMNS} if previous is not None else {}
    for file in files:
        if not _read_by(shard, file):
            continue
        shown = redact_locator(file.locator)
        earlier = previous_files.get(shown)
        if file.problem is not None:
            _set_aside(result, shard, file.problem)
            continue
        if (
            earlier
            and previous is not None
            and _same_file(source, file, _key_row(keys, earlier[0]))
            and _unchanged(_key_row(keys, earlier[0]), file)
        ):
            result.quarantine.extend(q for q in previous_quarantine if _file_of(q["locator"]) == shown)
            yield from _carried_over(previous.rows_at(earlier), default_readers)
            continue
        if detect_format(file.locator) is None:
            _set_aside(
                result,
                shard,
                Rejection(
                    file.locator,
                    "unsupported",
                    f"{file.locator}: unsupported file type; supported: .txt .md .rst .html .htm .pdf .jsonl",
                ),
            )
            continue
        try:
            file_hash, extracted = _extract_file(file, result, **extract_args)
        except OSError as exc:
            _set_aside(result, shard, Rejection(file.locator, "unreadable", f"{file.locator}: cannot be read: {exc}"))
            continue
        result.files_read += 1
        rows, rejections = _file_rows(source, file, file_hash, extracted, default_readers)
        for rejection in rejections:
            _set_aside(result, shard, rejection)
        yield from (row for row in rows if shard.owns(row["doc_id"]))


def read_source(source: str, location: str, glob: str, previous: pa.Table | None, **options) -> RawDocuments:
    """Every row of a source in memory: `source_batches` collected, for tests and small sources."""
    earlier = PreviousRows.of_table(previous, PREVIOUS_KEY_COLUMNS) if previous is not None else None
    result, batches = source_batches(source, location, glob, earlier, **options)
    result.rows = list(rows_of(batches))
    return result


def source_batches(
    source: str,
    location: str,
    glob: str,
    previous: PreviousRows | None,
    *,
    previous_quarantine: list[dict] | None = None,
    text_field: str = "text",
    title_field: str | None = "title",
    readers_field: str | None = None,
    default_readers: list[str] | None = None,
    max_bytes: int = 20_000_000,
    allow_mass_deletion: bool = False,
    max_removed_fraction: float = 0.5,
    batch_bytes: int = BATCH_TEXT_BYTES,
    shard: Shard | None = None,
) -> tuple[RawDocuments, Iterator[pa.RecordBatch]]:
    """A source's rows as record batches of at most `batch_bytes` of text, and the result their reading fills.

    The source is listed at once (a missing folder or a bad glob raises here);
    files are read as the batches are consumed. After the last batch the diff is
    complete and a suspicious mass deletion raises, so a write consuming the
    batches is abandoned and nothing changes. `previous_quarantine` are the
    records of the last run: those of files carried over unread are kept, so a
    rejected line in an unchanged JSONL file stays visible. With a `shard`, only
    that shard's documents (and quarantine records) are read and kept; `files_listed`
    still counts the whole listing. `default_readers` are the readers of a document
    that declares none (none given: nobody).
    """
    files = list_source(location, glob)
    shard = shard or Shard(source)
    if shard.source != source:
        raise ValueError(f"shard {shard.key!r} is not a shard of source {source!r}")
    result = RawDocuments(rows=[], quarantine=[], files_listed=len(files))
    rows = _iter_rows(
        source,
        files,
        previous,
        previous_quarantine or [],
        result,
        shard,
        default_readers or [],
        text_field=text_field,
        title_field=title_field,
        readers_field=readers_field,
        max_bytes=max_bytes,
    )

    def batches() -> Iterator[pa.RecordBatch]:
        before = _previous_states(previous)
        for chunk in row_batches(_first_of_each(rows, result, before), text_bytes=batch_bytes):
            yield pa.RecordBatch.from_pylist(chunk, schema=RAW_SCHEMA)
        result.removed = sorted(set(before) - result.seen)
        _guard_mass_deletion(shard, location, result, previous, allow_mass_deletion, max_removed_fraction)

    return result, batches()


def _previous_states(previous: PreviousRows | None) -> dict[str, tuple[str, list[str] | None]]:
    """doc_id -> (content hash, readers) of the previous version."""
    if previous is None:
        return {}
    return dict(
        zip(
            previous.column("doc_id"),
            zip(previous.column("content_hash"), previous.column("readers"), strict=True),
            strict=True,
        )
    )


def _first_of_each(
    rows: Iterator[dict], result: RawDocuments, before: dict[str, tuple[str, list[str] | None]]
) -> Iterator[dict]:
    """Rows with a doc_id not seen before in this run, counted into the diff and the preview as they pass."""
    for row in rows:
        doc_id = row["doc_id"]
        if doc_id in result.seen:
            continue
        result.seen.add(doc_id)
        result.documents += 1
        result.readable_by_nobody += not row["readers"]
        if len(result.preview) < PREVIEW_ROWS:
            result.preview.append(row)
        if doc_id not in before:
            result.added.append(doc_id)
        elif before[doc_id] != (row["content_hash"], row["readers"]):
            result.changed.append(doc_id)
        else:
            result.unchanged.append(doc_id)
        yield row


def _guard_mass_deletion(
    shard: Shard, location: str, result: RawDocuments, previous: PreviousRows | None, allowed: bool, max_fraction: float
) -> None:
    if allowed or previous is None or previous.num_rows == 0:
        return
    fraction = len(result.removed) / previous.num_rows
    source = shard.source
    if fraction > max_fraction:
        where = f"source {source!r}" if shard.is_whole_source else f"shard {shard.key!r} of source {source!r}"
        raise SuspiciousListingError(
            f"{where} at {location}: {len(result.removed)} of {previous.num_rows} documents "
            f"({fraction:.0%}) would be removed, above max_removed_fraction={max_fraction:.0%}. "
            "If the folder is unmounted or the glob is wrong, fix that; if the deletions are real, "
            f"set allow_mass_deletion: true for source {source!r} in the config and re-run. Nothing was changed."
        )


def listing_fingerprint(files: list[SourceFile]) -> str:
    """A hash of (locator, size, modified) for every file: changes when any file is added, changed or removed."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.locator}\x1f{file.size}\x1f{file.modified}\n".encode())
    return digest.hexdigest()[:32]

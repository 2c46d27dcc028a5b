"""Turn the bytes of one file into text documents, or into rejections with reasons.

Nothing here raises on bad input: every problem becomes a `Rejection` naming
the file (or JSONL line), what is wrong and what to do, so a run never stops
on one bad file and nothing is dropped silently.
"""

from __future__ import annotations

import codecs
import functools
import html
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePath

from llm_platform.documents.chunking import find_headings
from llm_platform.documents.declared_readers import front_matter_readers, record_readers
from llm_platform.readers import ReadersError

SUPPORTED_FORMATS = {
    ".txt": "txt",
    ".md": "md",
    ".markdown": "md",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".jsonl": "jsonl",
}
REJECTION_KINDS = frozenset(
    {
        "unsupported",
        "unreadable",
        "binary",
        "encoding",
        "empty",
        "oversized",
        "malformed",
        "too_short",
        "bad_name",
        "outside_source",
        "broken_link",
        "link_loop",
        "special_file",
        "bad_readers",
    }
)
# Bump when extraction changes what a file becomes: files read under another
# version are read again instead of carried over by size and modification time.
EXTRACTOR_VERSION = "3"
# A JSONL line is `bytes`, or the byte count of a line over the limit that was not kept.
JsonlLine = bytes | int

SNIFF_BYTES = 65_536
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Share of NUL bytes in the odd (or even) positions that marks BOM-less UTF-16.
_UTF16_ZERO_SHARE = 0.9
# Share of control bytes above which a file is treated as binary even
# without NUL bytes; real text has almost none.
_MAX_CONTROL_SHARE = 0.10
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\f\v\x1b") + b"\x7f"
# DOS, EBCDIC and old Mac code pages: almost never seen in documents today, yet
# charset_normalizer often prefers one (cp852, say) for Windows-1252 text
# with only a few curly quotes, which garbles it.
_RARE_CODE_PAGE = re.compile(
    r"cp(?:4\d\d|7\d\d|8[56]\d|1006|1125)|cp037|cp273|cp500|cp875|cp1026|cp1140|mac_\w+|hp_roman8|kz1048|ptcp154"
)
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)


@functools.lru_cache(maxsize=1)
def _rare_code_pages() -> list[str]:
    from charset_normalizer.constant import IANA_SUPPORTED

    return sorted(name for name in IANA_SUPPORTED if _RARE_CODE_PAGE.fullmatch(name))


@dataclass(frozen=True)
class ExtractedDocument:
    """One document's raw text (HTML stays markup) as read from a file."""

    locator: str
    format: str
    text: str
    title: str | None
    readers: tuple[str, ...] | None = None  # the document's own reader groups; None: its source's


@dataclass(frozen=True)
class Rejection:
    """A file or JSONL line that could not become a document, and why."""

    locator: str
    kind: str
    reason: str


Extraction = tuple[list[ExtractedDocument], list[Rejection]]


def detect_format(path: str) -> str | None:
    """Return the format name for `path`'s extension, or None if unsupported."""
    return SUPPORTED_FORMATS.get(PurePath(path).suffix.lower())


def extract_documents(
    path: str,
    data: bytes,
    *,
    jsonl_text_field: str = "text",
    jsonl_title_field: str | None = "title",
    jsonl_readers_field: str | None = None,
    max_bytes: int = 20_000_000,
) -> Extraction:
    """Return the documents in file `path` with contents `data`, and any rejections."""
    fmt = detect_format(path)
    if fmt is None:
        return _rejected(path, "unsupported", _unsupported_reason(path))
    if fmt == "jsonl" and jsonl_streamable(data):
        # The limit is per record: one oversized line is rejected alone.
        return extract_jsonl(
            path,
            _split_lines(data, max_bytes),
            text_field=jsonl_text_field,
            title_field=jsonl_title_field,
            readers_field=jsonl_readers_field,
            max_bytes=max_bytes,
        )
    if len(data) > max_bytes:
        reason = f"{len(data):,} bytes exceeds the limit of {max_bytes:,}; split the file or raise max_bytes"
        return _rejected(path, "oversized", f"{path}: {reason}")
    if fmt == "pdf":
        return _extract_pdf(path, data)
    problem = _binary_problem(data)
    if problem is not None:
        return _rejected(path, "binary", f"{path}: {problem}; it looks binary, not text (format {fmt})")
    text = _decode_text(data)
    if text is None:
        return _rejected(path, "encoding", _encoding_reason(path))
    if fmt == "jsonl":
        lines = _split_lines(text.encode("utf-8"), max_bytes)
        return extract_jsonl(
            path,
            lines,
            text_field=jsonl_text_field,
            title_field=jsonl_title_field,
            readers_field=jsonl_readers_field,
            max_bytes=max_bytes,
        )
    return _single_document(path, fmt, text, _title_for(fmt, text))


def jsonl_streamable(head: bytes) -> bool:
    """Whether a JSONL file starting with `head` can be read line by line (not UTF-16, not binary)."""
    return not _utf16_encoding(head) and _binary_problem(head) is None


def _utf16_encoding(data: bytes) -> str | None:
    """ "utf-16" for a BOM; "utf-16-le"/"-be" when every other byte is NUL,
    as in UTF-16 text of Latin script without a BOM.
    """
    if data.startswith(_UTF16_BOMS):
        return "utf-16"
    head = data[: SNIFF_BYTES - SNIFF_BYTES % 2]
    if len(head) < 4:
        return None
    for encoding, high, low in (("utf-16-le", head[1::2], head[0::2]), ("utf-16-be", head[0::2], head[1::2])):
        if high.count(0) >= _UTF16_ZERO_SHARE * len(high) and low.count(0) == 0:
            return encoding
    return None


def _decode_text(data: bytes) -> str | None:
    """Return `data` decoded (BOM, then UTF-8, then charset detection), or None if nothing fits."""
    encoding = _utf16_encoding(data) or "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        pass
    # best() is None when every candidate decoding reads as gibberish.
    import charset_normalizer

    match = charset_normalizer.from_bytes(data, cp_exclusion=_rare_code_pages()).best()
    return None if match is None else str(match)


def _rejected(locator: str, kind: str, reason: str) -> Extraction:
    return [], [Rejection(locator, kind, reason)]


def _unsupported_reason(path: str) -> str:
    suffix = PurePath(path).suffix or "(none)"
    known = ", ".join(sorted(SUPPORTED_FORMATS))
    return f"{path}: extension {suffix} is not supported; convert it to one of {known} or remove it from the source"


def _encoding_reason(path: str) -> str:
    return f"{path}: bytes are not UTF-8 and no other encoding decodes them as readable text; re-save the file as UTF-8"


def _binary_problem(data: bytes) -> str | None:
    head = data[:SNIFF_BYTES]
    if _utf16_encoding(head):
        return None  # UTF-16 text is full of NUL bytes by design
    if b"\x00" in head:
        return "file contains NUL bytes"
    control = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if head and control / len(head) > _MAX_CONTROL_SHARE:
        return f"{control / len(head):.0%} of the first bytes are control characters"
    return None


def _single_document(
    locator: str, fmt: str, text: str, title: str | None, readers: list[str] | None = None
) -> Extraction:
    if not text.strip():
        return _rejected(locator, "empty", f"{locator}: no text in the file (format {fmt}); add content or remove it")
    try:
        if fmt == "md":
            readers = front_matter_readers(text, locator)
    except ReadersError as error:
        return _rejected(locator, "bad_readers", f"{error}; the document is not indexed until its readers are valid")
    return [ExtractedDocument(locator, fmt, text, title, None if readers is None else tuple(readers))], []


def _title_for(fmt: str, text: str) -> str | None:
    if fmt == "html":
        match = _HTML_TITLE.search(text)
        title = " ".join(html.unescape(match.group(1)).split()) if match else ""
        return title or None
    if fmt == "md":
        return next((h.title for h in find_headings(text, "md") if h.level == 1), None)
    if fmt == "rst":
        return next((h.title for h in find_headings(text, "rst")), None)
    return None


def _extract_pdf(path: str, data: bytes) -> Extraction:
    try:
        import pypdf

        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")
        pages = [page.extract_text() or "" for page in reader.pages]
        metadata = reader.metadata
    # pypdf raises many exception types on corrupt input; each becomes a reason.
    except Exception as error:  # noqa: BLE001
        reason = f"{path}: PDF cannot be parsed ({type(error).__name__}: {error}); re-export it or convert it to text"
        return _rejected(path, "unreadable", reason)
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    title = metadata.title.strip() if metadata is not None and metadata.title else None
    if not text:
        reason = f"{path}: PDF has no extractable text (scanned image?); run OCR first or remove it"
        return _rejected(path, "empty", reason)
    return [ExtractedDocument(path, "pdf", text, title or None)], []


def extract_jsonl(
    path: str,
    lines: Iterable[JsonlLine],
    *,
    text_field: str,
    title_field: str | None,
    max_bytes: int,
    readers_field: str | None = None,
) -> Extraction:
    """Return one document per JSONL line; each bad line (too long, undecodable, not JSON) is rejected alone."""
    documents: list[ExtractedDocument] = []
    rejections: list[Rejection] = []
    for line_no, line in enumerate(lines, start=1):
        locator = f"{path}#L{line_no}"
        if isinstance(line, int):
            reason = (
                f"{locator}: line of {line:,} bytes exceeds the limit of "
                f"{max_bytes:,}; split the record or raise max_bytes"
            )
            rejections.append(Rejection(locator, "oversized", reason))
            continue
        text = _decode_line(line, first=line_no == 1)
        if text is None:
            rejections.append(Rejection(locator, "encoding", _encoding_reason(locator)))
            continue
        if not text.strip():
            continue
        found, rejected = _jsonl_line(locator, text, text_field, title_field, readers_field)
        documents += found
        rejections += rejected
    if not documents and not rejections:
        return _rejected(path, "empty", f"{path}: JSONL file has no lines; add records or remove it")
    return documents, rejections


def _split_lines(data: bytes, max_bytes: int) -> Iterator[JsonlLine]:
    # Split on b"\n" only: JSON strings may hold raw U+2028 and similar
    # characters that str.splitlines() would treat as line ends.
    for line in data.split(b"\n"):
        yield line if len(line) <= max_bytes else len(line)


def _decode_line(line: bytes, *, first: bool) -> str | None:
    try:
        return line.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError:
        return _decode_text(line)


def _jsonl_line(
    locator: str, line: str, text_field: str, title_field: str | None, readers_field: str | None
) -> Extraction:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        reason = f"{locator}: line is not valid JSON (column {error.colno}: {error.msg}); fix or remove the line"
        return _rejected(locator, "malformed", reason)
    if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
        reason = (
            f"{locator}: line has no string field {text_field!r}; add it, "
            "or set jsonl_text_field to the field that holds the text"
        )
        return _rejected(locator, "malformed", reason)
    title = record.get(title_field) if title_field else None
    try:
        readers = record_readers(record, readers_field, locator)
    except ReadersError as error:
        return _rejected(locator, "bad_readers", f"{error}; the record is not indexed until its readers are valid")
    return _single_document(
        locator, "jsonl", record[text_field], title if isinstance(title, str) and title else None, readers
    )

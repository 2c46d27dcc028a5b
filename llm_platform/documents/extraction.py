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
from dataclasses import dataclass
from pathlib import PurePath


from llm_platform.documents.chunking import find_headings

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
    {"unsupported", "unreadable", "binary", "encoding", "empty", "oversized", "malformed", "too_short"}
)

_SNIFF_BYTES = 65_536
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
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
    max_bytes: int = 20_000_000,
) -> Extraction:
    """Return the documents in file `path` with contents `data`, and any rejections."""
    fmt = detect_format(path)
    if fmt is None:
        return _rejected(path, "unsupported", _unsupported_reason(path))
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
        return _extract_jsonl(path, text, jsonl_text_field, jsonl_title_field)
    return _single_document(path, fmt, text, _title_for(fmt, text))


def _decode_text(data: bytes) -> str | None:
    """Return `data` decoded (BOM, then UTF-8, then charset detection), or None if nothing fits."""
    encoding = "utf-16" if data.startswith(_UTF16_BOMS) else "utf-8-sig"
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
    head = data[:_SNIFF_BYTES]
    if head.startswith(_UTF16_BOMS):
        return None  # UTF-16 text is full of NUL bytes by design
    if b"\x00" in head:
        return "file contains NUL bytes"
    control = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if head and control / len(head) > _MAX_CONTROL_SHARE:
        return f"{control / len(head):.0%} of the first bytes are control characters"
    return None


def _single_document(locator: str, fmt: str, text: str, title: str | None) -> Extraction:
    if not text.strip():
        return _rejected(locator, "empty", f"{locator}: no text in the file (format {fmt}); add content or remove it")
    return [ExtractedDocument(locator, fmt, text, title)], []


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


def _extract_jsonl(path: str, text: str, text_field: str, title_field: str | None) -> Extraction:
    documents: list[ExtractedDocument] = []
    rejections: list[Rejection] = []
    # split("\n"), not splitlines(): JSON strings may hold raw U+2028 and
    # similar characters that splitlines() would treat as line ends.
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        found, rejected = _jsonl_line(f"{path}#L{line_no}", line, text_field, title_field)
        documents += found
        rejections += rejected
    if not documents and not rejections:
        return _rejected(path, "empty", f"{path}: JSONL file has no lines; add records or remove it")
    return documents, rejections


def _jsonl_line(locator: str, line: str, text_field: str, title_field: str | None) -> Extraction:
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
    return _single_document(locator, "jsonl", record[text_field], title if isinstance(title, str) and title else None)

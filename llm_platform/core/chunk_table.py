"""Cleaned documents to chunk rows, reusing the chunks of unchanged documents."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from llm_platform.core.chunking import CHUNKER_VERSION, Chunker
from llm_platform.core.identity import chunk_id_for, text_hash

CHUNK_SCHEMA = pa.schema(
    [
        ("chunk_id", pa.string()),
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("locator", pa.string()),
        ("title", pa.string()),
        ("heading", pa.string()),
        ("position", pa.int32()),
        ("text", pa.large_string()),
        ("text_hash", pa.string()),
        ("token_count", pa.int32()),
        ("doc_content_hash", pa.string()),
        ("chunker_version", pa.string()),
    ]
)


@dataclass
class ChunkedCorpus:
    """Chunk rows for a source, with how many documents were chunked anew."""

    rows: list[dict]
    documents_chunked: int = 0
    documents_reused: int = 0


def _chunk_rows(doc: dict, chunker: Chunker) -> list[dict]:
    return [
        {
            "chunk_id": chunk_id_for(doc["doc_id"], chunk.position, chunk.text, CHUNKER_VERSION),
            "doc_id": doc["doc_id"],
            "source": doc["source"],
            "locator": doc["locator"],
            "title": doc["title"],
            "heading": chunk.heading,
            "position": chunk.position,
            "text": chunk.text,
            "text_hash": text_hash(chunk.text),
            "token_count": chunk.token_count,
            "doc_content_hash": doc["content_hash"],
            "chunker_version": CHUNKER_VERSION,
        }
        for chunk in chunker.chunk(doc["text"], fmt=doc["format"])
    ]


def _previous_by_doc(previous: pa.Table | None) -> dict[tuple[str, str], list[dict]]:
    grouped: dict[tuple[str, str], list[dict]] = {}
    if previous is None:
        return grouped
    for row in previous.to_pylist():
        if row["chunker_version"] == CHUNKER_VERSION:
            grouped.setdefault((row["doc_id"], row["doc_content_hash"]), []).append(row)
    return grouped


def chunk_corpus(documents: Iterable[dict], previous: pa.Table | None, chunker_factory) -> ChunkedCorpus:
    """Chunk every document whose cleaned text changed; `chunker_factory` is called at most once."""
    earlier = _previous_by_doc(previous)
    result = ChunkedCorpus(rows=[])
    chunker: Chunker | None = None
    for doc in documents:
        reused = earlier.get((doc["doc_id"], doc["content_hash"]))
        if reused is not None:
            result.rows.extend(sorted(reused, key=lambda r: r["position"]))
            result.documents_reused += 1
            continue
        chunker = chunker or chunker_factory()
        result.rows.extend(_chunk_rows(doc, chunker))
        result.documents_chunked += 1
    return result

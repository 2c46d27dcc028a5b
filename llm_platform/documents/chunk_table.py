"""Cleaned documents to chunk rows, reusing the chunks of unchanged documents."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from llm_platform.documents.chunking import CHUNKER_VERSION, Chunk
from llm_platform.identity import chunk_id_for, text_hash

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


def chunker_version(model_id: str, max_tokens: int, overlap: int) -> str:
    """What made a chunk: the chunking code, the tokenizer's model and the token budget.

    It is part of chunk identity, so changing any of them re-chunks every document
    instead of reusing chunks cut to the old budget.
    """
    return f"{CHUNKER_VERSION}/{model_id}/{max_tokens}/{overlap}"


def _chunk_rows(doc: dict, chunks: list[Chunk], version: str) -> list[dict]:
    return [
        {
            "chunk_id": chunk_id_for(doc["doc_id"], chunk.position, chunk.text, version),
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
            "chunker_version": version,
        }
        for chunk in chunks
    ]


def _previous_by_doc(previous: pa.Table | None, version: str) -> dict[tuple[str, str], list[dict]]:
    grouped: dict[tuple[str, str], list[dict]] = {}
    if previous is None:
        return grouped
    for row in previous.to_pylist():
        if row["chunker_version"] == version:
            grouped.setdefault((row["doc_id"], row["doc_content_hash"]), []).append(row)
    return grouped


def chunk_corpus(documents: Iterable[dict], previous: pa.Table | None, chunker_factory, *, version: str = CHUNKER_VERSION) -> ChunkedCorpus:
    """Chunk every document whose cleaned text (or `version`) changed; `chunker_factory` is called at most once."""
    earlier = _previous_by_doc(previous, version)
    documents = list(documents)
    fresh = [doc for doc in documents if (doc["doc_id"], doc["content_hash"]) not in earlier]
    chunked = chunker_factory().chunk_all([(doc["text"], doc["format"]) for doc in fresh]) if fresh else []
    new_chunks = {doc["doc_id"]: chunks for doc, chunks in zip(fresh, chunked, strict=True)}
    result = ChunkedCorpus(rows=[], documents_chunked=len(fresh), documents_reused=len(documents) - len(fresh))
    for doc in documents:
        if doc["doc_id"] in new_chunks:
            result.rows.extend(_chunk_rows(doc, new_chunks[doc["doc_id"]], version))
        else:
            result.rows.extend(sorted(earlier[(doc["doc_id"], doc["content_hash"])], key=lambda r: r["position"]))
    return result

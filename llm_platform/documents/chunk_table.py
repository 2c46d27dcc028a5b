"""Cleaned documents to chunk rows, reusing the chunks of unchanged documents, in batches bounded by bytes of text.

A reused chunk takes its document's current readers, so a readers-only change
reaches the chunks (and the index) without re-chunking or re-embedding.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from llm_platform.documents.batching import BATCH_TEXT_BYTES, row_batches, rows_of
from llm_platform.documents.chunking import CHUNKER_VERSION, Chunk, Chunker
from llm_platform.documents.previous_rows import PreviousRows
from llm_platform.documents.worker_pool import WorkerPool
from llm_platform.identity import chunk_id_for, text_hash

PREVIEW_ROWS = 5
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
        ("readers", pa.list_(pa.string())),
    ]
)


@dataclass
class ChunkedCorpus:
    """Chunk rows for a source, with how many documents were chunked anew."""

    rows: list[dict]
    documents_chunked: int = 0
    documents_reused: int = 0
    chunks: int = 0
    token_counts: list[np.ndarray] = field(default_factory=list)
    preview: list[dict] = field(default_factory=list)

    def observe(self, batch: pa.RecordBatch) -> None:
        """Count chunks written, keep their token counts (4 bytes each) and the first few for the preview."""
        self.chunks += batch.num_rows
        self.token_counts.append(batch.column("token_count").to_numpy(zero_copy_only=False).astype(np.int32))
        if len(self.preview) < PREVIEW_ROWS:
            self.preview += batch.slice(0, PREVIEW_ROWS - len(self.preview)).to_pylist()

    @property
    def tokens(self) -> np.ndarray:
        return np.concatenate(self.token_counts) if self.token_counts else np.zeros(0, dtype=np.int32)


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
            "readers": _readers_of(doc),
        }
        for chunk in chunks
    ]


def _readers_of(doc: dict) -> list[str]:
    # A cleaned row written before readers existed has none: fail closed.
    return doc.get("readers") or []


# What reuse needs from the previous chunks; their text stays on disk.
PREVIOUS_KEY_COLUMNS = ("doc_id", "doc_content_hash", "chunker_version", "position")


def _previous_by_doc(previous: PreviousRows | None, version: str) -> dict[tuple[str, str], list[int]]:
    """(doc_id, content hash) -> positions of its previous chunks made by `version`, in chunk order."""
    grouped: dict[tuple[str, str], list[tuple[int, int]]] = {}
    if previous is None:
        return {}
    columns = zip(
        previous.column("doc_id"),
        previous.column("doc_content_hash"),
        previous.column("chunker_version"),
        previous.column("position"),
        strict=True,
    )
    for row, (doc_id, digest, made_by, position) in enumerate(columns):
        if made_by == version:
            grouped.setdefault((doc_id, digest), []).append((position, row))
    return {key: [row for _, row in sorted(chunks)] for key, chunks in grouped.items()}


def chunk_corpus(
    documents: Iterable[dict],
    previous: pa.Table | None,
    chunker_factory: Callable[[], Chunker],
    *,
    version: str = CHUNKER_VERSION,
    batch_bytes: int = BATCH_TEXT_BYTES,
    workers: int = 1,
) -> ChunkedCorpus:
    """Every chunk row in memory: `chunk_batches` collected, for tests and small sources."""
    result = ChunkedCorpus(rows=[])
    earlier = PreviousRows.of_table(previous, PREVIOUS_KEY_COLUMNS) if previous is not None else None
    result.rows = list(
        rows_of(
            chunk_batches(
                documents, earlier, chunker_factory, result, version=version, batch_bytes=batch_bytes, workers=workers
            )
        )
    )
    return result


def chunk_batches(
    documents: Iterable[dict],
    previous: PreviousRows | None,
    chunker_factory: Callable[[], Chunker],
    result: ChunkedCorpus,
    *,
    version: str = CHUNKER_VERSION,
    batch_bytes: int = BATCH_TEXT_BYTES,
    workers: int = 1,
) -> Iterator[pa.RecordBatch]:
    """Chunk every document whose cleaned text (or `version`) changed, a batch of at most
    `batch_bytes` of text at a time.

    `chunker_factory` is called once per process that chunks, and only if a
    document needs chunking; unchanged documents' chunks are read back from
    `previous`. With `workers` > 1 each batch's documents are split among that
    many processes, in order (the factory must then be picklable, e.g.
    `chunking.ChunkerSettings`); the chunks are the same for any number of
    workers. `result` is filled as the batches are consumed.
    """
    with WorkerPool(workers) as pool:
        yield from _chunk_batches(documents, previous, chunker_factory, result, version, batch_bytes, pool)


def _chunk_batches(
    documents: Iterable[dict],
    previous: PreviousRows | None,
    chunker_factory: Callable[[], Chunker],
    result: ChunkedCorpus,
    version: str,
    batch_bytes: int,
    pool: WorkerPool,
) -> Iterator[pa.RecordBatch]:
    earlier = _previous_by_doc(previous, version)
    for batch in row_batches(documents, text_bytes=batch_bytes):
        fresh = [doc for doc in batch if (doc["doc_id"], doc["content_hash"]) not in earlier]
        chunked = _chunked(chunker_factory, [(doc["text"], doc["format"]) for doc in fresh], pool) if fresh else []
        new_chunks = {doc["doc_id"]: chunks for doc, chunks in zip(fresh, chunked, strict=True)}
        reused = [
            row
            for doc in batch
            if doc["doc_id"] not in new_chunks
            for row in earlier[(doc["doc_id"], doc["content_hash"])]
        ]
        reused_rows = iter(previous.rows_at(reused)) if previous is not None else iter(())
        rows = []
        for doc in batch:
            if doc["doc_id"] in new_chunks:
                rows += _chunk_rows(doc, new_chunks[doc["doc_id"]], version)
            else:
                rows += [
                    {**next(reused_rows), "readers": _readers_of(doc)}
                    for _ in earlier[(doc["doc_id"], doc["content_hash"])]
                ]
        result.documents_chunked += len(fresh)
        result.documents_reused += len(batch) - len(fresh)
        out = pa.RecordBatch.from_pylist(rows, schema=CHUNK_SCHEMA)
        result.observe(out)
        yield out


def _chunked(
    chunker_factory: Callable[[], Chunker], documents: list[tuple[str, str]], pool: WorkerPool
) -> list[list[Chunk]]:
    """The chunks of each (text, format) document, split among the pool's
    workers in contiguous, text-balanced groups.
    """
    groups = _balanced_groups(documents, pool.workers)
    jobs = [(chunker_factory, group) for group in groups]
    return [
        chunks for found in pool.map(_chunk_group, jobs, chars=sum(len(t) for t, _ in documents)) for chunks in found
    ]


def _balanced_groups(documents: list[tuple[str, str]], count: int) -> list[list[tuple[str, str]]]:
    if count == 1:
        return [documents]
    share = sum(len(text) for text, _ in documents) / count
    groups: list[list[tuple[str, str]]] = [[]]
    size = 0
    for document in documents:
        if size >= share and len(groups) < count:
            groups.append([])
            size = 0
        groups[-1].append(document)
        size += len(document[0])
    return groups


def _chunk_group(job: tuple[Callable[[], Chunker], Sequence[tuple[str, str]]]) -> list[list[Chunk]]:
    chunker_factory, documents = job
    return _chunker(chunker_factory).chunk_all(documents)


@functools.lru_cache(maxsize=1)
def _chunker(chunker_factory: Callable[[], Chunker]) -> Chunker:
    # One chunker per process for the factory in use: loading the tokenizer and building the splitters is the costly
    # part.
    return chunker_factory()

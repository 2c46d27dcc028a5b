"""Raw documents to the cleaned corpus of one source, reusing unchanged work.

A document whose raw `content_hash` matches a previous cleaned row, cleaned
under the same `cleaning_version` (rendering, cleaning rules, PII detector), is
not cleaned again; any change to those re-cleans it. The rows a run set aside
(too short, low quality, text lost in rendering, duplicates) are stored too
(`SET_ASIDE_SCHEMA`) and reused the same way: the rules and deduplication run
again on every row, reused or not, so a changed threshold or a changed original
brings a set-aside document back exactly as a cold run would.

Deduplication always runs over the whole source (on stored MinHash signatures,
so it is cheap), because a new or changed document can make an old one a
duplicate, or no longer one; it compares documents with the same readers only,
so no group loses a document to a copy it may not read. Every row, reused or
not, takes its document's current readers from the raw row. Documents stream
through in batches bounded by bytes of text; only ids, hashes and signatures
are held for the whole source.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from llm_platform.documents import pii
from llm_platform.documents.batching import BATCH_TEXT_BYTES, row_batches, rows_of
from llm_platform.documents.cleaned_rows import (
    CleaningRules,
    clean_row,
    raw_title_hash,
    readers_of,
    rule_violation,
    set_aside_record,
    take_as_found_clean,
)
from llm_platform.documents.cleaning import cleaning_version
from llm_platform.documents.dedup import Duplicate, find_duplicates
from llm_platform.documents.previous_rows import PreviousRows
from llm_platform.documents.worker_pool import WorkerPool

CLEANED_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("locator", pa.string()),
        ("format", pa.string()),
        ("title", pa.string()),
        ("text", pa.large_string()),
        ("raw_content_hash", pa.string()),
        # With raw_content_hash, what a previous row must match to be reused: cleaning reads both.
        ("raw_title_hash", pa.string()),
        ("content_hash", pa.string()),
        ("quality", pa.float64()),
        ("pii_counts", pa.string()),
        ("minhash", pa.list_(pa.uint64())),
        ("cleaning_version", pa.string()),
        ("readers", pa.list_(pa.string())),
        # Whether the redactor's last round found nothing in text and title: see `cleaned_rows.take_as_found_clean`.
        ("redactor_found_clean", pa.bool_()),
    ]
)
# A set-aside row is a cleaned row, with what rendering lost when that is why it was set aside.
SET_ASIDE_SCHEMA = CLEANED_SCHEMA.append(pa.field("lost_in_rendering", pa.string()))
PREVIEW_ROWS = 5
DUPLICATE_KINDS = frozenset({"exact_duplicate", "near_duplicate"})


@dataclass
class CleanedCorpus:
    """Cleaned rows, what was set aside (with reasons), and counts for metadata."""

    rows: list[dict]
    quarantine: list[dict]
    cleaned: int = 0
    reused: int = 0
    inputs: int = 0
    documents: int = 0
    quality_sum: float = 0.0
    preview: list[dict] = field(default_factory=list)
    pii_counts: Counter = field(default_factory=Counter)
    set_aside_rows: list[dict] = field(default_factory=list)

    def observe(self, kept: pa.Table) -> None:
        """Count rows written to the corpus and keep the first few for the preview."""
        self.documents += kept.num_rows
        self.quality_sum += float(pc.sum(kept.column("quality")).as_py() or 0.0)
        if len(self.preview) < PREVIEW_ROWS:
            self.preview += kept.slice(0, PREVIEW_ROWS - len(self.preview)).drop_columns(["minhash"]).to_pylist()

    @property
    def mean_quality(self) -> float:
        return self.quality_sum / self.documents if self.documents else 0.0

    @property
    def duplicates(self) -> list[dict]:
        return [q for q in self.quarantine if q["kind"] in DUPLICATE_KINDS]

    @property
    def rejected(self) -> list[dict]:
        return [q for q in self.quarantine if q["kind"] not in DUPLICATE_KINDS]


# What reuse needs from the previous cleaned version; its text stays on disk.
PREVIOUS_KEY_COLUMNS = ("doc_id", "raw_content_hash", "raw_title_hash", "cleaning_version", "redactor_found_clean")


def clean_corpus(
    raw_rows: Iterable[dict],
    previous: pa.Table | None,
    rules: CleaningRules,
    *,
    previous_set_aside: pa.Table | None = None,
    batch_bytes: int = BATCH_TEXT_BYTES,
    workers: int = 1,
) -> CleanedCorpus:
    """Every cleaned row in memory: `cleaned_batches` collected, for tests and small sources.

    The rows set aside land in `set_aside_rows`; pass them back as `previous_set_aside` to reuse them.
    """
    result = CleanedCorpus(rows=[], quarantine=[])
    earlier = PreviousRows.joined(
        [PreviousRows.of_table(t, PREVIOUS_KEY_COLUMNS) for t in (previous, previous_set_aside) if t is not None]
    )
    batches = cleaned_batches(
        raw_rows,
        earlier,
        rules,
        result,
        set_aside=result.set_aside_rows.extend,
        batch_bytes=batch_bytes,
        workers=workers,
    )
    result.rows = list(rows_of(batches))
    return result


def cleaned_batches(
    raw_rows: Iterable[dict],
    previous: PreviousRows | None,
    rules: CleaningRules,
    result: CleanedCorpus,
    *,
    set_aside: Callable[[list[dict]], None] = lambda rows: None,
    batch_bytes: int = BATCH_TEXT_BYTES,
    workers: int = 1,
) -> Iterator[pa.Table]:
    """Clean, filter and deduplicate one source's raw documents, in batches of at most `batch_bytes` of text.

    Two passes: the first cleans batch by batch into a temporary Parquet file,
    keeping only each candidate's id, hash and MinHash signature; duplicates are
    found over all signatures; the second pass reads the file back one row group
    at a time and drops them. `result` is filled as the batches are consumed;
    the rows set aside (in `SET_ASIDE_SCHEMA`) go to `set_aside`, a batch at a
    time, for the caller to store beside the corpus.
    Each batch's documents are cleaned by `workers` processes, in order, so
    the output is the same for any number of workers.
    """
    version = cleaning_version()
    reusable = _reusable(previous, version)
    with tempfile.TemporaryDirectory(prefix="cleaned-") as folder, WorkerPool(workers) as pool:
        path = f"{folder}/candidates.parquet"
        signatures = _write_candidates(raw_rows, previous, reusable, rules, result, set_aside, path, batch_bytes, pool)
        pool.close()
        duplicates = {
            d.doc_id: d for d in duplicates_within_readers(signatures, threshold=rules.near_duplicate_threshold)
        }
        del signatures
        yield from _without_duplicates(path, duplicates, result, set_aside)


Signature = tuple[tuple[str, ...], tuple[str, str, np.ndarray]]


def duplicates_within_readers(signatures: list[Signature], *, threshold: float) -> list[Duplicate]:
    """Duplicates among documents with the same readers only: dropping a copy
    other readers may read would take it from them.
    """
    by_readers: dict[tuple[str, ...], list[tuple[str, str, np.ndarray]]] = {}
    for readers, item in signatures:
        by_readers.setdefault(readers, []).append(item)
    return [duplicate for items in by_readers.values() for duplicate in find_duplicates(items, threshold=threshold)]


def _reusable(previous: PreviousRows | None, version: str) -> dict[tuple[str, str, str], int]:
    """(doc_id, raw content hash, raw title hash) -> position of a previous row cleaned under `version`.

    A row stored before `redactor_found_clean` or `raw_title_hash` existed is
    cleaned again, so that every stored row has them, as a cold run's rows do.
    """
    if previous is None:
        return {}
    columns = zip(
        previous.column("doc_id"),
        previous.column("raw_content_hash"),
        previous.column("raw_title_hash"),
        previous.column("cleaning_version"),
        previous.column("redactor_found_clean"),
        strict=True,
    )
    return {
        (doc_id, digest, title_digest): position
        for position, (doc_id, digest, title_digest, made_by, found_clean) in enumerate(columns)
        if made_by == version and found_clean is not None and title_digest is not None
    }


def _write_candidates(
    raw_rows: Iterable[dict],
    previous: PreviousRows | None,
    reusable: dict[tuple[str, str, str], int],
    rules: CleaningRules,
    result: CleanedCorpus,
    set_aside: Callable[[list[dict]], None],
    path: str,
    batch_bytes: int,
    pool: WorkerPool,
) -> list[Signature]:
    """Pass one: each batch cleaned (or reused), rule-checked and written to
    `path`; the candidates' readers and signatures returned.
    """
    signatures: list[Signature] = []
    with pq.ParquetWriter(path, CLEANED_SCHEMA) as writer:
        for batch in row_batches(raw_rows, text_bytes=batch_bytes):
            candidates, aside = _cleaned_candidates(batch, previous, reusable, rules, result, pool)
            set_aside(aside)
            for row in candidates:
                del row["lost_in_rendering"]
            signatures += [
                (tuple(r["readers"]), (r["doc_id"], r["content_hash"], np.asarray(r["minhash"], dtype=np.uint64)))
                for r in candidates
            ]
            if candidates:
                writer.write_batch(pa.RecordBatch.from_pylist(candidates, schema=CLEANED_SCHEMA))
    return signatures


def _cleaned_candidates(
    batch: list[dict],
    previous: PreviousRows | None,
    reusable: dict[tuple[str, str, str], int],
    rules: CleaningRules,
    result: CleanedCorpus,
    pool: WorkerPool,
) -> tuple[list[dict], list[dict]]:
    """The batch's candidates and the rows it sets aside, each cleaned or reused (a set-aside row too)."""
    version = cleaning_version()
    positions = [reusable.get((raw["doc_id"], raw["content_hash"], raw_title_hash(raw))) for raw in batch]
    reused = iter(previous.rows_at([p for p in positions if p is not None])) if previous is not None else iter(())
    fresh = [raw for raw, position in zip(batch, positions, strict=True) if position is None]
    cleaned = iter(pool.map(clean_row, [(raw, version) for raw in fresh], chars=sum(len(r["text"]) for r in fresh)))
    candidates, aside = [], []
    for raw, position in zip(batch, positions, strict=True):
        result.inputs += 1
        if position is not None:
            # A kept row has no lost_in_rendering column: it lost nothing.
            row = {"lost_in_rendering": None, **next(reused), "readers": readers_of(raw)}
            take_as_found_clean(row)
            result.reused += 1
        else:
            row, found_clean = next(cleaned)
            # Cleaned in a worker process: no_pii_left, here, need not run the redactor on these texts again.
            pii.remember_clean_digests(found_clean)
            result.cleaned += 1
        result.pii_counts.update(json.loads(row["pii_counts"]))
        violation = rule_violation(row, rules)
        if violation:
            result.quarantine.append(set_aside_record(row, *violation))
            aside.append(row)
        else:
            candidates.append(row)
    return candidates, aside


def _without_duplicates(
    path: str, duplicates: dict[str, Duplicate], result: CleanedCorpus, set_aside: Callable[[list[dict]], None]
) -> Iterator[pa.Table]:
    """Pass two: the candidates' row groups (one per pass-one batch) without
    duplicates, each set aside naming the kept document.
    """
    originals = {d.duplicate_of for d in duplicates.values()}
    locators: dict[str, str] = {}
    candidates = pq.ParquetFile(path)
    for group in range(candidates.num_row_groups):
        table = candidates.read_row_group(group)
        keep = []
        for row in table.select(["doc_id", "source", "locator"]).to_pylist():
            if row["doc_id"] in originals:
                locators[row["doc_id"]] = row["locator"]
            dup = duplicates.get(row["doc_id"])
            keep.append(dup is None)
            if dup is not None:
                kind = "exact_duplicate" if dup.kind == "exact" else "near_duplicate"
                result.quarantine.append(
                    set_aside_record(
                        row, kind, f"{row['locator']}: {dup.kind} duplicate of {locators[dup.duplicate_of]}"
                    )
                )
        mask = pa.array(keep, type=pa.bool_())
        kept = table.filter(mask)
        if not all(keep):
            set_aside([{**row, "lost_in_rendering": None} for row in table.filter(pc.invert(mask)).to_pylist()])
        result.observe(kept)
        yield kept

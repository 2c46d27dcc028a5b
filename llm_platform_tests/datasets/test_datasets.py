"""Versioned Parquet datasets: readers see the last complete write, and only a few old versions are kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from llm_platform.datasets import Dataset, DatasetStore

SCHEMA = pa.schema([("doc_id", pa.string()), ("words", pa.int64())])
RAW = Dataset("raw", SCHEMA, partitioned=True)


def table(*rows: tuple[str, int]) -> pa.Table:
    return pa.Table.from_pylist([{"doc_id": d, "words": w} for d, w in rows], schema=SCHEMA)


def parquet_files(store: DatasetStore) -> list[Path]:
    return sorted(Path(store.root, "datasets", "raw", "docs").glob("*.parquet"))


@pytest.fixture
def store(tmp_path) -> DatasetStore:
    return DatasetStore(str(tmp_path))


def test_nothing_written_reads_as_none(store):
    assert store.read(RAW, "docs") is None and store.current_version(RAW, "docs") is None


def test_written_rows_read_back_in_order(store):
    store.write(RAW, "docs", [table(("a", 1)), table(("b", 2), ("c", 3))], SCHEMA)
    assert store.read(RAW, "docs").to_pylist() == table(("a", 1), ("b", 2), ("c", 3)).to_pylist()


def test_write_reports_its_version_and_row_count(store):
    written = store.write(RAW, "docs", [table(("a", 1), ("b", 2))], SCHEMA, run_id="abcdef123456")
    assert written.rows == 2 and written.version.endswith(".parquet")
    assert store.current_version(RAW, "docs") == written.version


def test_an_unchanged_write_keeps_the_version(store):
    first = store.write(RAW, "docs", [table(("a", 1), ("b", 2))], SCHEMA, run_id="run-one")
    again = store.write(RAW, "docs", [table(("a", 1), ("b", 2))], SCHEMA, run_id="run-two")
    assert again.version == first.version and len(parquet_files(store)) == 1


def test_a_changed_write_gets_a_new_version(store):
    first = store.write(RAW, "docs", [table(("a", 1))], SCHEMA)
    changed = store.write(RAW, "docs", [table(("a", 2))], SCHEMA)
    assert changed.version != first.version and store.current_version(RAW, "docs") == changed.version


def test_returning_to_earlier_content_is_a_new_version(store):
    first = store.write(RAW, "docs", [table(("a", 1))], SCHEMA)
    store.write(RAW, "docs", [table(("a", 2))], SCHEMA)
    back = store.write(RAW, "docs", [table(("a", 1))], SCHEMA)
    assert back.version != first.version and store.read(RAW, "docs").to_pylist() == table(("a", 1)).to_pylist()


def test_read_can_select_columns(store):
    store.write(RAW, "docs", [table(("a", 1))], SCHEMA)
    assert store.read(RAW, "docs", columns=["words"]).column_names == ["words"]


def test_partitions_are_separate_datasets(store):
    store.write(RAW, "docs", [table(("a", 1))], SCHEMA)
    store.write(RAW, "notes", [table(("z", 9))], SCHEMA)
    assert store.read(RAW, "docs").column("doc_id").to_pylist() == ["a"]


def failing_batches() -> Iterator[pa.Table]:
    yield table(("new", 1))
    raise RuntimeError("source went away mid-write")


def test_failed_write_leaves_the_previous_version_readable(store):
    before = store.write(RAW, "docs", [table(("a", 1))], SCHEMA)
    with pytest.raises(RuntimeError, match="mid-write"):
        store.write(RAW, "docs", failing_batches(), SCHEMA)
    assert store.current_version(RAW, "docs") == before.version
    assert store.read(RAW, "docs").to_pylist() == table(("a", 1)).to_pylist()


def test_failed_write_leaves_no_partial_file(store):
    store.write(RAW, "docs", [table(("a", 1))], SCHEMA)
    with pytest.raises(RuntimeError):
        store.write(RAW, "docs", failing_batches(), SCHEMA)
    assert len(parquet_files(store)) == 1


def test_old_versions_are_pruned_to_three(store):
    for number in range(5):
        last = store.write(RAW, "docs", [table((f"doc{number}", number))], SCHEMA)
    assert [p.name for p in parquet_files(store)][-1] == last.version
    assert len(parquet_files(store)) == 3
    assert store.read(RAW, "docs").column("doc_id").to_pylist() == ["doc4"]


def test_batches_read_back_every_row_a_few_at_a_time(store):
    store.write(RAW, "docs", [table(*[(f"d{i}", i) for i in range(10)])], SCHEMA)
    batches = list(store.iter_batches(RAW, "docs", batch_rows=3))
    assert [b.num_rows for b in batches] == [3, 3, 3, 1]
    assert [r["doc_id"] for b in batches for r in b.to_pylist()] == [f"d{i}" for i in range(10)]


def test_batches_of_a_pinned_version_ignore_a_later_write(store):
    first = store.write(RAW, "docs", [table(("a", 1))], SCHEMA)
    store.write(RAW, "docs", [table(("b", 2))], SCHEMA)
    assert [r["doc_id"] for b in store.iter_batches(RAW, "docs", version=first.version) for r in b.to_pylist()] == ["a"]


def test_nothing_written_reads_as_no_batches_and_no_schema(store):
    assert list(store.iter_batches(RAW, "docs")) == [] and store.schema(RAW, "docs") is None


def test_a_dataset_named_by_a_string_is_refused(store):
    with pytest.raises(TypeError, match="Dataset handle"):
        store.read("raw", "docs")


def test_a_partitioned_dataset_without_a_partition_is_refused(store):
    with pytest.raises(ValueError, match="raw is partitioned"):
        store.write(RAW, None, [table(("a", 1))])


def test_a_partition_of_an_unpartitioned_dataset_is_refused(store):
    with pytest.raises(ValueError, match="not partitioned"):
        store.read(Dataset("record"), "docs")


def test_a_write_without_a_schema_uses_the_handles(store):
    store.write(RAW, "docs", [table(("a", 1))])
    assert store.schema(RAW, "docs") == SCHEMA


def test_a_write_with_no_schema_anywhere_is_refused(store):
    with pytest.raises(ValueError, match="declares no schema"):
        store.write(Dataset("record"), None, [table(("a", 1))])

"""The previous version of a dataset, for reuse: its key columns in memory, whole rows fetched by position.

A stage decides what to reuse from a few key columns (ids and hashes), then pulls
only the reused rows, reading the previous file forward in small batches; rows
are wanted in nearly the order they were written, so one pass usually serves a
whole run. Nothing holds the previous version whole. A stage that stores its
rows in two datasets (the cleaned corpus and the rows it set aside) joins them
into one `PreviousRows`: positions run through the first, then the second.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence

import pyarrow as pa

from llm_platform.datasets import Dataset, DatasetStore
from llm_platform.documents.batching import READ_ROWS


class PreviousRows:
    """Key columns of a previous version, and its rows by position."""

    def __init__(self, keys: pa.Table, batches: Callable[[], Iterator[pa.RecordBatch]]) -> None:
        self._keys = keys
        self._batches = batches
        self._reader: Iterator[pa.RecordBatch] | None = None
        self._batch: pa.RecordBatch | None = None
        self._rows: list[dict] | None = None
        self._start = 0

    @classmethod
    def of_table(cls, table: pa.Table, key_columns: Sequence[str]) -> PreviousRows:
        """A previous version already in memory (tests, small callers)."""
        present = [c for c in key_columns if c in table.column_names]
        return cls(table.select(present), lambda: iter(table.to_batches(max_chunksize=READ_ROWS)))

    @classmethod
    def of_dataset(
        cls, store: DatasetStore, dataset: Dataset, partition: str, key_columns: Sequence[str]
    ) -> PreviousRows | None:
        """The current version of `dataset`/`partition`, pinned, or None if nothing was written yet."""
        version = store.current_version(dataset, partition)
        if version is None:
            return None
        schema = store.schema(dataset, partition, version=version)
        present = [c for c in key_columns if schema is not None and c in schema.names]
        keys = store.read(dataset, partition, columns=present, version=version)
        return cls(keys, lambda: store.iter_batches(dataset, partition, version=version, batch_rows=READ_ROWS))

    @classmethod
    def joined(cls, parts: Sequence[PreviousRows | None]) -> PreviousRows | None:
        """`parts` as one previous version, rows of each in turn; None if none has rows.

        Only key columns every part has are kept: a part lacking one (written before
        it existed) makes that column all None, which reuses nothing keyed on it.
        """
        present = [part for part in parts if part is not None]
        if len(present) < 2:
            return present[0] if present else None
        names = [c for c in present[0]._keys.column_names if all(c in p._keys.column_names for p in present)]
        schema = present[0]._keys.select(names).schema
        keys = pa.concat_tables([part._keys.select(names).cast(schema) for part in present])
        return cls(keys, lambda: itertools.chain.from_iterable(part._batches() for part in present))

    @property
    def num_rows(self) -> int:
        return self._keys.num_rows

    def column(self, name: str) -> list:
        """One key column as a list; all None for a column the previous version lacks."""
        if name not in self._keys.column_names:
            return [None] * self._keys.num_rows
        return self._keys.column(name).to_pylist()

    def rows_at(self, positions: Sequence[int]) -> list[dict]:
        """The rows at `positions`, in that order; reads forward, restarting
        only for a position behind the last one read.
        """
        order = sorted(range(len(positions)), key=positions.__getitem__)
        found: list[dict] = [{}] * len(positions)
        for slot in order:
            found[slot] = self._row(positions[slot])
        return found

    def _row(self, position: int) -> dict:
        if self._batch is None or position < self._start:
            self._restart()
        assert self._batch is not None
        while position >= self._start + self._batch.num_rows:
            self._start += self._batch.num_rows
            self._batch = self._next_batch()
        if self._rows is None:
            self._rows = self._batch.to_pylist()
        return self._rows[position - self._start]

    def _restart(self) -> None:
        self._reader = self._batches()
        self._start = 0
        self._batch = self._next_batch()

    def _next_batch(self) -> pa.RecordBatch:
        assert self._reader is not None
        self._rows = None
        batch = next(self._reader, None)
        if batch is None:
            raise IndexError(f"previous version has {self._keys.num_rows} rows; a reuse asked beyond them")
        return batch

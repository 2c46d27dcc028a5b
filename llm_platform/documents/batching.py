"""Rows in batches bounded by bytes of text, so a document stage holds one batch, never a source.

Every document stage reads its upstream, transforms and writes in these batches;
the budget is a parameter of each stage's logic (tests shrink it) with the
defaults below. A batch closes at whichever limit it reaches first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

# Peak memory is a few hundred MiB per batch above imports (chunking holds
# Python rows, the splitter's sized candidates and the check frames of one
# batch): about 0.4 GiB peak with 4 MB batches, 0.7 GiB with 16 MiB ones, flat
# over the batches of a source. 8 MiB keeps every stage near 0.5 GiB, far under
# the 2 GiB budget, while the splitter still gets thousands of documents per
# call and a source writes few, large Parquet row groups. The assets read
# these at call time, so a test can shrink them.
BATCH_TEXT_BYTES = 8 * 1024 * 1024
BATCH_ROWS = 20_000
# Rows read per Arrow batch from an upstream file: small, because one document may be megabytes.
READ_ROWS = 64


def row_batches(
    rows: Iterable[dict], *, text_bytes: int = BATCH_TEXT_BYTES, max_rows: int = BATCH_ROWS
) -> Iterator[list[dict]]:
    """`rows` in lists closed at `text_bytes` characters of `text` or `max_rows` rows."""
    pending: list[dict] = []
    size = 0
    for row in rows:
        pending.append(row)
        size += len(row.get("text") or "")
        if size >= text_bytes or len(pending) >= max_rows:
            yield pending
            pending, size = [], 0
    if pending:
        yield pending


def rows_of(batches: Iterable[pa.RecordBatch | pa.Table]) -> Iterator[dict]:
    """The rows of `batches` as dicts, one Arrow batch converted at a time."""
    for batch in batches:
        yield from batch.to_pylist()


def observed(
    batches: Iterable[pa.RecordBatch | pa.Table], *observers: Callable[[pa.RecordBatch | pa.Table], None]
) -> Iterator[pa.RecordBatch | pa.Table]:
    """`batches` unchanged, each shown to every observer first (checks
    and counts over all rows, one batch at a time).
    """
    for batch in batches:
        for observe in observers:
            observe(batch)
        yield batch


class RowSpool:
    """Rows put aside while a stage streams, in a Parquet file under `folder`, read back in batches once it is done.

    For a second dataset a stage writes beside its main one (the rows it set
    aside): the store writes one dataset at a time, and memory holds one batch.
    """

    def __init__(self, folder: str, schema: pa.Schema) -> None:
        self.path = f"{folder}/spool.parquet"
        self.schema = schema
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(self.path, schema)

    def add(self, rows: list[dict]) -> None:
        if self._writer is None:
            raise RuntimeError(f"{self.path}: rows added to a spool already read back; add every row before batches()")
        if rows:
            self._writer.write_batch(pa.RecordBatch.from_pylist(rows, schema=self.schema))

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Every row added, in order, `READ_ROWS` at a time; no more rows may be added."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        yield from pq.ParquetFile(self.path).iter_batches(batch_size=READ_ROWS)

"""Versioned Parquet datasets under the storage root.

Each asset partition is a folder of immutable Parquet files plus a small `CURRENT`
pointer naming the one readers use. A write goes to a new file and only then moves
the pointer, so a failed run never leaves a half-written dataset behind and the
previous version stays readable. The file name is the version recorded in
materialization metadata, which is how a score traces back to the exact data.

A version ends in a hash of the file's content: a write whose content equals the
current version's keeps that version (the new file is dropped), so an unchanged
re-run reports the same version, Dagster sees the same data version, and
automation downstream has nothing new to react to.

A dataset is named by its `Dataset` handle, declared once beside its asset (each
domain's `datasets` module), never by a name typed again: the store refuses a plain
string, and a partition on an unpartitioned dataset or none on a partitioned one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from llm_platform.home_layout import DATASETS

_POINTER = "CURRENT"
_KEEP_VERSIONS = 3
_HASH_CHARS = 16


@dataclass(frozen=True)
class Dataset:
    """A dataset's handle: its folder name on disk, its Arrow schema, and whether it is written per partition.

    `schema` is None where the writer decides it (a one-row record, vectors whose width
    depends on the embedding model); a write then passes the schema itself.
    """

    name: str
    schema: pa.Schema | None = None
    partitioned: bool = False


@dataclass(frozen=True)
class DatasetVersion:
    """One written dataset: where it is, its version name, rows and bytes."""

    path: str
    version: str
    rows: int
    bytes: int


class DatasetStore:
    """Reads and writes versioned Parquet datasets below `root` (a folder or fsspec URL)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self._fs, self._root_path = fsspec.core.url_to_fs(self.root)

    def _folder(self, dataset: Dataset, partition: str | None) -> str:
        if not isinstance(dataset, Dataset):
            raise TypeError(
                f"a dataset is named by its Dataset handle, not {dataset!r}: "
                "import the handle declared beside its asset"
            )
        if dataset.partitioned and partition is None:
            raise ValueError(f"dataset {dataset.name} is partitioned: name the partition to read or write")
        if not dataset.partitioned and partition is not None:
            raise ValueError(f"dataset {dataset.name} is not partitioned, but partition {partition!r} was named")
        parts = [self._root_path, DATASETS, dataset.name] + ([partition] if partition else [])
        return "/".join(parts)

    def current_version(self, dataset: Dataset, partition: str | None = None) -> str | None:
        """The version readers see now, or None if nothing was written yet."""
        pointer = f"{self._folder(dataset, partition)}/{_POINTER}"
        if not self._fs.exists(pointer):
            return None
        with self._fs.open(pointer, "r") as handle:
            return handle.read().strip() or None

    def read(
        self,
        dataset: Dataset,
        partition: str | None = None,
        columns: list[str] | None = None,
        *,
        version: str | None = None,
    ) -> pa.Table | None:
        """The current version (or `version`) as an Arrow table, or None if nothing was written yet."""
        version = version or self.current_version(dataset, partition)
        if version is None:
            return None
        with self._fs.open(f"{self._folder(dataset, partition)}/{version}", "rb") as handle:
            return pq.read_table(handle, columns=columns)

    def schema(self, dataset: Dataset, partition: str | None = None, *, version: str | None = None) -> pa.Schema | None:
        """The Arrow schema of the current version (or `version`), read from the file footer only."""
        version = version or self.current_version(dataset, partition)
        if version is None:
            return None
        with self._fs.open(f"{self._folder(dataset, partition)}/{version}", "rb") as handle:
            return pq.read_schema(handle)

    def iter_batches(
        self,
        dataset: Dataset,
        partition: str | None = None,
        columns: list[str] | None = None,
        *,
        version: str | None = None,
        batch_rows: int = 256,
    ) -> Iterator[pa.RecordBatch]:
        """The current version (or `version`) in record batches of at most `batch_rows` rows; nothing if never written.

        Memory stays per batch whatever the file's size, so a stage can read a source
        of any size; pin `version` when several reads must see the same file.
        """
        version = version or self.current_version(dataset, partition)
        if version is None:
            return
        with self._fs.open(f"{self._folder(dataset, partition)}/{version}", "rb") as handle:
            yield from pq.ParquetFile(handle).iter_batches(batch_size=batch_rows, columns=columns)

    def write(
        self,
        dataset: Dataset,
        partition: str | None,
        batches: Iterable[pa.RecordBatch | pa.Table],
        schema: pa.Schema | None = None,
        run_id: str = "local",
    ) -> DatasetVersion:
        """Stream `batches` into a new version (in `schema`, else the handle's), then point readers at it."""
        folder = self._folder(dataset, partition)
        schema = schema or dataset.schema
        if schema is None:
            raise ValueError(f"dataset {dataset.name} declares no schema: pass the schema its rows are written in")
        self._fs.makedirs(folder, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = f"{folder}/{stamp}-{run_id[:8]}.parquet"
        try:
            rows = self._write_file(path, batches, schema)
            digest = self._content_hash(path)
        except BaseException:
            # The pointer never named this file; leaving it would only take a pruning slot.
            if self._fs.exists(path):
                self._fs.rm(path)
            raise
        size = self._fs.size(path)
        current = self.current_version(dataset, partition)
        if current and current.removesuffix(".parquet").endswith(f"-{digest}"):
            self._fs.rm(path)
            return DatasetVersion(path=f"{folder}/{current}", version=current, rows=rows, bytes=size)
        version = f"{stamp}-{digest}.parquet"
        self._fs.mv(path, f"{folder}/{version}")
        self._set_pointer(folder, version)
        self._prune(folder, keep=version)
        return DatasetVersion(path=f"{folder}/{version}", version=version, rows=rows, bytes=size)

    def _content_hash(self, path: str) -> str:
        digest = hashlib.sha256()
        with self._fs.open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        return digest.hexdigest()[:_HASH_CHARS]

    def _write_file(self, path: str, batches: Iterable[pa.RecordBatch | pa.Table], schema: pa.Schema) -> int:
        rows = 0
        with self._fs.open(path, "wb") as handle, pq.ParquetWriter(handle, schema, compression="zstd") as writer:
            for batch in batches:
                table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch], schema=schema)
                if table.num_rows:
                    writer.write_table(table.cast(schema))
                    rows += table.num_rows
        return rows

    def _set_pointer(self, folder: str, version: str) -> None:
        tmp = f"{folder}/{_POINTER}.tmp"
        with self._fs.open(tmp, "w") as handle:
            handle.write(version)
        self._fs.mv(tmp, f"{folder}/{_POINTER}")

    def _prune(self, folder: str, keep: str) -> None:
        versions = sorted(p for p in self._fs.ls(folder, detail=False) if p.endswith(".parquet"))
        for old in versions[:-_KEEP_VERSIONS]:
            if not old.endswith(keep):
                self._fs.rm(old)

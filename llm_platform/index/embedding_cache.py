"""Sentence embeddings keyed by (model id, chunk text hash), so text is embedded once.

The cache is an append-only folder of Parquet parts per model: a lookup reads only
the rows whose hash is asked for (predicate pushdown), and a new model id (or a
numerically different backend of it) is a new folder, i.e. a new key space.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from llm_platform.home_layout import EMBEDDING_CACHE

UNFINISHED_SUFFIX = ".tmp"
# Older than this, an unfinished part cannot belong to a live writer: one part is
# written in well under a minute.
STALE_PART_SECONDS = 15 * 60.0
_LOG = logging.getLogger(__name__)


def model_slug(model_id: str) -> str:
    """A filesystem- and table-name-safe form of a model id."""
    return re.sub(r"[^A-Za-z0-9]+", "_", model_id).strip("_").lower()


class EmbeddingCache:
    """Vectors already computed by one model, keyed by chunk text hash.

    A part becomes visible only when complete (written as `<part>.tmp`, then renamed),
    and readers look only at finished `.parquet` parts, so a writer killed mid-write
    leaves nothing a later run trips over. Writers remove such leftovers once they are
    old enough that no live writer can still own them.
    """

    def __init__(
        self, root: str, model_id: str, *, variant: str = "", stale_after_seconds: float = STALE_PART_SECONDS
    ) -> None:
        self.model_id = model_id
        self._fs, base = fsspec.core.url_to_fs(root.rstrip("/"))
        self._folder = f"{base}/{EMBEDDING_CACHE}/{model_slug(model_id)}{'__' + variant if variant else ''}"
        self._stale_after = stale_after_seconds

    @property
    def folder(self) -> str:
        return self._folder

    def lookup(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vector of each hash that has one."""
        parts = self._finished_parts()
        if not hashes or not parts:
            return {}
        wanted = pads.field("text_hash").isin(list(set(hashes)))
        try:
            table = pads.dataset(parts, filesystem=self._fs, format="parquet").to_table(filter=wanted)
        except (pa.ArrowInvalid, OSError):
            table = self._read_readable(parts, wanted)
        if table.num_rows == 0:
            return {}
        matrix = np.stack(table.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32)
        return dict(zip(table.column("text_hash").to_pylist(), matrix, strict=False))

    def add(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Append newly computed vectors as one Parquet part."""
        if not len(hashes):
            return
        self._fs.makedirs(self._folder, exist_ok=True)
        self.remove_unfinished()
        table = pa.table({"text_hash": list(hashes), "vector": list(vectors.astype(np.float32))})
        path = f"{self._folder}/part-{uuid.uuid4().hex}.parquet"
        tmp = path + UNFINISHED_SUFFIX
        try:
            with self._fs.open(tmp, "wb") as handle:
                pq.write_table(table, handle)
            self._fs.mv(tmp, path)
        except BaseException:
            if self._fs.exists(tmp):
                self._fs.rm(tmp)
            raise

    def remove_unfinished(self) -> list[str]:
        """Delete parts left unfinished by a killed writer; young ones may be a live writer's."""
        removed = []
        for info in self._listing():
            if info["name"].endswith(UNFINISHED_SUFFIX) and self._age_seconds(info) >= self._stale_after:
                self._fs.rm(info["name"])
                removed.append(info["name"])
        return removed

    def _listing(self) -> list[dict]:
        if not self._fs.exists(self._folder):
            return []
        return self._fs.ls(self._folder, detail=True)

    def _finished_parts(self) -> list[str]:
        return sorted(
            info["name"] for info in self._listing() if info["name"].endswith(".parquet") and info.get("size", 1)
        )

    def _read_readable(self, parts: list[str], wanted: pads.Expression) -> pa.Table:
        # A part cut short outside our rename protocol (a full disk, a copy): skip it,
        # its texts are embedded again, which is what a cache miss costs.
        tables = []
        for part in parts:
            try:
                tables.append(pads.dataset(part, filesystem=self._fs, format="parquet").to_table(filter=wanted))
            except (pa.ArrowInvalid, OSError) as exc:
                _LOG.warning(
                    "embedding cache: ignoring unreadable part %s (%s); its texts will be embedded again", part, exc
                )
        return (
            pa.concat_tables(tables)
            if tables
            else pa.table({"text_hash": pa.array([], pa.string()), "vector": pa.array([], pa.list_(pa.float32()))})
        )

    def _age_seconds(self, info: dict) -> float:
        modified = info.get("mtime") or info.get("LastModified") or info.get("created")
        if modified is None:
            return float("inf")
        stamp = modified.timestamp() if hasattr(modified, "timestamp") else float(modified)
        return time.time() - stamp

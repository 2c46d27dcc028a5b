"""Sentence embeddings keyed by (model id, chunk text hash), so text is embedded once.

The cache is an append-only folder of Parquet parts per model: a lookup reads only
the rows whose hash is asked for (predicate pushdown), and a new model id is a new
folder, i.e. a new key space.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from llm_platform.model_paths import resolve_sentence_transformer



def model_slug(model_id: str) -> str:
    """A filesystem- and table-name-safe form of a model id."""
    return re.sub(r"[^A-Za-z0-9]+", "_", model_id).strip("_").lower()


class Embedder:
    """A loaded sentence-transformers model that returns unit-norm float32 vectors."""

    def __init__(self, model_id: str, *, device: str = "cpu", allow_download: bool = False, batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer

        self.model_id = model_id
        self.batch_size = batch_size
        self.model = SentenceTransformer(resolve_sentence_transformer(model_id, allow_download=allow_download), device=device)
        self.dimension = int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension") else self.model.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=show_progress
        )
        return np.asarray(vectors, dtype=np.float32)


class EmbeddingCache:
    """Vectors already computed by one model, keyed by chunk text hash."""

    def __init__(self, root: str, model_id: str) -> None:
        self.model_id = model_id
        self._fs, base = fsspec.core.url_to_fs(root.rstrip("/"))
        self._folder = f"{base}/embedding_cache/{model_slug(model_id)}"

    def lookup(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vector of each hash that has one."""
        if not hashes or not self._fs.exists(self._folder) or not self._fs.ls(self._folder):
            return {}
        dataset = pads.dataset(self._folder, filesystem=self._fs, format="parquet")
        table = dataset.to_table(filter=pads.field("text_hash").isin(list(set(hashes))))
        if table.num_rows == 0:
            return {}
        matrix = np.stack(table.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32)
        return dict(zip(table.column("text_hash").to_pylist(), matrix))

    def add(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Append newly computed vectors as one Parquet part."""
        if not len(hashes):
            return
        self._fs.makedirs(self._folder, exist_ok=True)
        table = pa.table({"text_hash": list(hashes), "vector": list(vectors.astype(np.float32))})
        path = f"{self._folder}/part-{uuid.uuid4().hex}.parquet"
        tmp = path + ".tmp"
        with self._fs.open(tmp, "wb") as handle:
            pq.write_table(table, handle)
        self._fs.mv(tmp, path)


@dataclass(frozen=True)
class EmbeddingRun:
    """Vectors for a list of chunks in order, and how many were computed vs reused."""

    vectors: np.ndarray
    computed: int
    reused: int
    dimension: int


def embed_texts(
    hashes: Sequence[str],
    texts: Sequence[str],
    cache: EmbeddingCache,
    embedder_factory: Callable[[], Embedder],
    *,
    dimension: int | None = None,
    show_progress: bool = False,
) -> EmbeddingRun:
    """Embed only the texts whose hash is not cached; load the model only if needed."""
    cached = cache.lookup(hashes)
    missing: dict[str, str] = {}
    for digest, text in zip(hashes, texts):
        if digest not in cached and digest not in missing:
            missing[digest] = text
    if missing:
        embedder = embedder_factory()
        fresh = embedder.encode(list(missing.values()), show_progress=show_progress)
        cache.add(list(missing), fresh)
        cached.update(zip(missing, fresh))
        dimension = embedder.dimension
    if not hashes:
        return EmbeddingRun(np.zeros((0, dimension or 0), dtype=np.float32), 0, 0, dimension or 0)
    vectors = np.stack([cached[h] for h in hashes]).astype(np.float32)
    return EmbeddingRun(vectors, computed=len(missing), reused=len(hashes) - len(missing), dimension=vectors.shape[1])


def load_embedder(model_id: str, *, device: str = "cpu", allow_download: bool = False, batch_size: int = 64) -> Embedder:
    """The embedder for `model_id`, loaded once per process and shared by every asset."""
    # lru_cache keys on how arguments are spelled: a call that leaves batch_size at
    # its default would otherwise load a second copy of the model.
    return _cached_embedder(model_id, device, allow_download, batch_size)


@lru_cache(maxsize=2)
def _cached_embedder(model_id: str, device: str, allow_download: bool, batch_size: int) -> Embedder:
    return Embedder(model_id, device=device, allow_download=allow_download, batch_size=batch_size)

"""Chunk texts to unit-norm vectors, on the backend the config picks, each text once.

Backends: `torch` (sentence-transformers; fp32 on CPU, fp16 on a GPU) and `onnx`
(ONNX Runtime with int8 dynamic quantisation, exported offline from the same model;
see `onnx_model`). Vectors are cached by (model, numeric variant, text hash), so a
backend whose numbers differ is a separate key space.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

import numpy as np

from llm_platform.index.embedding_cache import EmbeddingCache, model_slug
from llm_platform.index.embedding_runtime import BACKENDS, VECTOR_SPACES, Runtime, resolve_runtime, unit_rows
from llm_platform.model_paths import resolve_sentence_transformer

if TYPE_CHECKING:
    from llm_platform.config import EmbeddingConfig

__all__ = [
    "BACKENDS",
    "VECTOR_SPACES",
    "Embedder",
    "EmbeddingCache",
    "EmbeddingRun",
    "Runtime",
    "configured_cache",
    "configured_embedder",
    "embed_texts",
    "embedding_space",
    "load_embedder",
    "model_slug",
    "query_embedder",
    "resolve_runtime",
    "unit_rows",
]

# A killed run keeps what it embedded: vectors reach the cache every this many texts.
FLUSH_EVERY = 2048


class Embedder(Protocol):
    model_id: str
    runtime: Runtime
    dimension: int

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray: ...


class TorchEmbedder:
    """A sentence-transformers model that returns unit-norm float32 vectors."""

    def __init__(self, model_id: str, *, runtime: Runtime, allow_download: bool = False, batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer

        self.model_id, self.runtime, self.batch_size = model_id, runtime, batch_size
        self.model = SentenceTransformer(
            resolve_sentence_transformer(model_id, allow_download=allow_download), device=runtime.device
        )
        if runtime.precision == "fp16":
            self.model.half()
        dimension = (
            self.model.get_embedding_dimension()
            if hasattr(self.model, "get_embedding_dimension")
            else self.model.get_sentence_embedding_dimension()
        )
        if dimension is None:  # int(None) raised this TypeError before; now it says which model
            raise TypeError(f"{model_id} reports no embedding dimension")
        self.dimension = int(dimension)

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return unit_rows(vectors)


@dataclass(frozen=True)
class EmbeddingRun:
    """Vectors for a list of chunks in order, and how many were computed vs reused."""

    vectors: np.ndarray
    computed: int
    reused: int
    dimension: int


def length_order(texts: Sequence[str], token_counts: Sequence[int] | None) -> list[int]:
    """Indices longest first, so each batch holds texts of similar length and pads little."""
    lengths = token_counts if token_counts is not None else [len(text) for text in texts]
    return sorted(range(len(texts)), key=lambda i: -lengths[i])


def embed_texts(
    hashes: Sequence[str],
    texts: Sequence[str],
    cache: EmbeddingCache,
    embedder_factory: Callable[[], Embedder],
    *,
    token_counts: Sequence[int] | None = None,
    dimension: int | None = None,
    show_progress: bool = False,
) -> EmbeddingRun:
    """Embed only the texts whose hash is not cached, longest first; load the model only if needed."""
    cached = cache.lookup(hashes)
    missing: dict[str, int] = {}
    for index, digest in enumerate(hashes):
        if digest not in cached and digest not in missing:
            missing[digest] = index
    if missing:
        embedder = embedder_factory()
        positions = list(missing.values())
        lengths = [token_counts[i] for i in positions] if token_counts is not None else None
        order = [positions[i] for i in length_order([texts[i] for i in positions], lengths)]
        for start in range(0, len(order), FLUSH_EVERY):
            batch = order[start : start + FLUSH_EVERY]
            fresh = embedder.encode([texts[i] for i in batch], show_progress=show_progress)
            batch_hashes = [hashes[i] for i in batch]
            cache.add(batch_hashes, fresh)
            cached.update(zip(batch_hashes, fresh, strict=False))
        dimension = embedder.dimension
    if not hashes:
        return EmbeddingRun(np.zeros((0, dimension or 0), dtype=np.float32), 0, 0, dimension or 0)
    vectors = np.stack([cached[h] for h in hashes]).astype(np.float32)
    return EmbeddingRun(vectors, computed=len(missing), reused=len(hashes) - len(missing), dimension=vectors.shape[1])


def load_embedder(
    model_id: str,
    *,
    device: str = "cpu",
    allow_download: bool = False,
    batch_size: int = 64,
    backend: str = "torch",
    onnx_cache_dir: str | None = None,
) -> Embedder:
    """The embedder for `model_id` on `backend`, loaded once per process and shared by every asset."""
    # lru_cache keys on how arguments are spelled: a call that leaves batch_size at
    # its default would otherwise load a second copy of the model.
    return _cached_embedder(model_id, resolve_runtime(backend, device), allow_download, batch_size, onnx_cache_dir)


@lru_cache(maxsize=2)
def _cached_embedder(
    model_id: str, runtime: Runtime, allow_download: bool, batch_size: int, onnx_cache_dir: str | None
) -> Embedder:
    if runtime.backend == "onnx":
        from llm_platform.index.onnx_model import OnnxEmbedder

        return OnnxEmbedder(
            model_id,
            cache_dir=onnx_cache_dir,
            allow_download=allow_download,
            batch_size=batch_size,
            precision=runtime.precision,
        )
    return TorchEmbedder(model_id, runtime=runtime, allow_download=allow_download, batch_size=batch_size)


def configured_embedder(settings: EmbeddingConfig) -> Embedder:
    """The embedder `settings` describe, for chunks; an ONNX export is per machine and
    model (embedding.onnx_cache_dir, else the user's cache).
    """
    return load_embedder(
        settings.model,
        device=settings.device,
        allow_download=settings.allow_download,
        batch_size=settings.batch_size,
        backend=settings.backend,
        onnx_cache_dir=settings.onnx_cache_dir,
    )


def embedding_space(settings: EmbeddingConfig) -> str:
    """The vector space `settings` embed chunks into (see `Runtime.space`)."""
    return resolve_runtime(settings.backend, settings.device, cuda_available=lambda: False).space


def query_embedder(settings: EmbeddingConfig, space: str | None = None) -> Embedder:
    """The quickest embedder whose vectors live in `space` (default: the configured one), for a few queries.

    fp32's space is served by the exported fp32 ONNX graph: same vectors as torch's, and
    a process that only searches never imports torch. int8's is the int8 graph itself.
    """
    space = embedding_space(settings) if space is None else space
    if space not in VECTOR_SPACES:
        raise ValueError(f"no query embedder for vector space {space!r}; one of {', '.join(map(repr, VECTOR_SPACES))}")
    runtime = Runtime("onnx", "cpu", "int8" if space == "onnx_int8" else "fp32")
    return _cached_embedder(
        settings.model, runtime, settings.allow_download, settings.batch_size, settings.onnx_cache_dir
    )


def configured_cache(settings: EmbeddingConfig, storage_root: str) -> EmbeddingCache:
    """The cache key space of the model and numeric variant `settings` select."""
    return EmbeddingCache(
        storage_root, settings.model, variant=resolve_runtime(settings.backend, settings.device).variant
    )

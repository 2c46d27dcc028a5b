"""Where and in what number format an embedding model runs, and the unit-norm rows every backend returns.

Shared by `embedding` (which picks a backend) and `onnx_model` (one backend), so neither imports the other's module for
them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

BACKENDS = ("torch", "onnx")
VECTOR_SPACES = ("", "onnx_int8")  # see Runtime.space


@dataclass(frozen=True)
class Runtime:
    """Where and in what number format a model runs."""

    backend: str
    device: str
    precision: str

    @property
    def variant(self) -> str:
        """The cache key-space suffix; empty for torch fp32, the key space of caches written before backends existed."""
        return "" if self.precision == "fp32" else f"{self.backend}_{self.precision}"

    @property
    def space(self) -> str:
        """The vector space a table is keyed by: '' where vectors are fp32's (fp32, and fp16 within 1e-3), else e.g.
        'onnx_int8'.

        int8 vectors rank differently (recall@10 about 0.9 against fp32), so their chunks
        go to a table of their own: never a table that mixes spaces, nor queries of one
        space against vectors of the other.
        """
        return "onnx_int8" if self.precision == "int8" else ""


def resolve_runtime(backend: str, device: str, *, cuda_available: Callable[[], bool] | None = None) -> Runtime:
    """The runtime for a configured backend and device ('cpu', 'cuda', 'cuda:N' or 'auto')."""
    if backend not in BACKENDS:
        raise ValueError(f"embedding.backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if device == "auto":
        device = "cpu" if backend == "onnx" else "cuda" if (cuda_available or _cuda_available)() else "cpu"
    on_gpu = device.startswith("cuda")
    if backend == "onnx":
        if on_gpu:
            raise ValueError(
                "embedding.backend 'onnx' runs the int8 model on CPU; with embedding.device "
                f"{device!r} use backend 'torch' (fp16 on the GPU)"
            )
        return Runtime("onnx", "cpu", "int8")
    # Half precision halves memory traffic on a GPU and keeps recall; CPUs have no fast fp16 path.
    return Runtime("torch", device, "fp16" if on_gpu else "fp32")


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows as float32 of unit length; fp16 and int8 models normalise in their own precision."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)

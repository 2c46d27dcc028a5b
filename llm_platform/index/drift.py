"""Drift of a source's new embeddings against what is indexed: centroid and token lengths.

Two cheap, interpretable numbers: the cosine distance between the mean vectors,
and the two-sample Kolmogorov–Smirnov statistic of chunk token counts (scipy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Drift:
    """How far new data moved from the indexed data, and whether either move passes its threshold."""

    centroid_distance: float
    token_length_ks: float
    indexed_mean_tokens: float
    new_mean_tokens: float
    drifted: bool


def centroid_distance(indexed: np.ndarray, new: np.ndarray) -> float:
    """1 - cosine similarity of the two sets' mean vectors (0 when either set is empty)."""
    if not len(indexed) or not len(new):
        return 0.0
    a, b = indexed.mean(axis=0), new.mean(axis=0)
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    # Rounding puts identical sets a hair below zero; a distance is never negative.
    return 0.0 if denominator == 0 else max(0.0, float(1.0 - np.dot(a, b) / denominator))


def measure_drift(
    indexed_vectors: np.ndarray,
    new_vectors: np.ndarray,
    indexed_tokens: np.ndarray,
    new_tokens: np.ndarray,
    *,
    centroid_threshold: float,
    ks_threshold: float,
) -> Drift:
    """Both drift numbers and whether either is past its threshold."""
    distance = centroid_distance(indexed_vectors, new_vectors)
    from scipy.stats import ks_2samp

    ks = float(ks_2samp(indexed_tokens, new_tokens).statistic) if len(indexed_tokens) and len(new_tokens) else 0.0
    return Drift(
        centroid_distance=distance,
        token_length_ks=ks,
        indexed_mean_tokens=float(np.mean(indexed_tokens)) if len(indexed_tokens) else 0.0,
        new_mean_tokens=float(np.mean(new_tokens)) if len(new_tokens) else 0.0,
        drifted=distance > centroid_threshold or ks > ks_threshold,
    )

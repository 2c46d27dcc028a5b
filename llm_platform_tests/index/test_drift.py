"""Drift of new embeddings against the previous ones: the core measure, and the WARN check on embeddings."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import numpy as np
import pytest

from llm_platform.config import DriftSettings
from llm_platform.index.drift import measure_drift
from llm_platform.index.embedding_assets import EMBEDDING_DRIFT

CENTROID_THRESHOLD = DriftSettings().centroid_threshold
KS_THRESHOLD = DriftSettings().token_length_ks_threshold
SOURCE = "alpha"
TOPICS = ("assert", "break", "class")
DOCUMENT_ASSETS = ["raw_documents", "cleaned_corpus", "chunks", "embeddings"]
# Same file names, so the source reads them as changed rather than as mass deletions.
GARDEN_NOTES = {
    "assert": "Tomatoes need full sun, steady water and rich soil to give a good harvest in late summer.",
    "break": "Prune roses in early spring, just above an outward facing bud, and feed them after the first bloom.",
    "class": "Compost made from leaves and kitchen scraps keeps the garden beds loose, dark and full of worms.",
}


def _vectors(seed: int, direction: int, n: int = 40, dimension: int = 16) -> np.ndarray:
    """Unit vectors scattered around axis `direction`."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(scale=0.3, size=(n, dimension))
    vectors[:, direction] += 1.0
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _tokens(seed: int, low: int, high: int, n: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, size=n)


def _measure(indexed_vectors, new_vectors, indexed_tokens, new_tokens):
    return measure_drift(
        indexed_vectors,
        new_vectors,
        indexed_tokens,
        new_tokens,
        centroid_threshold=CENTROID_THRESHOLD,
        ks_threshold=KS_THRESHOLD,
    )


def test_identical_sets_do_not_drift() -> None:
    vectors, tokens = _vectors(0, 0), _tokens(0, 100, 250)
    drift = _measure(vectors, vectors, tokens, tokens)
    assert (drift.centroid_distance, drift.token_length_ks, drift.drifted) == (pytest.approx(0.0, abs=1e-9), 0.0, False)


def test_new_sample_of_the_same_distribution_does_not_drift() -> None:
    drift = _measure(_vectors(0, 0), _vectors(1, 0), _tokens(0, 100, 250), _tokens(1, 100, 250))
    assert not drift.drifted


def test_shifted_vectors_pass_the_centroid_threshold() -> None:
    tokens = _tokens(0, 100, 250)
    drift = _measure(_vectors(0, 0), _vectors(1, 1), tokens, tokens)
    assert drift.centroid_distance > CENTROID_THRESHOLD and drift.drifted


def test_different_token_lengths_pass_the_ks_threshold() -> None:
    vectors = _vectors(0, 0)
    drift = _measure(vectors, vectors, _tokens(0, 200, 250), _tokens(1, 5, 30))
    assert drift.token_length_ks > KS_THRESHOLD and drift.drifted


def test_empty_new_set_measures_no_drift() -> None:
    drift = _measure(_vectors(0, 0), np.empty((0, 16)), _tokens(0, 100, 250), np.array([]))
    assert (drift.centroid_distance, drift.token_length_ks, drift.drifted) == (0.0, 0.0, False)


@dataclass(frozen=True)
class DriftRuns:
    """The drift check of three runs over one source: first, after the text changed, then unchanged."""

    first: dg.AssetCheckEvaluation
    changed: dg.AssetCheckEvaluation
    changed_run_succeeded: bool
    unchanged: dg.AssetCheckEvaluation


def _drift_evaluation(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == EMBEDDING_DRIFT]
    return evaluation


@pytest.fixture(scope="module")
def drift_runs(tiny_platform) -> DriftRuns:
    platform = tiny_platform({SOURCE: TOPICS})
    with dg.DagsterInstance.ephemeral() as instance:
        first = platform.materialize(instance, DOCUMENT_ASSETS, partition=SOURCE)
        for topic, note in GARDEN_NOTES.items():
            (platform.source_folder(SOURCE) / f"{topic}.md").write_text(f"# Garden note\n\n{note}\n", encoding="utf-8")
        changed = platform.materialize(instance, DOCUMENT_ASSETS, partition=SOURCE)
        unchanged = platform.materialize(instance, DOCUMENT_ASSETS, partition=SOURCE)
    return DriftRuns(
        _drift_evaluation(first), _drift_evaluation(changed), changed.success, _drift_evaluation(unchanged)
    )


@pytest.mark.slow
def test_first_materialization_passes_drift_check(drift_runs: DriftRuns) -> None:
    assert drift_runs.first.passed


@pytest.mark.slow
def test_very_different_text_fails_drift_check(drift_runs: DriftRuns) -> None:
    assert not drift_runs.changed.passed


@pytest.mark.slow
def test_drift_check_is_a_warning_that_does_not_fail_the_run(drift_runs: DriftRuns) -> None:
    assert drift_runs.changed.severity == dg.AssetCheckSeverity.WARN and drift_runs.changed_run_succeeded


@pytest.mark.slow
def test_drift_check_reports_centroid_distance_and_token_length_ks(drift_runs: DriftRuns) -> None:
    metadata = {key: value.value for key, value in drift_runs.changed.metadata.items()}
    assert metadata["centroid_distance"] > CENTROID_THRESHOLD and metadata["token_length_ks"] > KS_THRESHOLD


@pytest.mark.slow
def test_unchanged_rerun_passes_drift_check(drift_runs: DriftRuns) -> None:
    assert drift_runs.unchanged.passed

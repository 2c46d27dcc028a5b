"""Promotion gates: absolute bounds and no-regression against production."""

from __future__ import annotations

import pytest

from llm_platform.model.gates import evaluate_gates

MINIMUMS = {"rouge_l": 0.2, "perplexity": 50.0}


def _by_name(results):
    return {r.metric: r for r in results}


def test_first_candidate_is_judged_on_bounds_only():
    results = evaluate_gates({"rouge_l": 0.3, "perplexity": 20.0}, None, minimums=MINIMUMS)
    assert sorted(r.metric for r in results) == ["perplexity<=max", "rouge_l>=min"]
    assert all(r.passed for r in results)


def test_rouge_below_its_minimum_fails_and_says_by_how_much():
    gate = _by_name(evaluate_gates({"rouge_l": 0.15, "perplexity": 20.0}, None, minimums=MINIMUMS))["rouge_l>=min"]
    assert not gate.passed
    assert gate.message == "rouge_l 0.15 is 0.05 below the minimum 0.2"


def test_perplexity_bound_is_a_maximum():
    gates = _by_name(evaluate_gates({"rouge_l": 0.3, "perplexity": 60.0}, None, minimums=MINIMUMS))
    assert not gates["perplexity<=max"].passed
    assert gates["perplexity<=max"].message == "perplexity 60 is 10 above the maximum 50"


def test_regression_beyond_the_allowed_drop_fails_with_the_numbers():
    results = evaluate_gates(
        {"rouge_l": 0.31, "perplexity": 20.0}, {"rouge_l": 0.36, "perplexity": 20.0},
        minimums=MINIMUMS, max_regression=0.02,
    )
    gate = _by_name(results)["rouge_l_no_regression"]
    assert len(results) == 4
    assert (gate.passed, gate.baseline) == (False, 0.36)
    assert gate.message == "rouge_l 0.31 is 0.05 below production 0.36 (allowed drop 0.02)"


def test_a_drop_within_the_allowed_margin_passes():
    gate = _by_name(evaluate_gates({"rouge_l": 0.35}, {"rouge_l": 0.36}, minimums={"rouge_l": 0.2}))
    assert gate["rouge_l_no_regression"].passed


def test_perplexity_regression_is_relative_to_production():
    production = {"rouge_l": 0.3, "perplexity": 11.48}
    within = evaluate_gates({"rouge_l": 0.3, "perplexity": 11.6}, production, minimums=MINIMUMS)
    beyond = evaluate_gates({"rouge_l": 0.3, "perplexity": 12.4}, production, minimums=MINIMUMS)
    assert _by_name(within)["perplexity_no_regression"].passed
    failed = _by_name(beyond)["perplexity_no_regression"]
    assert not failed.passed
    assert failed.message == "perplexity 12.4 is 8.0% above production 11.48 (allowed increase 2.0%)"


def test_a_metric_missing_from_the_candidate_fails():
    gate = _by_name(evaluate_gates({"rouge_l": 0.3}, None, minimums=MINIMUMS))["perplexity<=max"]
    assert not gate.passed and "missing" in gate.message


def test_a_metric_production_never_had_is_not_a_regression():
    gate = _by_name(evaluate_gates({"rouge_l": 0.3}, {}, minimums={"rouge_l": 0.2}))["rouge_l_no_regression"]
    assert gate.passed and gate.baseline is None


def test_negative_max_regression_is_rejected():
    with pytest.raises(ValueError, match="max_regression"):
        evaluate_gates({"rouge_l": 0.3}, None, minimums=MINIMUMS, max_regression=-0.1)

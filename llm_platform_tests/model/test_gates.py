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
        {"rouge_l": 0.31, "perplexity": 20.0},
        {"rouge_l": 0.36, "perplexity": 20.0},
        minimums=MINIMUMS,
        max_regression=0.02,
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


def test_candidate_that_does_not_beat_the_base_by_the_margin_fails():
    base = {"rouge_l": 0.30, "perplexity": 20.0}
    gates = _by_name(
        evaluate_gates(
            {"rouge_l": 0.32, "perplexity": 19.9},
            None,
            minimums={},
            base=base,
            beat_base={"rouge_l": 0.05, "perplexity": 0.02},
        )
    )
    assert not gates["rouge_l_beats_base"].passed and "required improvement 0.05" in gates["rouge_l_beats_base"].message
    assert not gates["perplexity_beats_base"].passed and "0.5% below base 20" in gates["perplexity_beats_base"].message


def test_candidate_equal_to_the_base_fails_even_with_a_zero_margin():
    gate = _by_name(
        evaluate_gates(
            {"perplexity": 20.0}, None, minimums={}, base={"perplexity": 20.0}, beat_base={"perplexity": 0.0}
        )
    )
    assert not gate["perplexity_beats_base"].passed


def test_candidate_that_beats_the_base_by_the_margin_passes():
    gates = _by_name(
        evaluate_gates(
            {"rouge_l": 0.40, "perplexity": 15.0},
            None,
            minimums={},
            base={"rouge_l": 0.30, "perplexity": 20.0},
            beat_base={"rouge_l": 0.05, "perplexity": 0.2},
        )
    )
    assert gates["rouge_l_beats_base"].passed and gates["perplexity_beats_base"].passed


def test_missing_base_scores_fail_the_beat_base_gate():
    gate = _by_name(evaluate_gates({"perplexity": 15.0}, None, minimums={}, base=None, beat_base={"perplexity": 0.0}))
    assert not gate["perplexity_beats_base"].passed and "base model" in gate["perplexity_beats_base"].message


def test_default_bounds_fail_a_broken_adapter():
    from llm_platform.config import GateSettings

    defaults = GateSettings()
    broken = {"perplexity": float("nan"), "rouge_l": 0.0, "bleu": 0.0}
    results = evaluate_gates(
        broken,
        None,
        minimums=defaults.minimums,
        base={"perplexity": 30.0, "rouge_l": 0.1, "bleu": 0.02},
        beat_base=defaults.beat_base,
    )
    assert not any(r.passed for r in results)
    assert {r.metric for r in results} == {"rouge_l>=min", "bleu>=min", "perplexity<=max", "perplexity_beats_base"}


def _demo_gates():
    from llm_platform.config import DEMO_CONFIG, load_config

    return load_config(DEMO_CONFIG).gates


# Scores of a tiny base model in the demo's range: an adapter that learned nothing scores exactly these.
DEMO_BASE = {"perplexity": 23.0, "rouge_l": 0.075, "rag_rouge_l": 0.06, "bleu": 0.001, "rag_bleu": 0.001}


def test_demo_gates_require_beating_the_base_on_perplexity_and_both_answer_metrics():
    assert {"perplexity", "rouge_l", "rag_rouge_l"} <= set(_demo_gates().beat_base)
    assert all(margin > 0 for margin in _demo_gates().beat_base.values())


def test_demo_gates_refuse_a_candidate_that_answers_as_the_base_does():
    gates = _demo_gates()

    results = evaluate_gates(DEMO_BASE, None, minimums=gates.minimums, base=DEMO_BASE, beat_base=gates.beat_base)

    beats = {r.check.metric: r.passed for r in results if r.check.name.endswith("_beats_base")}
    assert beats == {metric: False for metric in gates.beat_base}


def test_demo_gates_refuse_a_candidate_that_gains_less_than_the_margin_on_one_answer_metric():
    gates = _demo_gates()
    better = {
        "perplexity": DEMO_BASE["perplexity"] * 0.5,
        "rouge_l": DEMO_BASE["rouge_l"] + 2 * gates.beat_base["rouge_l"],
    }
    for metric in ("rouge_l", "rag_rouge_l"):
        candidate = {
            **DEMO_BASE,
            **better,
            "rag_rouge_l": DEMO_BASE["rag_rouge_l"] + 2 * gates.beat_base["rag_rouge_l"],
        }
        candidate[metric] = DEMO_BASE[metric] + gates.beat_base[metric] / 2

        results = _by_name(
            evaluate_gates(candidate, None, minimums=gates.minimums, base=DEMO_BASE, beat_base=gates.beat_base)
        )

        assert not results[f"{metric}_beats_base"].passed
        assert [name for name, r in results.items() if not r.passed] == [f"{metric}_beats_base"]

"""The gates' verdict in words: which gates ran, each one's numbers and
outcome, and whether the adapter may be promoted.
"""

from llm_platform.model.gates import GateCheck, GateKind, evaluate_gates, gate_checks
from llm_platform.model.verdict import NOT_APPLIED_WITHOUT_PRODUCTION, Verdict

MINIMUMS = {"rouge_l": 0.05, "perplexity": 100.0}
BEAT_BASE = {"perplexity": 0.0, "rouge_l": 0.01}
CHECKS = gate_checks(MINIMUMS, BEAT_BASE)
BASE = {"rouge_l": 0.10, "perplexity": 40.0}


def _verdict(candidate: dict, production: dict | None = None) -> Verdict:
    gates = evaluate_gates(candidate, production, minimums=MINIMUMS, base=BASE, beat_base=BEAT_BASE)
    return Verdict.of(gates, CHECKS)


def test_a_candidate_passing_every_gate_is_promotable_and_the_verdict_names_each_gate():
    verdict = _verdict({"rouge_l": 0.15, "perplexity": 30.0})

    assert verdict.passed
    assert verdict.summary() == (
        "promotable: all 4 gates applied passed "
        "(rouge_l_bound, perplexity_bound, perplexity_beats_base, rouge_l_beats_base)"
    )


def test_a_candidate_below_the_base_is_not_promotable_and_the_verdict_says_which_gate_and_by_how_much():
    verdict = _verdict({"rouge_l": 0.105, "perplexity": 30.0})

    assert not verdict.passed
    assert verdict.summary().startswith(
        "not promotable: 1 of 4 gates failed (rouge_l_beats_base: rouge_l 0.105 is "
        "0.005 above base 0.1 (required improvement 0.01))"
    )


def test_each_row_gives_the_candidate_value_the_bound_and_what_it_was_compared_with():
    rows = {row["gate"]: row for row in _verdict({"rouge_l": 0.105, "perplexity": 30.0}).rows()}

    assert rows["rouge_l_beats_base"] | {"detail": ""} == {
        "gate": "rouge_l_beats_base",
        "result": "FAIL",
        "candidate": "0.105",
        "bound": "required_gain 0.01",
        "compared_with": "base 0.1",
        "detail": "",
    }
    assert (rows["perplexity_bound"]["bound"], rows["perplexity_bound"]["compared_with"]) == ("maximum 100", "-")


def test_regression_checks_without_a_production_model_are_listed_as_not_applied():
    rows = {row["gate"]: row for row in _verdict({"rouge_l": 0.15, "perplexity": 30.0}).rows()}

    assert (rows["rouge_l_no_regression"]["result"], rows["rouge_l_no_regression"]["detail"]) == (
        "not applied",
        NOT_APPLIED_WITHOUT_PRODUCTION,
    )


def test_regression_rows_compare_with_production_and_give_the_allowed_regression():
    rows = {
        row["gate"]: row
        for row in _verdict({"rouge_l": 0.15, "perplexity": 30.0}, {"rouge_l": 0.2, "perplexity": 30.0}).rows()
    }

    assert rows["rouge_l_no_regression"] | {"detail": ""} == {
        "gate": "rouge_l_no_regression",
        "result": "FAIL",
        "candidate": "0.15",
        "bound": "allowed_regression 0.02",
        "compared_with": "production 0.2",
        "detail": "",
    }


def test_with_no_gate_configured_nothing_is_promotable():
    verdict = Verdict.of([], [])

    assert not verdict.passed and verdict.summary().startswith("not promotable: no gate is configured")


def test_the_beats_base_gate_calls_its_baseline_the_base_model_not_production():
    [gate] = evaluate_gates(
        {"perplexity": 30.0}, None, minimums={}, base={"perplexity": 40.0}, beat_base={"perplexity": 0.0}
    )

    assert gate.check == GateCheck("perplexity", GateKind.BEATS_BASE)
    assert (gate.compared_with, gate.baseline, gate.bound_label) == ("base", 40.0, "required_gain")

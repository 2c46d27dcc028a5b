"""Gate checks as typed values: a metric and a kind, with the name the UI shows derived from them."""

import dagster as dg

from llm_platform.config import GateSettings, PlatformConfig, SourceConfig
from llm_platform.model.assets import configured_gate_checks, model_eval_asset
from llm_platform.model.gates import GateCheck, GateKind, evaluate_gates, gate_checks


def test_each_gated_metric_has_a_bound_and_a_no_regression_check() -> None:
    assert gate_checks(["rouge_l", "perplexity"]) == [
        GateCheck("rouge_l", GateKind.BOUND),
        GateCheck("rouge_l", GateKind.NO_REGRESSION),
        GateCheck("perplexity", GateKind.BOUND),
        GateCheck("perplexity", GateKind.NO_REGRESSION),
    ]


def test_a_gate_check_is_named_for_its_metric_and_kind() -> None:
    assert [check.name for check in gate_checks(["exact_match"])] == ["exact_match_bound", "exact_match_no_regression"]


def test_model_eval_declares_one_blocking_check_per_configured_gate() -> None:
    config = PlatformConfig(
        sources=[SourceConfig(name="alpha", location="/unused")],
        gates=GateSettings(minimums={"rouge_l": 0.1, "perplexity": 50.0}),
    )
    model_eval = model_eval_asset({}, configured_gate_checks(config), dg.AssetSpec("published_index"))
    declared = [(spec.name, spec.blocking) for spec in model_eval.check_specs]
    assert declared == [
        ("rouge_l_bound", True),
        ("rouge_l_no_regression", True),
        ("perplexity_bound", True),
        ("perplexity_no_regression", True),
        ("perplexity_beats_base", True),
    ]


def test_every_gate_result_answers_a_declared_check() -> None:
    """The results model_eval reports are matched to its declared checks by
    their typed GateCheck, never by parsing names.
    """
    checks = gate_checks(["rouge_l", "perplexity"], ["perplexity"])
    results = evaluate_gates(
        {"rouge_l": 0.3, "perplexity": 20.0},
        {"rouge_l": 0.3, "perplexity": 20.0},
        minimums={"rouge_l": 0.1, "perplexity": 50.0},
        base={"perplexity": 30.0},
        beat_base={"perplexity": 0.0},
    )
    assert sorted(r.check.name for r in results) == sorted(c.name for c in checks)


def test_a_stored_gate_keeps_its_label_and_fields() -> None:
    [gate] = evaluate_gates({"perplexity": 60.0}, None, minimums={"perplexity": 50.0})
    assert gate.check == GateCheck("perplexity", GateKind.BOUND)
    record = gate.as_record()
    assert list(record) == ["metric", "passed", "value", "minimum", "baseline", "delta", "message"]
    assert (record["metric"], record["passed"]) == ("perplexity<=max", False)

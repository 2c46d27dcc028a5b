"""Gate checks as typed values: a metric and a kind, with the name the UI shows derived from them."""

from llm_platform.config import GateSettings, PlatformConfig, SourceConfig
from llm_platform.metadata import GateCheck, GateKind, gate_checks
from llm_platform.model.assets import gate_check_names


def test_each_gated_metric_has_a_bound_and_a_no_regression_check() -> None:
    assert gate_checks(["rouge_l", "perplexity"]) == [
        GateCheck("rouge_l", GateKind.BOUND), GateCheck("rouge_l", GateKind.NO_REGRESSION),
        GateCheck("perplexity", GateKind.BOUND), GateCheck("perplexity", GateKind.NO_REGRESSION),
    ]


def test_a_gate_check_is_named_for_its_metric_and_kind() -> None:
    assert [check.name for check in gate_checks(["exact_match"])] == ["exact_match_bound", "exact_match_no_regression"]


def test_typed_gate_checks_name_the_checks_the_model_assets_declare() -> None:
    config = PlatformConfig(sources=[SourceConfig(name="alpha", location="/unused")], gates=GateSettings(minimums={"rouge_l": 0.1, "perplexity": 50.0}))
    assert [check.name for check in gate_checks(config.gates.minimums, config.gates.beat_base)] == gate_check_names(config)

"""The retrieval gates: a version publishes only above the minimum hit
rate and within the allowed drop from the served one.
"""

from llm_platform.index.retrieval_gates import (
    RETRIEVAL_HIT_RATE_MINIMUM,
    RETRIEVAL_NO_REGRESSION,
    RetrievalGateResult,
    retrieval_gates,
)


def _gate(gates: list[RetrievalGateResult], check: str) -> RetrievalGateResult:
    [gate] = [g for g in gates if g.check == check]
    return gate


def test_a_hit_rate_below_the_minimum_fails_its_gate():
    gate = _gate(retrieval_gates(0.4, None, minimum=0.5, margin=0.05), RETRIEVAL_HIT_RATE_MINIMUM)
    assert not gate.passed and gate.description == "hit rate 0.400; minimum 0.500"


def test_a_hit_rate_at_the_minimum_passes_its_gate():
    assert _gate(retrieval_gates(0.5, None, minimum=0.5, margin=0.05), RETRIEVAL_HIT_RATE_MINIMUM).passed


def test_a_drop_beyond_the_margin_from_the_served_version_fails():
    gate = _gate(retrieval_gates(0.6, 0.8, minimum=0.5, margin=0.05), RETRIEVAL_NO_REGRESSION)
    assert not gate.passed and "drop +0.200" in gate.description and "allowed 0.050" in gate.description


def test_a_drop_within_the_margin_passes():
    assert _gate(retrieval_gates(0.77, 0.8, minimum=0.5, margin=0.05), RETRIEVAL_NO_REGRESSION).passed


def test_nothing_served_yet_passes_the_regression_gate_and_says_so():
    gate = _gate(retrieval_gates(0.9, None, minimum=0.5, margin=0.05), RETRIEVAL_NO_REGRESSION)
    assert gate.passed and gate.description == "nothing published yet"

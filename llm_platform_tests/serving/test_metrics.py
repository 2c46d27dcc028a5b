"""The served-version gauges never raise, whichever pointer loads first."""

from __future__ import annotations

from llm_platform.serving.metrics import ServingMetrics


def test_an_adapter_served_before_any_index_reports_the_index_as_minus_one():
    metrics = ServingMetrics()

    metrics.set_versions({"index_version": None, "adapter_version": "3", "prompt_template_version": "abc"})

    text = metrics.render().decode()
    assert "llm_platform_served_index_version -1.0" in text
    assert "llm_platform_served_adapter_version 3.0" in text

"""Every asset check says in the UI what it checks: no "No description provided"."""

import dagster as dg

from llm_platform.config import GateSettings, PlatformConfig, SourceConfig
from llm_platform.definitions import build_definitions


def undescribed_checks(defs: dg.Definitions) -> list[str]:
    """`asset:check` of each check spec in `defs` (on assets or standalone) whose description is empty."""
    specs = [
        spec for asset in defs.assets or [] if isinstance(asset, dg.AssetsDefinition) for spec in asset.check_specs
    ]
    specs += [
        spec
        for checks in defs.asset_checks or []
        if isinstance(checks, dg.AssetChecksDefinition)
        for spec in checks.check_specs
    ]
    return sorted(
        f"{spec.asset_key.to_user_string()}:{spec.name}" for spec in specs if not (spec.description or "").strip()
    )


def test_every_check_of_the_definitions_has_a_description() -> None:
    # every gate kind configured, so each kind of model_eval check is declared
    gates = GateSettings(
        minimums={"rouge_l": 0.1, "perplexity": 50.0}, beat_base={"perplexity": 0.0, "rag_rouge_l": 0.01}
    )
    config = PlatformConfig(sources=[SourceConfig(name="alpha", location="/unused")], gates=gates)
    defs = build_definitions(config, executor="in_process")

    assert undescribed_checks(defs) == []


def test_a_check_without_a_description_is_reported() -> None:
    @dg.asset(
        check_specs=[
            dg.AssetCheckSpec("rows_present", asset="table"),
            dg.AssetCheckSpec("described", asset="table", description="says what"),
        ]
    )
    def table():
        return dg.MaterializeResult()

    assert undescribed_checks(dg.Definitions(assets=[table])) == ["table:rows_present"]

"""Automation conditions and freshness policies, each applied to the assets an asset selection picks.

A policy names its assets by selection (the asset objects, or the graph around them), resolved
against the built assets, so a renamed or removed asset fails loudly instead of silently losing
its policy, and an asset added downstream follows its upstream without anyone listing it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import dagster as dg

from llm_platform.automation.conditions import (
    eval_freshness,
    follow_upstream,
    index_freshness,
    publish_when_checks_pass,
    train_weekly_or_on_new_data,
)
from llm_platform.config import PlatformConfig

T = TypeVar("T")


@dataclass(frozen=True)
class AssetPolicy:
    """An automation condition and/or a freshness policy for the assets `selection` picks."""

    selection: dg.AssetSelection
    condition: dg.AutomationCondition | None = None
    freshness: dg.FreshnessPolicy | None = None


@dataclass(frozen=True)
class PolicyTargets:
    """The assets that do not simply follow their upstream; every other non-root asset does."""

    publications: Sequence[dg.AssetsDefinition]
    training: Sequence[dg.AssetsDefinition]
    manual: Sequence[dg.AssetsDefinition]
    index_freshness: Sequence[dg.AssetsDefinition]
    eval_freshness: Sequence[dg.AssetsDefinition]


def platform_policies(targets: PolicyTargets, config: PlatformConfig) -> list[AssetPolicy]:
    """Roots (sources) run from their sensor; publications wait for checks; training is weekly or on new data."""
    special = dg.AssetSelection.assets(*targets.publications, *targets.training, *targets.manual)
    return [
        AssetPolicy(dg.AssetSelection.all() - dg.AssetSelection.all().roots() - special, condition=follow_upstream()),
        AssetPolicy(dg.AssetSelection.assets(*targets.publications), condition=publish_when_checks_pass()),
        AssetPolicy(dg.AssetSelection.assets(*targets.training), condition=train_weekly_or_on_new_data()),
        AssetPolicy(dg.AssetSelection.assets(*targets.index_freshness), freshness=index_freshness(config.freshness)),
        AssetPolicy(dg.AssetSelection.assets(*targets.eval_freshness), freshness=eval_freshness(config.freshness)),
    ]


def _resolved(
    assets: Sequence[dg.AssetsDefinition], picked: Sequence[tuple[dg.AssetSelection, T | None]], field: str
) -> dict[dg.AssetKey, T]:
    chosen: dict[dg.AssetKey, T] = {}
    for selection, value in picked:
        if value is None:
            continue
        for key in selection.resolve(assets):
            if key in chosen:
                raise ValueError(
                    f"asset {key.to_user_string()} is picked by two policies that both set "
                    f"its {field}; narrow one of the selections"
                )
            chosen[key] = value
    return chosen


def apply_policies(assets: Sequence[dg.AssetsDefinition], policies: Sequence[AssetPolicy]) -> list[dg.AssetsDefinition]:
    """The same assets with the automation condition and freshness policy their policies pick."""
    conditions = _resolved(assets, [(p.selection, p.condition) for p in policies], "automation condition")
    freshness = _resolved(assets, [(p.selection, p.freshness) for p in policies], "freshness policy")

    def _with_policies(spec: dg.AssetSpec) -> dg.AssetSpec:
        return spec.replace_attributes(
            automation_condition=conditions.get(spec.key), freshness_policy=freshness.get(spec.key)
        )

    return list(dg.map_asset_specs(_with_policies, assets))

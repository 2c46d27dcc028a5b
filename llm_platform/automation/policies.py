"""Automation conditions and freshness policies, applied to the built assets in one place."""

from collections.abc import Sequence

import dagster as dg

from llm_platform.automation.conditions import eval_freshness, follow_upstream, index_freshness, publish_when_checks_pass, train_weekly_or_on_new_data
from llm_platform.config import PlatformConfig


def conditions() -> dict[str, dg.AutomationCondition]:
    """The automation condition of each asset key (absent: manual or sensor-driven only)."""
    return {
        "cleaned_corpus": follow_upstream(),
        "chunks": follow_upstream(),
        "embeddings": follow_upstream(),
        "vector_index": follow_upstream(),
        "retrieval_eval": follow_upstream(),
        "published_index": publish_when_checks_pass(),
        "sft_dataset": follow_upstream(),
        "sft_eval_split": follow_upstream(),
        "prompt_template": follow_upstream(),
        "lora_adapter": train_weekly_or_on_new_data(),
        "model_eval": follow_upstream(),
        "production_model": publish_when_checks_pass(),
    }


def freshness(config: PlatformConfig) -> dict[str, dg.FreshnessPolicy]:
    """Freshness policies of the assets people rely on: the index and the eval scores."""
    return {
        "vector_index": index_freshness(config.freshness),
        "published_index": index_freshness(config.freshness),
        "model_eval": eval_freshness(config.freshness),
    }


def apply_policies(assets: Sequence[dg.AssetsDefinition], config: PlatformConfig) -> list[dg.AssetsDefinition]:
    """The same assets with their automation condition and freshness policy set."""
    by_key, fresh = conditions(), freshness(config)

    def _with_policies(spec: dg.AssetSpec) -> dg.AssetSpec:
        key = spec.key.to_user_string()
        return spec.replace_attributes(automation_condition=by_key.get(key), freshness_policy=fresh.get(key))

    return list(dg.map_asset_specs(_with_policies, assets))

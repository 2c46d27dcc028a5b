"""The freshness sensor: posts each freshness breach (see `freshness_breaches`) to the webhook, once per breach."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence

import dagster as dg
from dagster._core.definitions.freshness import TimeWindowFreshnessPolicy

from llm_platform.automation.freshness_breaches import UNPARTITIONED, breach_message, find_breaches, unannounced
from llm_platform.automation.webhook import WEBHOOK_ENV, post_webhook

FRESHNESS_SENSOR = "freshness_alerts"


def _watched(assets: Sequence[dg.AssetsDefinition]) -> list[tuple[dg.AssetKey, float, dg.PartitionsDefinition | None]]:
    """(key, limit in seconds, partitions) of every asset with a time-window freshness policy."""
    watched = []
    for assets_def in assets:
        for spec in assets_def.specs:
            if isinstance(spec.freshness_policy, TimeWindowFreshnessPolicy):
                limit = spec.freshness_policy.fail_window.to_timedelta().total_seconds()
                watched.append((spec.key, limit, spec.partitions_def))
    return watched


def _last_materialized(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str) -> float | None:
    records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None)
    records = instance.fetch_materializations(records_filter, limit=1).records
    return records[0].timestamp if records else None


def build_freshness_sensor(
    assets: Sequence[dg.AssetsDefinition],
    webhook_url: str | None,
    ui_url: str | None,
    clock: Callable[[], float] = time.time,
) -> dg.SensorDefinition:
    """Every minute, ages each partition of each asset with a freshness policy and alerts on new breaches.

    `LLM_PLATFORM_WEBHOOK_URL`, read at each tick, wins over the config's webhook. A
    breach whose post failed is tried again at the next tick.
    """
    watched = _watched(assets)
    limits = {key.to_user_string(): limit for key, limit, _ in watched}

    @dg.sensor(name=FRESHNESS_SENSOR, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
    def freshness_alerts(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        """Posts '<asset> partition <p> is stale: last materialized <age>
        ago, freshness limit <limit>' once per breach.
        """
        announced: dict[str, float] = json.loads(context.cursor) if context.cursor else {}
        last = {}
        for key, _, partitions_def in watched:
            partitions = (
                partitions_def.get_partition_keys(dynamic_partitions_store=context.instance)
                if partitions_def
                else [UNPARTITIONED]
            )
            for partition in partitions:
                last[(key.to_user_string(), partition)] = _last_materialized(context.instance, key, partition)
        url = os.environ.get(WEBHOOK_ENV) or webhook_url
        for breach in unannounced(find_breaches(last, limits, clock()), announced):
            text = breach_message(breach, ui_url)
            context.log.warning(text)
            if url:
                try:
                    post_webhook(url, text)
                except OSError as exc:
                    context.log.warning(
                        f"could not post the freshness breach to the webhook ({exc}); will try again next tick"
                    )
                    continue
            announced[breach.key] = breach.materialized_at
        return dg.SensorResult(cursor=json.dumps(announced, sort_keys=True))

    return freshness_alerts

"""Freshness breaches reach the run-failure webhook: once per breach, naming asset, partition, age and limit."""

from __future__ import annotations

import time

import dagster as dg
import pytest

from llm_platform.automation.freshness_breaches import Breach, breach_message, find_breaches, unannounced
from llm_platform.automation.freshness_sensor import FRESHNESS_SENSOR, build_freshness_sensor
from llm_platform.automation.webhook import WEBHOOK_ENV
from llm_platform_tests.automation.conftest import Webhook

DAY = 24 * 3600.0
HOUR = 3600.0


@pytest.fixture
def platform(tiny_platform):
    return tiny_platform(
        {"alpha": ("assert",), "beta": ("break",)}, {"freshness": {"index_hours": 24, "eval_hours": 48}}
    )


def _materialized(instance: dg.DagsterInstance, asset: str, partition: str | None = None) -> float:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset, partition=partition))
    return instance.get_latest_materialization_event(dg.AssetKey(asset)).timestamp


def _tick(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    now: float,
    cursor: str | None = None,
    *,
    sensor: dg.SensorDefinition | None = None,
) -> str:
    """One evaluation of the freshness sensor at `now`; returns its new cursor."""
    sensor = sensor or build_freshness_sensor(defs.assets, None, "http://dagster.local", clock=lambda: now)
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs) as context:
        return sensor(context).cursor


def test_partition_past_its_limit_is_a_breach_with_age_and_limit() -> None:
    last = {("vector_index", "alpha"): 0.0, ("vector_index", "beta"): 20 * HOUR}
    assert find_breaches(last, {"vector_index": DAY}, now=25 * HOUR) == [
        Breach("vector_index", "alpha", 25 * HOUR, DAY, 0.0)
    ]


def test_never_materialized_partition_is_unknown_not_stale() -> None:
    assert find_breaches({("vector_index", "alpha"): None}, {"vector_index": DAY}, now=100 * DAY) == []


def test_breach_already_announced_for_the_same_materialization_is_not_repeated() -> None:
    breach = Breach("vector_index", "alpha", 25 * HOUR, DAY, 0.0)
    assert unannounced([breach], {breach.key: 0.0}) == []
    assert unannounced([breach], {breach.key: -5.0}) == [breach]


def test_breach_message_names_asset_partition_age_limit_and_link() -> None:
    text = breach_message(Breach("vector_index", "alpha", 25 * HOUR, DAY, 0.0), "http://dagster.local/")
    assert text == (
        "llm_platform: vector_index partition alpha is stale: last materialized 25.0 h ago, "
        "freshness limit 24.0 h http://dagster.local/assets/vector_index"
    )


def test_stale_partition_is_posted_once_with_its_details(
    platform, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url)
    with dg.DagsterInstance.ephemeral() as instance:
        stale_since = _materialized(instance, "vector_index", "alpha")
        _materialized(instance, "vector_index", "beta")
        now = stale_since + 25 * HOUR
        cursor = _tick(platform.defs, instance, now)
        _tick(platform.defs, instance, now + HOUR, cursor)
    texts = [post["text"] for post in webhook.posts]
    assert len([t for t in texts if "vector_index partition alpha" in t]) == 1, texts
    [alpha] = [t for t in texts if "vector_index partition alpha" in t]
    assert "last materialized 25.0 h ago, freshness limit 24.0 h" in alpha


def test_fresh_partitions_post_nothing(platform, webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url)
    with dg.DagsterInstance.ephemeral() as instance:
        materialized_at = _materialized(instance, "vector_index", "alpha")
        _tick(platform.defs, instance, materialized_at + 23 * HOUR)
    assert webhook.posts == []


def test_unpartitioned_asset_breach_has_no_partition(
    platform, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url)
    with dg.DagsterInstance.ephemeral() as instance:
        materialized_at = _materialized(instance, "model_eval")
        _tick(platform.defs, instance, materialized_at + 49 * HOUR)
    assert [post["text"].split(" http")[0] for post in webhook.posts] == [
        "llm_platform: model_eval is stale: last materialized 49.0 h ago, freshness limit 48.0 h"
    ]


def test_rematerialized_then_stale_again_is_a_new_breach(
    platform, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url)
    with dg.DagsterInstance.ephemeral() as instance:
        first = _materialized(instance, "model_eval")
        cursor = _tick(platform.defs, instance, first + 49 * HOUR)
        second = _materialized(instance, "model_eval")
        _tick(platform.defs, instance, second + 49 * HOUR, cursor)
    assert len(webhook.posts) == 2


def test_failed_post_is_retried_at_the_next_tick(platform, webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url)
    with dg.DagsterInstance.ephemeral() as instance:
        now = _materialized(instance, "model_eval") + 49 * HOUR
        webhook.status = 500
        cursor = _tick(platform.defs, instance, now)
        webhook.status = 200
        cursor = _tick(platform.defs, instance, now, cursor)
        _tick(platform.defs, instance, now, cursor)
    assert len(webhook.posts) == 2  # the refused one, then the delivered one; no third


def test_definitions_run_the_freshness_sensor_by_default(platform) -> None:
    sensor = platform.defs.resolve_sensor_def(FRESHNESS_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    with dg.DagsterInstance.ephemeral() as instance:
        _materialized(instance, "vector_index", "alpha")
        # The real clock: just materialized, so nothing is stale.
        assert _tick(platform.defs, instance, time.time(), sensor=sensor) == "{}"

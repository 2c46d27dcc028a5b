"""Freshness policies, automation conditions, sensor defaults and the executor, as built from config."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import pytest
from dagster_k8s import k8s_job_executor

from llm_platform.automation.conditions import (
    AUTOMATION_SENSOR,
    follow_upstream,
    index_freshness,
    publish_when_checks_pass,
)
from llm_platform.automation.failure_sensor import FAILURE_SENSOR
from llm_platform.automation.jobs import INDEX_JOB, PUBLISH_INDEX_JOB, TRAINING_JOB
from llm_platform.automation.policies import AssetPolicy, apply_policies
from llm_platform.automation.sensors import SOURCE_SENSOR
from llm_platform.config import FreshnessSettings, PlatformConfig, SourceConfig
from llm_platform.definitions import EXECUTOR_ENV, build_definitions

INDEX_ASSETS = ("vector_index", "published_index")
BLOCKING_CHECKS_LABEL = "all_deps_blocking_checks_passed"


def _config(**freshness: float) -> PlatformConfig:
    return PlatformConfig(
        sources=[SourceConfig(name="alpha", location="/unused")], freshness=FreshnessSettings(**freshness)
    )


def _fail_window(defs: dg.Definitions, asset: str) -> timedelta:
    policy = defs.resolve_asset_graph().get(dg.AssetKey(asset)).freshness_policy
    assert policy is not None, f"{asset} has no freshness policy"
    return policy.fail_window.to_timedelta()


def _labels(condition: dg.AutomationCondition) -> Iterator[str | None]:
    yield condition.get_label()
    for child in condition.children:
        yield from _labels(child)


def _condition(defs: dg.Definitions, asset: str) -> dg.AutomationCondition:
    condition = defs.resolve_asset_graph().get(dg.AssetKey(asset)).automation_condition
    assert condition is not None, f"{asset} has no automation condition"
    return condition


@pytest.fixture(scope="module")
def default_defs() -> dg.Definitions:
    return build_definitions(_config(), executor="in_process")


@pytest.mark.parametrize("asset", INDEX_ASSETS)
def test_index_freshness_defaults_to_a_day(default_defs: dg.Definitions, asset: str) -> None:
    assert _fail_window(default_defs, asset) == timedelta(hours=24)


def test_eval_freshness_defaults_to_a_week(default_defs: dg.Definitions) -> None:
    assert _fail_window(default_defs, "model_eval") == timedelta(hours=168)


@pytest.mark.parametrize("asset", INDEX_ASSETS)
def test_index_freshness_comes_from_index_hours(asset: str) -> None:
    defs = build_definitions(_config(index_hours=6), executor="in_process")
    assert _fail_window(defs, asset) == timedelta(hours=6)


def test_eval_freshness_comes_from_eval_hours() -> None:
    defs = build_definitions(_config(eval_hours=12), executor="in_process")
    assert _fail_window(defs, "model_eval") == timedelta(hours=12)


def test_intermediate_assets_have_no_freshness_policy(default_defs: dg.Definitions) -> None:
    assert default_defs.resolve_asset_graph().get(dg.AssetKey("chunks")).freshness_policy is None


@pytest.mark.parametrize("asset", ["published_index", "production_model"])
def test_publication_waits_for_upstream_blocking_checks(default_defs: dg.Definitions, asset: str) -> None:
    assert BLOCKING_CHECKS_LABEL in set(_labels(_condition(default_defs, asset)))


def test_document_assets_do_not_wait_for_blocking_checks(default_defs: dg.Definitions) -> None:
    assert BLOCKING_CHECKS_LABEL not in set(_labels(_condition(default_defs, "cleaned_corpus")))


@pytest.mark.parametrize(
    ("sensor", "status"),
    [
        (AUTOMATION_SENSOR, dg.DefaultSensorStatus.STOPPED),
        (SOURCE_SENSOR, dg.DefaultSensorStatus.STOPPED),
        (FAILURE_SENSOR, dg.DefaultSensorStatus.RUNNING),
    ],
)
def test_sensor_default_status(default_defs: dg.Definitions, sensor: str, status: dg.DefaultSensorStatus) -> None:
    assert default_defs.resolve_sensor_def(sensor).default_status == status


def test_executor_env_k8s_selects_the_k8s_job_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EXECUTOR_ENV, "k8s")
    assert build_definitions(_config()).executor.executor_creation_fn is k8s_job_executor.executor_creation_fn


def test_executor_env_in_process_selects_the_in_process_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EXECUTOR_ENV, "in_process")
    assert build_definitions(_config()).executor is dg.in_process_executor


def test_every_job_and_asset_runs_on_the_env_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EXECUTOR_ENV, "k8s")
    defs = build_definitions(_config())
    jobs = [defs.resolve_job_def(name) for name in (INDEX_JOB, PUBLISH_INDEX_JOB, TRAINING_JOB)]
    jobs.append(defs.resolve_implicit_global_asset_job_def())
    assert {job.name: job.executor_def.executor_creation_fn for job in jobs} == {
        job.name: k8s_job_executor.executor_creation_fn for job in jobs
    }


def test_unknown_executor_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EXECUTOR_ENV, "threads")
    with pytest.raises(ValueError, match=EXECUTOR_ENV):
        build_definitions(_config())


def _line_of_three() -> list[dg.AssetsDefinition]:
    @dg.asset
    def source() -> None: ...

    @dg.asset(deps=[source])
    def middle() -> None: ...

    @dg.asset(deps=[middle])
    def published() -> None: ...

    return [source, middle, published]


def _policies_of(
    assets: list[dg.AssetsDefinition],
) -> dict[str, tuple[dg.AutomationCondition | None, dg.FreshnessPolicy | None]]:
    graph = dg.Definitions(assets=assets).resolve_asset_graph()
    return {
        key.to_user_string(): (graph.get(key).automation_condition, graph.get(key).freshness_policy)
        for key in graph.get_all_asset_keys()
    }


def test_a_selection_based_policy_lands_on_the_assets_it_selects() -> None:
    source, middle, published = _line_of_three()
    fresh = index_freshness(FreshnessSettings(index_hours=6))
    policies = [
        AssetPolicy(
            dg.AssetSelection.all() - dg.AssetSelection.all().roots() - dg.AssetSelection.assets(published),
            condition=follow_upstream(),
        ),
        AssetPolicy(dg.AssetSelection.assets(published), condition=publish_when_checks_pass(), freshness=fresh),
    ]
    applied = _policies_of(apply_policies([source, middle, published], policies))
    assert applied == {
        "source": (None, None),
        "middle": (follow_upstream(), None),
        "published": (publish_when_checks_pass(), fresh),
    }


def test_two_policies_setting_one_asset_fail_naming_it() -> None:
    assets = _line_of_three()
    policies = [
        AssetPolicy(dg.AssetSelection.all(), condition=follow_upstream()),
        AssetPolicy(dg.AssetSelection.assets(assets[2]), condition=publish_when_checks_pass()),
    ]
    with pytest.raises(ValueError, match="asset published is picked by two policies"):
        apply_policies(assets, policies)


def test_every_non_root_asset_without_its_own_policy_follows_upstream(default_defs: dg.Definitions) -> None:
    graph = default_defs.resolve_asset_graph()
    followers = {
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if graph.get(key).automation_condition == follow_upstream()
    }
    assert followers == {
        "cleaned_corpus",
        "chunks",
        "embeddings",
        "vector_index",
        "retrieval_eval",
        "sft_dataset",
        "sft_eval_split",
        "prompt_template",
        "model_eval",
    }

"""Under automation, publishing a sharded source waits for every one of its shards."""

from __future__ import annotations

import dagster as dg
import pytest

from llm_platform_tests.tiny_platform import TOPICS

VECTOR_INDEX = dg.AssetKey("vector_index")
RETRIEVAL_EVAL = dg.AssetKey("retrieval_eval")
SHARDED = {"sources": [{"name": "alpha", "location": "alpha", "shards": 3}, {"name": "beta", "location": "beta"}]}
# evaluate_automation_conditions selects with a beta parameter internally.
pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")


@pytest.fixture
def platform(tiny_platform):
    return tiny_platform(TOPICS, SHARDED)


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def _index(instance: dg.DagsterInstance, *partitions: str) -> None:
    for partition in partitions:
        instance.report_runless_asset_event(dg.AssetMaterialization(VECTOR_INDEX, partition=partition))


def _evaluate(platform, instance: dg.DagsterInstance, cursor=None) -> dg.EvaluateAutomationConditionsResult:
    return dg.evaluate_automation_conditions(defs=platform.defs, instance=instance, cursor=cursor)


def test_partitions_are_the_shards_of_a_sharded_source_and_the_name_of_another(platform):
    assert platform.config.partition_keys == ["alpha.0-of-3", "alpha.1-of-3", "alpha.2-of-3", "beta"]


def test_retrieval_eval_waits_while_a_shard_has_never_been_indexed(platform, instance):
    cursor = _evaluate(platform, instance).cursor
    _index(instance, "alpha.0-of-3", "alpha.1-of-3", "beta")
    assert _evaluate(platform, instance, cursor).get_num_requested(RETRIEVAL_EVAL) == 0


def test_retrieval_eval_runs_once_every_shard_is_indexed(platform, instance):
    cursor = _evaluate(platform, instance).cursor
    _index(instance, "alpha.0-of-3", "alpha.1-of-3", "beta")
    cursor = _evaluate(platform, instance, cursor).cursor
    _index(instance, "alpha.2-of-3")
    assert _evaluate(platform, instance, cursor).get_num_requested(RETRIEVAL_EVAL) == 1

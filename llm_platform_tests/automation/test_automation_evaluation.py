"""What the automation sensor would request, evaluated against a real instance and the real conditions."""

from __future__ import annotations

import dagster as dg
import pytest

from llm_platform.index.assets import RETRIEVAL_HIT_RATE_MINIMUM, RETRIEVAL_NO_REGRESSION

RETRIEVAL_EVAL = dg.AssetKey("retrieval_eval")
PUBLISHED_INDEX = dg.AssetKey("published_index")
CLEANED_CORPUS = dg.AssetKey("cleaned_corpus")
# evaluate_automation_conditions selects with a beta parameter internally.
pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")


@pytest.fixture
def platform(tiny_platform):
    return tiny_platform()


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def _evaluate(platform, instance: dg.DagsterInstance, cursor=None) -> dg.EvaluateAutomationConditionsResult:
    return dg.evaluate_automation_conditions(defs=platform.defs, instance=instance, cursor=cursor)


def _report_retrieval_eval(instance: dg.DagsterInstance, *, hit_rate_passed: bool) -> None:
    """A retrieval_eval materialization and its two blocking checks, as a run of it would record them."""
    instance.report_runless_asset_event(dg.AssetMaterialization(RETRIEVAL_EVAL))
    for check, passed in ((RETRIEVAL_HIT_RATE_MINIMUM, hit_rate_passed), (RETRIEVAL_NO_REGRESSION, True)):
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(asset_key=RETRIEVAL_EVAL, check_name=check, passed=passed)
        )


def test_nothing_is_requested_before_any_source_is_read(platform, instance) -> None:
    assert _evaluate(platform, instance).total_requested == 0


def test_new_raw_documents_request_cleaned_corpus_for_that_source_only(platform, instance) -> None:
    cursor = _evaluate(platform, instance).cursor
    assert platform.materialize(instance, ["raw_documents"], partition="alpha").success
    assert _evaluate(platform, instance, cursor).get_requested_partitions(CLEANED_CORPUS) == {"alpha"}


def test_handled_update_is_not_requested_again(platform, instance) -> None:
    cursor = _evaluate(platform, instance).cursor
    assert platform.materialize(instance, ["raw_documents"], partition="alpha").success
    cursor = _evaluate(platform, instance, cursor).cursor
    assert _evaluate(platform, instance, cursor).get_num_requested(CLEANED_CORPUS) == 0


def test_failed_blocking_check_holds_back_published_index(platform, instance) -> None:
    cursor = _evaluate(platform, instance).cursor
    _report_retrieval_eval(instance, hit_rate_passed=False)
    assert _evaluate(platform, instance, cursor).get_num_requested(PUBLISHED_INDEX) == 0


def test_passed_blocking_checks_request_published_index(platform, instance) -> None:
    cursor = _evaluate(platform, instance).cursor
    _report_retrieval_eval(instance, hit_rate_passed=True)
    assert _evaluate(platform, instance, cursor).get_num_requested(PUBLISHED_INDEX) == 1

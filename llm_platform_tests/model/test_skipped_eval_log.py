"""The filter that keeps a skipped training's model_eval from warning of ungated checks, and only that."""

import logging

import pytest

from llm_platform.model.skipped_eval_log import DAGSTER_PLAN_LOGGER, SkippedEvalChecksFilter


def _warning(message: str) -> logging.LogRecord:
    return logging.LogRecord(DAGSTER_PLAN_LOGGER, logging.WARNING, __file__, 1, message, None, None)


def test_drops_the_warning_for_model_eval_checks():
    record = _warning(
        "Blocking asset check 'model_eval:rouge_l_bound' emitted no result in step 'model_eval'; "
        "downstream step 'production_model' will proceed without gating on it."
    )
    assert not SkippedEvalChecksFilter().filter(record)


@pytest.mark.parametrize(
    "message",
    [
        "Blocking asset check 'sft_dataset:no_pii' emitted no result in step 'sft_pairs'; downstream step 'x'",
        "Blocking asset check 'vector_index:row_count' emitted no result in step 'vector_index'; downstream 'x'",
        "Some other warning about model_eval:rouge_l_bound",
    ],
)
def test_keeps_every_other_warning(message):
    assert SkippedEvalChecksFilter().filter(_warning(message))

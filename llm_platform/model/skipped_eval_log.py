"""Keeps a deliberately skipped training from reading, in the run's log, like a check that emitted nothing.

When lora_adapter skips training it yields no output, so Dagster skips model_eval and
production_model; its execution plan then logs, for each of model_eval's blocking checks,
"Blocking asset check ... emitted no result ... will proceed without gating on it". Dagster
has no skipped state a check can report, so the warning is filtered here instead.
"""

import logging
import re

from llm_platform.model.datasets import MODEL_EVAL_DATA

# Dagster's plan logs the warning per blocking check of a finished or skipped step that did not emit it.
DAGSTER_PLAN_LOGGER = "dagster._core.execution.plan.active"
_UNGATED_WARNING = re.compile(r"Blocking asset check '(?P<asset>[^:']+):[^']*' emitted no result in step")


class SkippedEvalChecksFilter(logging.Filter):
    """Drops that warning for model_eval's checks only; warnings about any other asset's checks pass.

    model_eval returns a result for every declared check whenever it runs (Dagster fails the
    step otherwise), so for its checks the warning only comes when the step was skipped, and
    production_model is then skipped too, on model_eval's missing output: nothing goes ungated.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        match = _UNGATED_WARNING.match(record.getMessage())
        return match is None or match["asset"] != MODEL_EVAL_DATA.name


def quiet_skipped_eval_warnings() -> None:
    """Adds the filter to Dagster's plan logger, once."""
    plan_logger = logging.getLogger(DAGSTER_PLAN_LOGGER)
    if not any(isinstance(f, SkippedEvalChecksFilter) for f in plan_logger.filters):
        plan_logger.addFilter(SkippedEvalChecksFilter())

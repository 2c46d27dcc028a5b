"""When each asset wants to run under automation, and how fresh it must be.

Document assets follow their upstream eagerly, per source partition. Publication
steps (`published_index`, `production_model`) also wait for every blocking check on
their inputs to pass: a blocking check stops downstream steps in its own run, but
not a later run that automation starts, so the condition has to say it too.
Training runs weekly, or as soon as the SFT data changes; lora_adapter itself skips
(with a note) until enough new pairs have arrived, so frequent data changes cost
nothing.
"""

from datetime import timedelta

import dagster as dg

from llm_platform.config import FreshnessSettings

WEEKLY_TRAINING_CRON = "0 3 * * 1"
AUTOMATION_SENSOR = "automation_sensor"


def follow_upstream() -> dg.AutomationCondition:
    """Run after any upstream partition updates, once every dependency exists."""
    return dg.AutomationCondition.eager()


def publish_when_checks_pass() -> dg.AutomationCondition:
    """Run after upstream updates, and only when all of the upstream blocking checks passed."""
    return dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()


def train_weekly_or_on_new_data() -> dg.AutomationCondition:
    """Weekly, or when the SFT data changed (the asset itself skips if too few pairs are new)."""
    return dg.AutomationCondition.on_cron(WEEKLY_TRAINING_CRON) | dg.AutomationCondition.eager()


def index_freshness(settings: FreshnessSettings) -> dg.FreshnessPolicy:
    """The served index must have been refreshed within `index_hours`."""
    return dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=settings.index_hours), warn_window=timedelta(hours=settings.index_hours / 2)
    )


def eval_freshness(settings: FreshnessSettings) -> dg.FreshnessPolicy:
    """Eval scores must be newer than `eval_hours`."""
    return dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=settings.eval_hours), warn_window=timedelta(hours=settings.eval_hours / 2)
    )


def build_automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates every asset's automation condition; stopped until a person starts it."""
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.STOPPED,
        minimum_interval_seconds=30,
        description="Runs assets whose automation conditions are met. Start it in the UI (Automation) or with "
        "`dagster sensor start automation_sensor -m llm_platform.definitions`.",
    )

"""The run-failure sensor: logs every failed run and posts a short message about it to the webhook when one is set."""

import os

import dagster as dg

from llm_platform.automation.webhook import WEBHOOK_ENV, post_webhook

FAILURE_SENSOR = "run_failure_alerts"
_MAX_ERROR_CHARS = 400


def failure_message(job: str, run_id: str, error: str | None, ui_url: str | None = None) -> str:
    """One paragraph a person can act on: which job, which run, the first part of the error."""
    first = (error or "no error message").strip().splitlines()[0][:_MAX_ERROR_CHARS]
    link = f" {ui_url.rstrip('/')}/runs/{run_id}" if ui_url else ""
    return f"llm_platform: run {run_id[:8]} of {job} failed: {first}{link}"


def build_failure_sensor(webhook_url: str | None, ui_url: str | None) -> dg.SensorDefinition:
    """Runs by default; with no webhook it only logs.
    `LLM_PLATFORM_WEBHOOK_URL`, read at each tick, wins over the config.
    """

    @dg.run_failure_sensor(
        name=FAILURE_SENSOR, default_status=dg.DefaultSensorStatus.RUNNING, monitor_all_code_locations=False
    )
    def run_failure_alerts(context: dg.RunFailureSensorContext) -> None:
        """Posts '<job> run <id> failed: <first line of the error>' to alerts.webhook_url."""
        text = failure_message(
            context.dagster_run.job_name, context.dagster_run.run_id, context.failure_event.message, ui_url
        )
        context.log.error(text)
        url = os.environ.get(WEBHOOK_ENV) or webhook_url
        if url:
            try:
                post_webhook(url, text)
            except OSError as exc:
                context.log.warning(
                    f"could not post the failure to the webhook ({exc}); the failure itself is logged above"
                )

    return run_failure_alerts

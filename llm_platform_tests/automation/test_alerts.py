"""Run-failure alerts: the message, the webhook post, and the sensor around a real failed run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import pytest

from llm_platform.automation.failure_sensor import FAILURE_SENSOR, build_failure_sensor, failure_message
from llm_platform.automation.jobs import INDEX_JOB
from llm_platform.automation.webhook import WEBHOOK_ENV, post_webhook
from llm_platform_tests.automation.conftest import Webhook

RUN_ID = "0123456789abcdef-run"


@dataclass(frozen=True)
class FailedRun:
    defs: dg.Definitions
    instance: dg.DagsterInstance
    result: dg.ExecuteInProcessResult


@pytest.fixture(scope="module")
def failed_run(tiny_platform) -> Iterator[FailedRun]:
    """An index_job run of cleaned_corpus for a source whose raw_documents were never read: it fails at once."""
    platform = tiny_platform({"alpha": ("assert",)})
    with dg.DagsterInstance.ephemeral() as instance:
        result = platform.defs.resolve_job_def(INDEX_JOB).execute_in_process(
            instance=instance,
            partition_key="alpha",
            asset_selection=[dg.AssetKey("cleaned_corpus")],
            raise_on_error=False,
        )
        assert not result.success
        yield FailedRun(platform.defs, instance, result)


def _evaluate_failure_sensor(sensor: dg.SensorDefinition, run: FailedRun) -> None:
    context = dg.build_run_status_sensor_context(
        sensor_name=FAILURE_SENSOR,
        dagster_instance=run.instance,
        dagster_run=run.result.dagster_run,
        dagster_event=run.result.get_run_failure_event(),
    )
    sensor(context)


def test_failure_message_names_job_run_and_first_error_line() -> None:
    text = failure_message("index_job", RUN_ID, "disk full\nTraceback ...")
    assert text == "llm_platform: run 01234567 of index_job failed: disk full"


def test_failure_message_links_the_run_in_the_ui() -> None:
    assert failure_message("index_job", RUN_ID, "boom", "http://dagster.local/").endswith(
        f" http://dagster.local/runs/{RUN_ID}"
    )


def test_failure_message_without_error_says_so() -> None:
    assert failure_message("index_job", RUN_ID, None).endswith("failed: no error message")


def test_failure_message_truncates_long_errors() -> None:
    assert len(failure_message("index_job", RUN_ID, "x" * 5000)) < 500


def test_post_webhook_sends_text_as_json(webhook: Webhook) -> None:
    assert post_webhook(webhook.url, "hello") == 200
    assert (webhook.posts, webhook.content_types) == ([{"text": "hello"}], ["application/json"])


def test_post_webhook_raises_oserror_on_http_error(webhook: Webhook) -> None:
    webhook.status = 500
    with pytest.raises(OSError):
        post_webhook(webhook.url, "hello")


def test_post_webhook_raises_oserror_when_unreachable(closed_port_url: str) -> None:
    with pytest.raises(OSError):
        post_webhook(closed_port_url, "hello", timeout=5)


def test_failure_sensor_posts_job_and_run_id(failed_run, webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url)
    _evaluate_failure_sensor(build_failure_sensor(None, None), failed_run)
    [post] = webhook.posts
    assert INDEX_JOB in post["text"] and failed_run.result.run_id[:8] in post["text"]


def test_failure_sensor_of_the_definitions_posts_to_the_webhook(
    failed_run, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url)
    _evaluate_failure_sensor(failed_run.defs.resolve_sensor_def(FAILURE_SENSOR), failed_run)
    assert len(webhook.posts) == 1


def test_webhook_env_wins_over_configured_url(
    failed_run, webhook: Webhook, closed_port_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url)
    _evaluate_failure_sensor(build_failure_sensor(closed_port_url, None), failed_run)
    assert len(webhook.posts) == 1


# The sensor logs through Dagster's own console handler, not the root logger, so the
# tests read what reached stderr rather than caplog.
def test_failure_sensor_without_webhook_only_logs(
    failed_run, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    _evaluate_failure_sensor(build_failure_sensor(None, None), failed_run)
    assert f"ERROR - llm_platform: run {failed_run.result.run_id[:8]} of {INDEX_JOB} failed" in capfd.readouterr().err


def test_unreachable_webhook_is_logged_not_raised(
    failed_run, closed_port_url: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, closed_port_url)
    _evaluate_failure_sensor(build_failure_sensor(None, None), failed_run)
    assert "WARNING - could not post the failure to the webhook" in capfd.readouterr().err

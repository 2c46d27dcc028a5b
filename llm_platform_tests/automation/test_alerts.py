"""Run-failure alerts: the message, the webhook post, and the sensor around a real failed run."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from llm_platform.automation.alerting import FAILURE_SENSOR, WEBHOOK_ENV, build_failure_sensor
from llm_platform.automation.jobs import INDEX_JOB
from llm_platform.automation.alerts import failure_message, post_webhook

RUN_ID = "0123456789abcdef-run"
MAX_BODY_BYTES = 64_000


@dataclass
class Webhook:
    """A local HTTP endpoint that records JSON bodies and answers with `status`."""

    url: str
    status: int = 200
    posts: list[dict] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)


def _handler(webhook: Webhook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 — http.server's naming
            length = min(int(self.headers.get("Content-Length", 0)), MAX_BODY_BYTES)
            webhook.posts.append(json.loads(self.rfile.read(length)))
            webhook.content_types.append(self.headers.get("Content-Type", ""))
            self.send_response(webhook.status)
            self.end_headers()

        def log_message(self, *args) -> None:
            """Silence the per-request stderr line."""

    return Handler


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hook))
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nothing listens on: the port was free a moment ago and is closed again."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


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
            instance=instance, partition_key="alpha", asset_selection=[dg.AssetKey("cleaned_corpus")], raise_on_error=False
        )
        assert not result.success
        yield FailedRun(platform.defs, instance, result)


def _evaluate_failure_sensor(sensor: dg.SensorDefinition, run: FailedRun) -> None:
    context = dg.build_run_status_sensor_context(
        sensor_name=FAILURE_SENSOR, dagster_instance=run.instance, dagster_run=run.result.dagster_run, dagster_event=run.result.get_run_failure_event()
    )
    sensor(context)


def test_failure_message_names_job_run_and_first_error_line() -> None:
    text = failure_message("index_job", RUN_ID, "disk full\nTraceback ...")
    assert text == "llm_platform: run 01234567 of index_job failed: disk full"


def test_failure_message_links_the_run_in_the_ui() -> None:
    assert failure_message("index_job", RUN_ID, "boom", "http://dagster.local/").endswith(f" http://dagster.local/runs/{RUN_ID}")


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


def test_failure_sensor_of_the_definitions_posts_to_the_webhook(failed_run, webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url)
    _evaluate_failure_sensor(failed_run.defs.resolve_sensor_def(FAILURE_SENSOR), failed_run)
    assert len(webhook.posts) == 1


def test_webhook_env_wins_over_configured_url(failed_run, webhook: Webhook, closed_port_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url)
    _evaluate_failure_sensor(build_failure_sensor(closed_port_url, None), failed_run)
    assert len(webhook.posts) == 1


# The sensor logs through Dagster's own console handler, not the root logger, so the
# tests read what reached stderr rather than caplog.
def test_failure_sensor_without_webhook_only_logs(failed_run, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    _evaluate_failure_sensor(build_failure_sensor(None, None), failed_run)
    assert f"ERROR - llm_platform: run {failed_run.result.run_id[:8]} of {INDEX_JOB} failed" in capfd.readouterr().err


def test_unreachable_webhook_is_logged_not_raised(failed_run, closed_port_url: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, closed_port_url)
    _evaluate_failure_sensor(build_failure_sensor(None, None), failed_run)
    assert "WARNING - could not post the failure to the webhook" in capfd.readouterr().err

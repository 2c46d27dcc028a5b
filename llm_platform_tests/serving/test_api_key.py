"""With an API key configured, /v1 and the API docs need it; health,
readiness and metrics stay open for probes and Prometheus.
"""

from __future__ import annotations

import logging

import httpx
import openai
import pytest

from llm_platform.serving.server import build_service, running
from llm_platform_tests.serving.conftest import platform_of, serving_config


@pytest.fixture(scope="module")
def guarded(promoted, tmp_path_factory):
    platform = platform_of(promoted, tmp_path_factory.mktemp("guarded"))
    config = serving_config(platform)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(config.serving.api_key_env, "s3cret-key")
        service = build_service(config, platform.home)
    # At info level, as `llm-platform serve` runs, so uvicorn writes its access log.
    with running(service, poll_seconds=60, log_level="info") as url:
        yield url, config


def test_requests_without_the_key_are_refused(guarded):
    url, config = guarded
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.get(f"{url}/v1/models", headers=headers)
        assert response.status_code == 401 and config.serving.api_key_env in response.json()["error"]["message"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()


def test_requests_with_the_key_pass(guarded):
    url, _ = guarded
    assert httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer s3cret-key"}).status_code == 200
    assert openai.OpenAI(base_url=f"{url}/v1", api_key="s3cret-key", max_retries=0).models.list().data


def test_probes_and_metrics_need_no_key(guarded):
    url, _ = guarded
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert httpx.get(f"{url}/metrics").status_code == 200


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
def test_api_docs_need_the_key(guarded, path):
    url, _ = guarded

    assert httpx.get(f"{url}{path}").status_code == 401
    assert httpx.get(f"{url}{path}", headers={"Authorization": "Bearer s3cret-key"}).status_code == 200


def test_a_key_sent_in_the_query_string_never_reaches_the_access_log(guarded, monkeypatch):
    url, _ = guarded
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    access = logging.getLogger("uvicorn.access")
    monkeypatch.setattr(access, "handlers", [*access.handlers, handler])

    httpx.get(f"{url}/v1/models?api_key=s3cret-key&key=s3cret-key")

    assert any("GET /v1/models" in line for line in lines), lines
    assert not any("s3cret" in line for line in lines), lines

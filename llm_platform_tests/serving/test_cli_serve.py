"""`llm-platform serve` and the vLLM adapter fetcher as a user runs them: separate processes on the storage root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from llm_platform_tests.processes import stop_process_group
from llm_platform_tests.serving.conftest import QUESTION, free_port, platform_of, serving_config


@pytest.fixture
def user_env(promoted, tmp_path):
    platform = platform_of(promoted, tmp_path)
    config = serving_config(platform)
    return (
        platform,
        config,
        {**os.environ, "LLM_PLATFORM_HOME": platform.home, "LLM_PLATFORM_CONFIG": config.config_path},
    )


def test_serve_command_answers_on_loopback(user_env):
    _, config, env = user_env
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_platform.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert process.poll() is None, f"serve exited: {process.stderr.read().decode()}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve was not ready in time"
            time.sleep(0.5)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            timeout=60,
            json={"model": config.mlflow.registered_model, "messages": [{"role": "user", "content": QUESTION}]},
        )
        assert answer.status_code == 200 and answer.json()["versions"]["adapter_version"] == "1"
    finally:
        stop_process_group(process)


def test_serve_with_an_unreachable_redis_says_what_to_fix(user_env):
    _, _, env = user_env
    env = {**env, "LLM_PLATFORM_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    config_path = env["LLM_PLATFORM_CONFIG"]
    with open(config_path, "a", encoding="utf-8") as handle:
        handle.write("\n")
    text = open(config_path, encoding="utf-8").read().replace("serving:\n", "serving:\n  cache_backend: redis\n", 1)
    open(config_path, "w", encoding="utf-8").write(text)

    done = subprocess.run(
        [sys.executable, "-m", "llm_platform.cli", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 2
    assert "cannot reach the Redis cache" in done.stderr and "Traceback" not in done.stderr


def test_serve_with_tracing_and_an_unknown_exporter_says_what_to_set(promoted, tmp_path):
    platform = platform_of(promoted, tmp_path)
    config = serving_config(platform, serving={"tracing": True})
    env = {
        **os.environ,
        "LLM_PLATFORM_HOME": platform.home,
        "LLM_PLATFORM_CONFIG": config.config_path,
        "OTEL_TRACES_EXPORTER": "jaeger",
    }

    done = subprocess.run(
        [sys.executable, "-m", "llm_platform.cli", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 2
    assert "$OTEL_TRACES_EXPORTER names jaeger" in done.stderr and "Traceback" not in done.stderr


def test_fetch_adapter_writes_what_vllm_serves(user_env, tmp_path):
    _, _, env = user_env
    dest = tmp_path / "models"

    done = subprocess.run(
        [sys.executable, "-m", "llm_platform.serving.fetch_adapter", "--dest", str(dest)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    info = json.loads((dest / "version.json").read_text())
    assert info["version"] == "1" and json.loads(done.stdout.strip().splitlines()[-1]) == info
    assert (dest / "adapter" / "adapter_config.json").is_file() and (dest / "base" / "config.json").is_file()

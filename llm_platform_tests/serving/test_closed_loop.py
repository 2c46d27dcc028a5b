"""The loop closes through the assets: a rating becomes a training pair, the
next adapter, and what the running service answers with.
"""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest

from llm_platform.cli import main
from llm_platform.model.datasets import SFT_DATASET_DATA
from llm_platform.serving.server import build_service, running, wait_ready
from llm_platform_tests.model.topics_platform import materialized
from llm_platform_tests.serving.conftest import platform_of, serving_config

SFT_AND_CANDIDATE = ["sft_dataset", "sft_eval_split", "lora_adapter", "model_eval", "production_model"]
# From the model asset tests: this trains an adapter a few percent better than the base settings; 1.0 diverges.
LONGER = {"training": {"learning_rate": 0.05, "epochs": 4, "min_new_examples": 1}}
DIVERGING = {"training": {"learning_rate": 1.0, "min_new_examples": 1}}
QUESTION = "Which statement runs a block with a context manager?"


class Traffic:
    """Clients asking in a loop until stopped; every response's adapter version and every failure, in order."""

    def __init__(self, url: str, model: str, clients: int = 2) -> None:
        self.versions: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        self._threads = [threading.Thread(target=self._ask, args=(model, n), daemon=True) for n in range(clients)]

    def _ask(self, model: str, n: int) -> None:
        while not self._stop.is_set():
            try:
                answer = self._client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": f"{QUESTION} ({n})"}], max_tokens=4
                )
                self.versions.append(answer.versions["adapter_version"])
            except Exception as exc:  # every failure is what the test is about
                self.failures.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(0.05)

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def approve(config, home: str, proposal_id: str) -> None:
    """What a reviewer runs: `llm-platform feedback approve` on the platform's storage root."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LLM_PLATFORM_HOME", home)
        assert main(["--config", config.config_path, "feedback", "approve", proposal_id]) == 0


def wait_for(condition, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_rating_reaches_the_next_adapter_and_the_running_service_without_a_failed_request(promoted, tmp_path):
    platform = platform_of(promoted, tmp_path)
    config = serving_config(platform, "loop", **LONGER)
    service = build_service(config, platform.home)
    with running(service, poll_seconds=config.serving.poll_seconds) as url:
        wait_ready(service)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        answer = client.chat.completions.create(
            model=config.mlflow.registered_model, messages=[{"role": "user", "content": QUESTION}]
        )
        correction = (
            "The with statement runs its block inside a context manager, calling __enter__ first and __exit__ after."
        )
        posted = httpx.post(
            f"{url}/v1/feedback", json={"answer_id": answer.id, "rating": 1, "corrected_answer": correction}
        )
        assert posted.status_code == 200
        approve(config, platform.home, posted.json()["proposal_id"])

        with Traffic(url, config.mlflow.registered_model) as traffic:
            result = platform.train(config, SFT_AND_CANDIDATE)
            wait_for(lambda: service.state.current.adapter_version == "2", "the service to swap in version 2")
            time.sleep(1)

    from llm_platform.datasets import DatasetStore

    pairs = DatasetStore(platform.home).read(SFT_DATASET_DATA, None).to_pylist()
    assert [(p["instruction"], p["origin"]) for p in pairs if p["response"] == correction] == [(QUESTION, "feedback")]
    assert result.success and "production_model" in materialized(result)
    assert platform.latest("production_model")["version"] == "2"
    assert traffic.failures == []
    assert "1" in traffic.versions and traffic.versions[-1] == "2"
    switched = traffic.versions.index("2")
    assert set(traffic.versions[switched:]) == {"2"}, (
        "a response from the old adapter came after the new one was served"
    )


def test_a_worse_adapter_is_not_promoted_and_the_service_keeps_the_old_one(promoted, tmp_path):
    platform = platform_of(promoted, tmp_path)
    config = serving_config(platform, "worse", **DIVERGING)
    service = build_service(config, platform.home)
    with running(service, poll_seconds=config.serving.poll_seconds) as url:
        wait_ready(service)
        with Traffic(url, config.mlflow.registered_model, clients=1) as traffic:
            result = platform.train(config, ["lora_adapter", "model_eval", "production_model"])
            time.sleep(2)  # several polls

        assert "production_model" not in materialized(result)
        assert service.state.current.adapter_version == "1"
        assert httpx.get(f"{url}/readyz").json()["adapter_version"] == "1"
    assert traffic.failures == [] and set(traffic.versions) == {"1"}

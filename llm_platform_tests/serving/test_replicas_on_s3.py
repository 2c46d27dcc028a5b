"""Three `llm-platform serve` processes sharing one s3:// home, one killed with SIGKILL mid-way: every acknowledged
rating is in the bucket exactly once, nothing there is torn, and the query log holds every replica's answers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import fsspec
import httpx
import pytest

from llm_platform.model.feedback import fold_feedback
from llm_platform.model.sft import jsonl_records
from llm_platform.model.sft_build import feedback_files
from llm_platform.resources.mlflow import TRACKING_URI_ENV
from llm_platform.serving.query_log import read_query_log
from llm_platform_tests.model.topics_platform import Platform
from llm_platform_tests.processes import free_port, stop_process_group
from llm_platform_tests.serving.conftest import QUESTION, serving_config

ANSWERS_PER_REPLICA = 12  # one generation, then cache hits: each a new answer id
KILL_AFTER = 4  # acknowledged ratings of the victim before it is killed
READY_SECONDS = 300


@pytest.fixture
def s3_platform(promoted: Path, bucket, tmp_path):
    """The promoted index copied into the bucket, the home there; the registry stays the promoted local MLflow."""
    home = f"{bucket}/platform"
    fs, root = fsspec.core.url_to_fs(home)
    fs.put(str(promoted / "home" / "lancedb"), f"{root}/lancedb", recursive=True)
    platform = Platform(tmp_path, promoted / "corpus", home, dg.DagsterInstance.ephemeral())
    return platform, serving_config(platform, serving={"feedback_per_minute": 10_000})


def start_replica(config, home: str, promoted: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "LLM_PLATFORM_HOME": home,
        "LLM_PLATFORM_CONFIG": config.config_path,
        TRACKING_URI_ENV: f"sqlite:///{promoted / 'home' / 'mlflow' / 'mlflow.db'}",
    }
    with log.open("wb") as output:  # a file, not a pipe: a full pipe would stall the server
        process = subprocess.Popen(
            [sys.executable, "-m", "llm_platform.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=output,
            start_new_session=True,
        )
    return process, f"http://127.0.0.1:{port}"


def wait_ready(process: subprocess.Popen, url: str, deadline: float, log: Path) -> None:
    while True:
        assert process.poll() is None, f"serve exited on the s3:// home: {log.read_text(errors='replace')[-3000:]}"
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} was not ready in time: {log.read_text(errors='replace')[-3000:]}"
        time.sleep(0.5)


def answer_ids(url: str, model: str) -> list[str]:
    ids = []
    for _ in range(ANSWERS_PER_REPLICA):
        response = httpx.post(
            f"{url}/v1/chat/completions",
            timeout=120,
            json={"model": model, "messages": [{"role": "user", "content": QUESTION}]},
        )
        assert response.status_code == 200, response.text
        ids.append(response.json()["id"])
    return ids


def rate_all(
    url: str, ids: list[str], acknowledged: dict[str, int], lock: threading.Lock, reached: threading.Event | None
) -> None:
    """Rate each answer once; keep the ratings answered 200. A killed replica's requests fail, and that is expected."""
    for n, answer_id in enumerate(ids):
        rating = n % 5 + 1
        try:
            response = httpx.post(f"{url}/v1/feedback", timeout=30, json={"answer_id": answer_id, "rating": rating})
        except httpx.TransportError:
            continue
        if response.status_code == 200:
            with lock:
                acknowledged[answer_id] = rating
            if reached is not None and sum(1 for i in ids if i in acknowledged) >= KILL_AFTER:
                reached.set()


def test_three_replicas_on_one_bucket_keep_every_acknowledged_rating_once_through_a_sigkill(
    promoted, s3_platform, tmp_path
):
    platform, config = s3_platform
    logs = [tmp_path / f"serve-{n}.log" for n in range(3)]
    replicas = [start_replica(config, platform.home, promoted, log) for log in logs]
    try:
        deadline = time.monotonic() + READY_SECONDS
        for (process, url), log in zip(replicas, logs, strict=True):
            wait_ready(process, url, deadline, log)
        issued = {url: answer_ids(url, config.mlflow.registered_model) for _, url in replicas}
        (victim, victim_url), acknowledged, lock, reached = replicas[0], {}, threading.Lock(), threading.Event()
        raters = [
            threading.Thread(
                target=rate_all, args=(url, issued[url], acknowledged, lock, reached if url == victim_url else None)
            )
            for _, url in replicas
        ]
        for rater in raters:
            rater.start()
        assert reached.wait(timeout=120), "the victim never acknowledged enough ratings"
        os.kill(victim.pid, signal.SIGKILL)
        for rater in raters:
            rater.join(timeout=300)
    finally:
        for process, _ in replicas:
            stop_process_group(process)

    files = feedback_files(None, platform.home)
    parsed = [(record, problem) for path, data in files for _, record, problem in jsonl_records(path, data)]
    assert [problem for _, problem in parsed if problem] == []
    written = Counter(record["answer_id"] for record, _ in parsed)
    assert {answer_id: written[answer_id] for answer_id in acknowledged} == dict.fromkeys(acknowledged, 1)
    assert ANSWERS_PER_REPLICA * 2 + KILL_AFTER <= len(acknowledged) < ANSWERS_PER_REPLICA * 3
    folded = {record["answer_id"]: record["rating"] for _, _, record, _ in fold_feedback(files).records}
    assert {answer_id: folded[answer_id] for answer_id in acknowledged} == acknowledged

    logged, problems = read_query_log(platform.home)
    assert problems == []
    assert {r["id"] for r in logged} == {answer_id for ids in issued.values() for answer_id in ids}

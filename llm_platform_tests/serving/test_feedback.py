"""POST /v1/feedback through the real app: durable redacted segments under
the storage root, a per-caller limit, no PII, no keys.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from llm_platform.config import DEMO_CONFIG, load_config
from llm_platform.home_layout import FEEDBACK
from llm_platform.serving.server import build_service, check_exposure
from llm_platform.serving.service import Answer, new_answer_id
from llm_platform_tests.serving.conftest import IDLE, issued

DEMO = DEMO_CONFIG.parent


def demo_config(tmp_path: Path, **serving):
    """The demo's config (its feedback_location is the file inside the package) with `serving` settings changed."""
    raw = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    raw["serving"] = {**raw.get("serving", {}), **serving}
    for source in raw["sources"]:
        source["location"] = str(DEMO / source["location"])
    raw["sft"] = {
        **raw["sft"],
        "curated_location": str(DEMO / raw["sft"]["curated_location"]),
        "feedback_location": str(DEMO / raw["sft"]["feedback_location"]),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return load_config(path)


def served_records(home: Path) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted((home / FEEDBACK).glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


def test_demo_service_writes_feedback_under_the_storage_root_not_into_the_package(tmp_path, home):
    before = tree_digest(DEMO)
    service = build_service(demo_config(tmp_path), str(home), sources=IDLE)

    response = TestClient(service.app).post("/v1/feedback", json={"answer_id": issued(service), "rating": 5})

    assert response.status_code == 200, response.text
    assert tree_digest(DEMO) == before
    assert [r["rating"] for r in served_records(home)] == [5]


def test_a_replica_appends_to_its_own_segment_named_for_host_pid_and_start(tmp_path, home):
    service = build_service(demo_config(tmp_path), str(home), sources=IDLE)
    client = TestClient(service.app)

    for rating in (5, 3):
        client.post("/v1/feedback", json={"answer_id": issued(service), "rating": rating})

    [segment] = (home / FEEDBACK).glob("*.jsonl")
    assert segment.name.startswith(f"{socket.gethostname()}-{os.getpid()}-")
    assert [r["rating"] for r in served_records(home)] == [5, 3]


def test_feedback_past_the_per_minute_limit_gets_429_with_a_message(tmp_path, home):
    service = build_service(demo_config(tmp_path, feedback_per_minute=3), str(home), sources=IDLE)
    client, answer_id = TestClient(service.app), issued(service)

    statuses = [client.post("/v1/feedback", json={"answer_id": answer_id, "rating": 4}).status_code for _ in range(4)]
    refused = client.post("/v1/feedback", json={"answer_id": answer_id, "rating": 4})

    assert statuses == [200, 200, 200, 429]
    assert (
        "serving.feedback_per_minute" in refused.json()["error"]["message"] and refused.headers["retry-after"] == "60"
    )
    assert len(served_records(home)) == 3


def test_personal_data_in_a_rated_question_and_correction_is_redacted(tmp_path, home):
    service = build_service(demo_config(tmp_path), str(home), sources=IDLE)
    answer_id = issued(service, "I am jane.doe@example.com, call me on +1 415 555 0132: how do I open a file?")

    TestClient(service.app).post(
        "/v1/feedback",
        json={"answer_id": answer_id, "rating": 2, "corrected_answer": "Mail bob@example.org, he knows."},
    )

    [record] = served_records(home)
    text = json.dumps(record)
    assert "jane.doe@example.com" not in text and "415 555 0132" not in text and "bob@example.org" not in text
    assert "[REDACTED_EMAIL]" in record["question"] and record["pii_redacted"] >= 3


def test_a_correction_is_recorded_as_a_proposal_with_the_callers_rating_and_key_fingerprint(
    tmp_path, home, monkeypatch
):
    config = demo_config(tmp_path)
    monkeypatch.setenv(config.serving.api_key_env, "s3cret-key")
    service = build_service(config, str(home), sources=IDLE)

    response = TestClient(service.app).post(
        "/v1/feedback",
        headers={"authorization": "Bearer s3cret-key"},
        json={"answer_id": issued(service), "rating": 1, "corrected_answer": "Use pathlib.Path.read_text()."},
    )

    [record] = served_records(home)
    assert response.json()["rating"] == 1 and response.json()["correction"] == "pending review"
    assert record["rating"] == 1 and record["proposal_id"] == response.json()["proposal_id"]
    assert record["caller"].startswith("key:") and "s3cret-key" not in json.dumps(record)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "serving.example.com"])
def test_an_open_address_without_a_key_is_refused(host):
    with pytest.raises(ValueError, match="--insecure-no-auth"):
        check_exposure(host, has_key=False, key_env="LLM_PLATFORM_API_KEY", insecure_no_auth=False)


@pytest.mark.parametrize(
    "host, key, insecure",
    [
        ("127.0.0.1", False, False),
        ("localhost", False, False),
        ("::1", False, False),
        ("0.0.0.0", True, False),
        ("0.0.0.0", False, True),
    ],
)
def test_loopback_a_key_or_an_explicit_flag_may_serve(host, key, insecure):
    check_exposure(host, has_key=key, key_env="LLM_PLATFORM_API_KEY", insecure_no_auth=insecure)


def test_serve_command_refuses_an_open_address_without_a_key(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "LLM_PLATFORM_HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }

    done = subprocess.run(
        [sys.executable, "-m", "llm_platform.cli", "serve", "--host", "0.0.0.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 2
    assert (
        done.stderr.splitlines()[-1].startswith("error: refusing to serve on 0.0.0.0 without an API key")
        and "Traceback" not in done.stderr
    )


def keyed_service(tmp_path, home, monkeypatch):
    config = demo_config(tmp_path)
    monkeypatch.setenv(config.serving.api_keys_env, json.dumps({"hr-key": ["hr"], "plain-key": []}))
    return build_service(config, str(home), sources=IDLE)


def test_a_rating_records_the_group_set_its_answer_was_issued_to(tmp_path, home, monkeypatch):
    service = keyed_service(tmp_path, home, monkeypatch)
    answer = Answer(
        new_answer_id(),
        "What are the salary bands?",
        "Band four pays 80,000.",
        [],
        {"adapter_version": "1"},
        3,
        9,
        cached=False,
        reader_groups=["hr"],
    )
    service.chat.answers.put(answer.id, answer.record())

    response = TestClient(service.app).post(
        "/v1/feedback", headers={"authorization": "Bearer hr-key"}, json={"answer_id": answer.id, "rating": 4}
    )

    assert response.status_code == 200, response.text
    assert [record["reader_groups"] for record in served_records(home)] == [["hr"]]


def test_an_answer_stored_without_a_group_set_counts_as_public_only(tmp_path, home, monkeypatch):
    service = keyed_service(tmp_path, home, monkeypatch)
    answer_id = issued(service)
    record = service.chat.answers.get(answer_id)
    service.chat.answers.put(answer_id, {name: value for name, value in record.items() if name != "reader_groups"})
    client = TestClient(service.app)

    assert (
        client.post(
            "/v1/feedback", headers={"authorization": "Bearer hr-key"}, json={"answer_id": answer_id, "rating": 4}
        ).status_code
        == 404
    )
    assert (
        client.post(
            "/v1/feedback", headers={"authorization": "Bearer plain-key"}, json={"answer_id": answer_id, "rating": 4}
        ).status_code
        == 200
    )

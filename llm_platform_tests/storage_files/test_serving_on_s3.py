"""The service on an object-store home: it starts, and its feedback and
query log land in the bucket where the assets read them.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from llm_platform.model.feedback import fold_feedback
from llm_platform.model.sft_build import feedback_files
from llm_platform.serving.query_log import QueryLog, read_query_log
from llm_platform.serving.server import build_service
from llm_platform_tests.serving.conftest import IDLE, issued
from llm_platform_tests.serving.test_feedback import demo_config


def test_the_service_builds_on_an_s3_home_and_its_ratings_land_in_the_bucket(bucket, tmp_path):
    home = f"{bucket}/platform"
    service = build_service(demo_config(tmp_path), home, sources=IDLE)

    response = TestClient(service.app).post("/v1/feedback", json={"answer_id": issued(service), "rating": 4})

    assert response.status_code == 200, response.text
    assert [record["rating"] for _, _, record, _ in fold_feedback(feedback_files(None, home)).records] == [4]


def test_the_query_log_on_an_s3_home_is_read_back_redacted_from_every_replica(bucket):
    home = f"{bucket}/platform"
    replicas = [QueryLog(home), QueryLog(home)]

    for n, log in enumerate(replicas * 2):
        log.append(
            {
                "id": f"chatcmpl-{n}",
                "question": f"Mail jane{n}@example.com: how do for loops work?",
                "answer": "They iterate.",
            }
        )

    records, problems = read_query_log(home)
    assert problems == [] and sorted(r["id"] for r in records) == [f"chatcmpl-{n}" for n in range(4)]
    assert all("@example.com" not in r["question"] and r["pii_redacted"] == 1 for r in records)

"""The service on loopback, spoken to over HTTP by the `openai` client and by plain httpx."""

from __future__ import annotations

import httpx
import openai
import pytest

from llm_platform.model.feedback import fold_feedback
from llm_platform.model.sft_build import feedback_files
from llm_platform_tests.serving.conftest import QUESTION


def client(live) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)


def ask(live, question: str = QUESTION, **options):
    return client(live).chat.completions.create(
        model=live.config.mlflow.registered_model, messages=[{"role": "user", "content": question}], **options
    )


def metric(live, name: str, **labels) -> float:
    """The value of one sample on /metrics (0 when absent)."""
    wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
    for line in httpx.get(f"{live.url}/metrics").text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_openai_client_gets_an_answer_with_citations_and_versions(live):
    completion = ask(live)

    assert completion.choices[0].message.role == "assistant"
    assert completion.usage.completion_tokens > 0
    assert completion.citations and {"source", "locator", "heading", "chunk_id", "score"} <= set(
        completion.citations[0]
    )
    assert completion.citations[0]["source"] == "topics"
    assert completion.versions == {
        "index_version": live.service.state.current.index_version,
        "adapter_version": "1",
        "prompt_version": live.service.state.current.prompt_version,
    }


def test_streaming_sends_the_answer_in_pieces_then_done(live):
    chunks = list(ask(live, "What does augmented assignment do?", stream=True, max_tokens=12))

    assert chunks[0].citations and chunks[0].versions["adapter_version"] == "1"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({c.id for c in chunks}) == 1
    assert "".join(c.choices[0].delta.content or "" for c in chunks).strip()


def test_same_question_is_answered_from_the_cache_the_second_time(live):
    first = ask(live, "  how do DICTIONARIES work? ")
    second = ask(live, "How do dictionaries   work?")

    assert (first.cached, second.cached) == (False, True)
    assert second.choices[0].message.content == first.choices[0].message.content
    assert second.id != first.id


def test_embeddings_are_openai_compatible(live):
    result = client(live).embeddings.create(model=live.config.embedding.model, input=["for loops", "while loops"])

    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 384


@pytest.mark.parametrize("mode", ["vector", "fts", "hybrid"])
def test_search_returns_chunks_of_the_published_index(live, mode):
    response = httpx.post(
        f"{live.url}/v1/search", json={"query": "context manager __enter__", "mode": mode, "k": 3, "source": "topics"}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["index_version"] == live.service.state.current.index_version
    assert 1 <= len(body["data"]) <= 3 and all(hit["source"] == "topics" for hit in body["data"])


def test_feedback_lands_where_sft_dataset_reads_it_as_a_rating_and_a_proposal(live):
    completion = ask(live, "What is a boolean operation?")
    corrected = "Boolean operations are and, or and not; they short-circuit and return one of their operands."

    response = httpx.post(
        f"{live.url}/v1/feedback", json={"answer_id": completion.id, "rating": 2, "corrected_answer": corrected}
    )

    assert response.status_code == 200, response.text
    folded = fold_feedback(feedback_files(live.config.sft.feedback_location, live.platform.home))
    ratings = [
        (r["question"], r["answer"], r["rating"])
        for _, _, r, _ in folded.records
        if r["question"] == "What is a boolean operation?"
    ]
    assert ratings == [("What is a boolean operation?", completion.choices[0].message.content, 2)]
    assert folded.proposals[response.json()["proposal_id"]].corrected_answer == corrected


def test_metrics_move_as_requests_are_made(live):
    before = metric(live, "llm_platform_requests_total", endpoint="/v1/chat/completions", status="200")
    tokens_before = metric(live, "llm_platform_tokens_total", direction="out")

    ask(live, "What do for loops iterate over?")

    assert metric(live, "llm_platform_requests_total", endpoint="/v1/chat/completions", status="200") == before + 1
    assert metric(live, "llm_platform_tokens_total", direction="out") > tokens_before
    assert metric(live, "llm_platform_served_adapter_version") == 1.0
    assert metric(live, "llm_platform_generation_seconds_count") >= 1
    assert metric(live, "llm_platform_retrieval_seconds_count") >= 1


def test_health_readiness_and_models(live):
    assert httpx.get(f"{live.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{live.url}/readyz")
    assert ready.status_code == 200 and ready.json()["adapter_version"] == "1"
    ids = [m.id for m in client(live).models.list().data]
    assert ids == [live.config.mlflow.registered_model, live.config.embedding.model]


def _post(live, path: str, body=None, **kwargs) -> httpx.Response:
    return httpx.post(f"{live.url}{path}", json=body, **kwargs)


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"model": "m", "messages": []}, 400, "messages"),
        ({"messages": [{"role": "user", "content": "hi there"}]}, 400, "model: Field required"),
        ({"model": "{model}", "messages": [{"role": "user", "content": "   "}]}, 400, "non-empty user message"),
        ({"model": "{model}", "messages": [{"role": "user", "content": "x" * 301}]}, 400, "limit is 300"),
        (
            {"model": "{model}", "messages": [{"role": "user", "content": "why?"}], "colour": "red"},
            400,
            "colour: unknown field",
        ),
        (
            {"model": "{model}", "messages": [{"role": "user", "content": "why?"}], "max_tokens": 999},
            400,
            "serving.max_tokens",
        ),
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "why?"}]}, 404, "not served here"),
    ],
)
def test_bad_chat_requests_get_a_clear_4xx(live, body, status, message):
    if body.get("model") == "{model}":
        body = {**body, "model": live.config.mlflow.registered_model}

    response = _post(live, "/v1/chat/completions", body)

    assert response.status_code == status and message in response.json()["error"]["message"], response.text


def test_oversized_body_is_refused_with_413(live):
    response = _post(
        live, "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]}
    )

    assert response.status_code == 413 and "serving.max_body_bytes" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"answer_id": "chatcmpl-never-issued", "rating": 5}, 404, "no answer with id"),
        ({"answer_id": "x", "rating": 6}, 400, "rating"),
        ({"answer_id": "x", "rating": "5"}, 400, "rating"),
        ({"answer_id": "x", "rating": 4, "comment": "nice"}, 400, "comment: unknown field"),
    ],
)
def test_bad_feedback_gets_a_clear_4xx(live, body, status, message):
    response = _post(live, "/v1/feedback", body)

    assert response.status_code == status and message in response.json()["error"]["message"], response.text


def test_search_refuses_an_unknown_source(live):
    response = _post(live, "/v1/search", {"query": "loops", "source": "nope' OR 1=1 --"})

    assert response.status_code == 400 and "unknown source" in response.json()["error"]["message"]


def test_process_keeps_serving_after_bad_requests(live):
    for body in (b"{not json", b"[]", b'{"model": 3}'):
        assert (
            httpx.post(
                f"{live.url}/v1/chat/completions", content=body, headers={"content-type": "application/json"}
            ).status_code
            == 400
        )
    assert ask(live, "Is the service still answering?").choices[0].message is not None

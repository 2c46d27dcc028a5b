"""Chat as a caller: citations, the prompt's context, cached answers, feedback and
the query log hold only what the caller's groups may read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from llm_platform.index.access import ReaderGroups
from llm_platform.serving import service as service_module
from llm_platform.serving.query_log import read_query_log
from llm_platform.serving.server import build_service, build_sources, running
from llm_platform_tests.serving.conftest import Live, platform_of, serving_config
from llm_platform_tests.serving.restricted import (
    ENG,
    HR,
    HR_WORDS,
    KEYS,
    PUBLIC,
    QUESTION,
    bearer,
    chunk_ids,
    loaded,
    over_restricted,
    restricted_table,
)


@pytest.fixture(scope="module")
def live(promoted, tmp_path_factory) -> Iterator[Live]:
    """The promoted adapter over the restricted index, with the test keys, on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("access_chat")
    platform = platform_of(promoted, folder)
    config = serving_config(platform)
    table = restricted_table(folder, config)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(config.serving.api_keys_env, json.dumps(KEYS))
        service = loaded(
            build_service(config, platform.home, sources=over_restricted(build_sources(config, platform.home), table))
        )
    with running(service, poll_seconds=60) as url:
        yield Live(url, service, platform, config)


@pytest.fixture
def contexts(monkeypatch) -> list[str]:
    """Every context text put into a prompt while the test runs."""
    seen: list[str] = []
    original = service_module.format_prompt

    def recording(template, question, *, contexts, **options):
        seen.extend(contexts)
        return original(template, question, contexts=contexts, **options)

    monkeypatch.setattr(service_module, "format_prompt", recording)
    return seen


def chat(live: Live, key: str, question: str = QUESTION, **options) -> dict:
    body = {
        "model": live.config.mlflow.registered_model,
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 4,
        **options,
    }
    response = httpx.post(f"{live.url}/v1/chat/completions", headers=bearer(key), json=body, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def streamed_header(live: Live, key: str) -> dict:
    """The first event of a streamed answer: it carries the citations."""
    body = {
        "model": live.config.mlflow.registered_model,
        "messages": [{"role": "user", "content": QUESTION}],
        "max_tokens": 4,
        "stream": True,
    }
    with httpx.stream(
        "POST", f"{live.url}/v1/chat/completions", headers=bearer(key), json=body, timeout=120
    ) as response:
        events = [
            json.loads(line.removeprefix("data: ")) for line in response.iter_lines() if line.startswith("data: {")
        ]
    return events[0]


def rate(live: Live, key: str, answer_id: str) -> httpx.Response:
    return httpx.post(
        f"{live.url}/v1/feedback", headers=bearer(key), json={"answer_id": answer_id, "rating": 5}, timeout=30
    )


def assert_no_hr_chunk(answer: dict, contexts: list[str]) -> None:
    assert answer["citations"] and chunk_ids(answer["citations"]) <= ENG | PUBLIC, answer["citations"]
    assert contexts and not [text for text in contexts if any(word in text for word in HR_WORDS)], contexts


def test_an_hr_callers_answer_cites_hr_chunks(live):
    """Without this, the tests below could pass because HR's rows never ranked anyway."""
    assert chunk_ids(chat(live, "hr-key")["citations"]) & HR


def test_an_eng_callers_citations_and_prompt_context_hold_no_hr_chunk(live, contexts):
    assert_no_hr_chunk(chat(live, "eng-key"), contexts)


def test_an_eng_callers_stream_cites_no_hr_chunk(live, contexts):
    assert_no_hr_chunk(streamed_header(live, "eng-key"), contexts)


def test_a_caller_with_no_groups_is_answered_from_public_chunks_only(live, contexts):
    assert chunk_ids(chat(live, "nogroup-key")["citations"]) == PUBLIC


def test_without_the_services_filter_an_eng_caller_would_be_answered_from_hr_chunks(live, contexts, monkeypatch):
    """The guard's own test: remove the filter (the service searches as everyone) and the leak check above fails."""
    original = live.service.chat.search
    monkeypatch.setattr(
        live.service.chat,
        "search",
        lambda snap, query, *, readers, **options: original(snap, query, readers=ReaderGroups.everyone(), **options),
    )

    with pytest.raises(AssertionError):
        assert_no_hr_chunk(chat(live, "eng-key", QUESTION + " (unfiltered)"), contexts)


def test_an_answer_cached_for_hr_is_never_served_to_eng(live, contexts):
    question = QUESTION + " (cached for hr)"
    chat(live, "hr-key", question)
    assert chat(live, "hr-key", question)["cached"], "the cache must work, or this test proves nothing"
    contexts.clear()

    eng = chat(live, "eng-key", question)

    assert not eng["cached"]
    assert_no_hr_chunk(eng, contexts)


def test_feedback_on_another_group_sets_answer_reads_as_an_unknown_id(live):
    hr_answer = chat(live, "hr-key", QUESTION + " (rated)")["id"]

    for other in ("eng-key", "nogroup-key", "both-key"):
        refused = rate(live, other, hr_answer)
        assert refused.status_code == 404 and refused.json()["error"]["message"].startswith(
            f"no answer with id {hr_answer!r}"
        ), refused.text
    assert rate(live, "hr-key", hr_answer).status_code == 200


def test_the_query_log_records_the_callers_group_set_not_its_key(live):
    answer_id = chat(live, "eng-key", QUESTION + " (logged)")["id"]

    records, _ = read_query_log(live.platform.home)
    [logged] = [r for r in records if r["id"] == answer_id]
    assert logged["reader_groups"] == ["eng"]
    assert not [r for r in records if "eng-key" in json.dumps(r) or "hr-key" in json.dumps(r)]

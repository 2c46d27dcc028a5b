"""Cache keys carry every version; the in-process and Redis stores behave alike; the service caches through Redis."""

from __future__ import annotations

import time

import openai
import pytest

from llm_platform.serving.cache import MemoryStore, RedisStore, build_store, response_key
from llm_platform.serving.server import build_service, running, wait_ready
from llm_platform_tests.serving.conftest import QUESTION, platform_of, serving_config

VERSIONS = {"index_version": 4, "adapter_version": "1", "prompt_version": "abc"}
PARAMS = {"max_tokens": 8, "temperature": 0.0}


def test_key_ignores_case_and_spacing_of_the_question():
    assert response_key(VERSIONS, "  What is   a dict? ", PARAMS, []) == response_key(
        VERSIONS, "what is a DICT?", PARAMS, []
    )


@pytest.mark.parametrize("change", [{"index_version": 5}, {"adapter_version": "2"}, {"prompt_version": "abd"}])
def test_key_changes_with_every_version(change):
    assert response_key({**VERSIONS, **change}, "What is a dict?", PARAMS, []) != response_key(
        VERSIONS, "What is a dict?", PARAMS, []
    )


def test_key_changes_with_generation_parameters():
    assert response_key(VERSIONS, "What is a dict?", {**PARAMS, "max_tokens": 9}, []) != response_key(
        VERSIONS, "What is a dict?", PARAMS, []
    )


def test_key_changes_with_the_callers_group_set():
    keys = {
        response_key(VERSIONS, "What is a dict?", PARAMS, groups) for groups in ([], ["hr"], ["eng"], ["eng", "hr"])
    }
    assert len(keys) == 4


def test_key_ignores_the_order_of_the_group_set():
    assert response_key(VERSIONS, "What is a dict?", PARAMS, ["hr", "eng"]) == response_key(
        VERSIONS, "What is a dict?", PARAMS, ["eng", "hr"]
    )


def test_memory_store_evicts_the_least_recently_used_entry():
    store = MemoryStore(max_entries=2, ttl_seconds=60)
    store.put("a", {"n": 1})
    store.put("b", {"n": 2})
    store.get("a")
    store.put("c", {"n": 3})

    assert (store.get("a"), store.get("b"), store.get("c")) == ({"n": 1}, None, {"n": 3})


def test_memory_store_forgets_expired_entries():
    store = MemoryStore(max_entries=10, ttl_seconds=0.05)
    store.put("a", {"n": 1})
    time.sleep(0.1)

    assert store.get("a") is None


def test_redis_store_round_trips_and_expires(redis_url):
    store = RedisStore(redis_url, "test:", ttl_seconds=1)
    store.put("k", {"answer": "yes", "citations": [{"chunk_id": "c1"}]})

    assert store.get("k") == {"answer": "yes", "citations": [{"chunk_id": "c1"}]}
    assert store.get("missing") is None
    time.sleep(2.1)
    assert store.get("k") is None


def test_unreachable_redis_is_a_clear_startup_error():
    with pytest.raises(ValueError, match="cannot reach the Redis cache at redis://127.0.0.1:1/0"):
        build_store("redis", namespace="response", redis_url="redis://127.0.0.1:1/0", max_entries=10, ttl_seconds=10)


def test_two_replicas_share_answers_and_ratings_through_redis(promoted, tmp_path, redis_url, monkeypatch):
    platform = platform_of(promoted, tmp_path)
    config = serving_config(platform, "redis", serving={"cache_backend": "redis"})
    monkeypatch.setenv("LLM_PLATFORM_REDIS_URL", redis_url)
    first, second = build_service(config, platform.home), build_service(config, platform.home)
    with running(first, poll_seconds=60) as url_a, running(second, poll_seconds=60) as url_b:
        wait_ready(first)
        wait_ready(second)
        ask = lambda url: openai.OpenAI(base_url=f"{url}/v1", api_key="-", max_retries=0).chat.completions.create(
            model=config.mlflow.registered_model, messages=[{"role": "user", "content": QUESTION}]
        )

        answered, cached = ask(url_a), ask(url_b)
        import httpx

        rated = httpx.post(f"{url_b}/v1/feedback", json={"answer_id": answered.id, "rating": 5})

    assert (answered.cached, cached.cached) == (False, True)
    assert cached.choices[0].message.content == answered.choices[0].message.content
    assert rated.status_code == 200, rated.text

"""No client can wedge the service: a client that leaves frees its slot, a
failing model fails one request, odd input is a 4xx.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import httpx
import pytest

from llm_platform.serving.server import build_service, running, wait_ready
from llm_platform_tests.serving.conftest import QUESTION, Live, platform_of, serving_config
from llm_platform_tests.serving.test_api import ask


class FullLength:
    """The real model, made to generate all max_new_tokens (no early end of
    text); records how many tokens each call made.
    """

    def __init__(self, model) -> None:
        self.model, self.new_tokens = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def generate(self, **options):
        output = self.model.generate(**options, min_new_tokens=options["max_new_tokens"])
        self.new_tokens.append(int(output.shape[1] - options["input_ids"].shape[1]))
        return output


class Slow(FullLength):
    """FullLength, pausing 20 ms a token, so a whole answer outlasts a client that leaves early on any machine."""

    def generate(self, **options):
        from transformers import LogitsProcessor, LogitsProcessorList

        class Pause(LogitsProcessor):
            def __call__(self, input_ids, scores):
                time.sleep(0.02)
                return scores

        # After the service's own processors (the answer-only decoding penalties).
        return super().generate(
            **{**options, "logits_processor": LogitsProcessorList([*options.get("logits_processor", []), Pause()])}
        )


class Broken:
    """A model whose sampler dies the way a temperature of 1e-300 killed it."""

    def __init__(self, model) -> None:
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)

    def generate(self, **options):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")


class Stuck:
    """A model whose generate blocks (a hung forward pass) until the test
    releases it, ignoring every stopping criterion.
    """

    def __init__(self, model) -> None:
        self.model, self.release = model, threading.Event()

    def __getattr__(self, name):
        return getattr(self.model, name)

    def generate(self, **options):
        self.release.wait(120)
        raise RuntimeError("the hung forward pass was released by the test")


@contextmanager
def serving_with(promoted, folder, **serving) -> Iterator[Live]:
    platform = platform_of(promoted, folder)
    config = serving_config(platform, serving=serving)
    service = build_service(config, platform.home)
    with running(service, poll_seconds=config.serving.poll_seconds) as url:
        wait_ready(service)
        yield Live(url, service, platform, config)


@pytest.fixture(scope="module")
def live(promoted, tmp_path_factory) -> Iterator[Live]:
    with serving_with(
        promoted, tmp_path_factory.mktemp("resilience"), max_tokens=256, request_timeout_seconds=60
    ) as served:
        yield served


@contextmanager
def model_swapped(live: Live, wrap):
    """The served snapshot with its model wrapped by `wrap`; the real one back afterwards."""
    state = live.service.state
    before = state.current
    wrapped = wrap(before.adapter.model)
    state.current = replace(before, adapter=replace(before.adapter, model=wrapped))
    try:
        yield wrapped
    finally:
        state.current = before


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def in_flight(live: Live) -> float:
    # Read in the process: a GET /metrics would count itself.
    return live.service.chat.metrics.registry.get_sample_value("llm_platform_requests_in_flight")


def chat_body(live: Live, question: str = QUESTION, **options) -> dict:
    return {
        "model": live.config.mlflow.registered_model,
        "messages": [{"role": "user", "content": question}],
        **options,
    }


def test_client_leaving_mid_stream_stops_its_generation_and_frees_the_slot(live):
    with model_swapped(live, Slow) as model:
        for _ in range(3):
            with httpx.stream(
                "POST", f"{live.url}/v1/chat/completions", json=chat_body(live, stream=True, max_tokens=256), timeout=60
            ) as response:
                events = response.iter_lines()
                [next(events) for _ in range(3)]  # then the client goes
        wait_for(lambda: len(model.new_tokens) == 3, "the three abandoned generations to end")
        wait_for(lambda: in_flight(live) == 0, "no request in flight")

        assert all(tokens < 256 for tokens in model.new_tokens), (
            f"abandoned generations ran on to max_tokens: {model.new_tokens}"
        )
        assert live.service.state.current.slots.in_use() == 0
        assert (
            ask(live, "Is the service still answering after clients left?", max_tokens=4).choices[0].message.content
            is not None
        )
    assert not [t for t in threading.enumerate() if t.name == "llm-platform-generate"], (
        "a generation thread outlived its request"
    )


def test_client_giving_up_on_a_whole_answer_stops_its_generation(live):
    with model_swapped(live, Slow) as model:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{live.url}/v1/chat/completions",
                json=chat_body(live, "A long answer nobody waits for?", max_tokens=256),
                timeout=1,
            )
        wait_for(lambda: len(model.new_tokens) == 1, "the abandoned generation to end")
        wait_for(lambda: in_flight(live) == 0, "no request in flight")

    assert model.new_tokens[0] < 256, "the generation ran on to max_tokens after its client left"
    assert live.service.state.current.slots.in_use() == 0


def test_generation_failure_fails_only_its_request_with_a_message(live):
    with model_swapped(live, Broken):
        response = httpx.post(
            f"{live.url}/v1/chat/completions", json=chat_body(live, "A question the sampler dies on?"), timeout=60
        )
        streamed = httpx.post(
            f"{live.url}/v1/chat/completions",
            json=chat_body(live, "A streamed question it dies on?", stream=True),
            timeout=60,
        )

    assert (
        response.status_code == 500
        and "generation failed (RuntimeError: probability tensor" in response.json()["error"]["message"]
    )
    events = [
        json.loads(line.removeprefix("data: ")) for line in streamed.text.splitlines() if line.startswith("data: {")
    ]
    assert (
        streamed.status_code == 200
        and "generation failed" in events[-1]["error"]["message"]
        and events[-1]["error"]["code"] == 500
    )
    assert live.service.state.current.slots.in_use() == 0
    assert ask(live, "Does the next question get an answer?", max_tokens=4).choices[0].message.content is not None


def test_each_unhandled_error_is_answered_as_json_and_logged_once(live, monkeypatch):
    lines: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = lines.append  # type: ignore[method-assign]
    for name in ("llm_platform.serving", "uvicorn.error"):
        monkeypatch.setattr(logging.getLogger(name), "handlers", [*logging.getLogger(name).handlers, handler])
    monkeypatch.setattr(live.service.chat, "_embed", lambda texts: 1 / 0)

    response = httpx.post(
        f"{live.url}/v1/embeddings", json={"model": live.config.embedding.model, "input": "for loops"}
    )

    assert response.status_code == 500 and "ZeroDivisionError" in response.json()["error"]["message"]
    assert len([r for r in lines if r.levelno >= logging.ERROR]) == 1, [r.getMessage() for r in lines]


@pytest.mark.parametrize("temperature", [1e-300, 1e-5, 0.009])
@pytest.mark.parametrize("stream", [False, True])
def test_a_temperature_too_small_to_sample_is_refused(live, temperature, stream):
    response = httpx.post(
        f"{live.url}/v1/chat/completions", json=chat_body(live, temperature=temperature, stream=stream), timeout=60
    )

    assert (
        response.status_code == 400
        and "temperature: Value error, must be 0 (greedy) or at least 0.01" in response.json()["error"]["message"]
    )


def test_sampling_with_top_p_answers(live):
    completion = ask(live, "What does top_p change?", temperature=0.7, top_p=0.9, max_tokens=4)

    assert completion.choices[0].message.content is not None


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "why \ud800?"}]}, "messages.0.content"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "why \ud800?"}], "stream": True},
            "messages.0.content",
        ),
        ("/v1/embeddings", {"input": ["fine", "not \udfff fine"]}, "input"),
        ("/v1/search", {"query": "loops \ud800"}, "query"),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_the_field(live, path, body, field):
    model = live.config.embedding.model if path == "/v1/embeddings" else live.config.mlflow.registered_model
    payload = json.dumps(
        {**body, **({"model": model} if path != "/v1/search" else {})}
    )  # json.dumps escapes it as \ud800

    response = httpx.post(
        f"{live.url}{path}", content=payload, headers={"content-type": "application/json"}, timeout=60
    )

    # Pydantic refuses one in a length-checked field itself; the others reach our check. Both name the field.
    assert response.status_code == 400 and response.json()["error"]["message"].startswith(
        f"invalid request: {field}: "
    ), response.text


def test_a_whitespace_only_full_text_query_is_a_400(live):
    response = httpx.post(f"{live.url}/v1/search", json={"query": "   ", "mode": "fts"})

    assert response.status_code == 400 and "query: the query is empty" in response.json()["error"]["message"]


@pytest.fixture(scope="module")
def hung(promoted, tmp_path_factory) -> Iterator[Live]:
    with serving_with(
        promoted, tmp_path_factory.mktemp("hung"), request_timeout_seconds=2, stuck_grace_seconds=1
    ) as served:
        yield served


def test_a_slot_held_past_deadline_and_grace_makes_the_service_not_ready(hung):
    assert httpx.get(f"{hung.url}/readyz").status_code == 200
    with model_swapped(hung, Stuck) as model:
        answer = httpx.post(f"{hung.url}/v1/chat/completions", json=chat_body(hung), timeout=60)
        wait_for(lambda: hung.service.chat.stuck_seconds() > 3, "the slot to be held past deadline plus grace")
        stuck = httpx.get(f"{hung.url}/readyz")
        model.release.set()
        wait_for(
            lambda: hung.service.state.current.slots.in_use() == 0, "the released generation to give its slot back"
        )

    assert answer.status_code == 504 and "serving.request_timeout_seconds" in answer.json()["error"]["message"]
    assert stuck.status_code == 503 and stuck.json()["ready"] is False and "held its slot" in stuck.json()["stuck"]
    assert httpx.get(f"{hung.url}/readyz").status_code == 200

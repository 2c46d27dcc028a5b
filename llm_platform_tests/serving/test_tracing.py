"""A traced service: each chat request is one span whose children are its
cache lookup, retrieval, prompt and generation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from llm_platform.serving.query_log import read_query_log
from llm_platform.serving.server import build_service, running, wait_ready
from llm_platform_tests.serving.conftest import Live, platform_of, serving_config
from llm_platform_tests.serving.test_resilience import Slow, chat_body, model_swapped, wait_for

REQUEST = "POST /v1/chat/completions"
CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"


@dataclass
class Traced(Live):
    """A started traced service and the exporter holding its spans."""

    exporter: InMemorySpanExporter


@pytest.fixture(scope="module")
def traced(promoted, tmp_path_factory) -> Iterator[Traced]:
    """The service with serving.tracing on, its spans kept in memory."""
    platform = platform_of(promoted, tmp_path_factory.mktemp("traced"))
    config = serving_config(platform, serving={"tracing": True, "max_tokens": 256})
    exporter = InMemorySpanExporter()
    service = build_service(config, platform.home, span_exporter=exporter)
    with running(service, poll_seconds=config.serving.poll_seconds) as url:
        wait_ready(service)
        yield Traced(url, service, platform, config, exporter)


def post_chat(live: Live, question: str, headers: dict | None = None, **options) -> httpx.Response:
    response = httpx.post(
        f"{live.url}/v1/chat/completions", json=chat_body(live, question, **options), headers=headers, timeout=120
    )
    assert response.status_code == 200, response.text
    return response


def exported(traced: Traced, trace_id: str) -> dict[str, ReadableSpan]:
    """The exported spans of one trace, by name (each name occurs once in a chat request's trace)."""
    traced.service.chat.tracing.flush()
    found = [
        s
        for s in traced.exporter.get_finished_spans()
        if s.context is not None and format(s.context.trace_id, "032x") == trace_id
    ]
    assert len({s.name for s in found}) == len(found), (
        f"a span name repeats in trace {trace_id}: {[s.name for s in found]}"
    )
    return {s.name: s for s in found}


def spans_of(traced: Traced, trace_id: str, ended: tuple[str, ...] = (REQUEST,)) -> dict[str, ReadableSpan]:
    """The trace's spans once those named `ended` are exported (the request
    span ends just after its last byte went out).
    """
    wait_for(lambda: set(ended) <= set(exported(traced, trace_id)), f"spans {ended} of trace {trace_id} to end")
    return exported(traced, trace_id)


def test_an_answer_is_a_request_span_with_cache_retrieval_prompt_and_generation_children(traced):
    response = post_chat(traced, "What does a for loop iterate over?", max_tokens=8)
    spans = spans_of(traced, response.headers["x-trace-id"])

    request = spans[REQUEST]
    assert request.kind == SpanKind.SERVER and request.parent is None
    assert set(spans) == {REQUEST, "cache lookup", "retrieval", "prompt", "generation"}
    assert all(
        s.parent is not None and s.parent.span_id == request.context.span_id
        for name, s in spans.items()
        if name != REQUEST
    )
    assert spans["cache lookup"].attributes["llm_platform.cache.result"] == "miss"
    assert spans["retrieval"].attributes["llm_platform.retrieval.hits"] >= 1
    assert spans["prompt"].attributes["llm_platform.prompt.chars"] > 0
    generation = spans["generation"]
    assert generation.attributes["gen_ai.usage.input_tokens"] == response.json()["usage"]["prompt_tokens"]
    assert generation.attributes["gen_ai.usage.output_tokens"] == response.json()["usage"]["completion_tokens"] > 0
    assert generation.attributes["llm_platform.time_to_first_token_ms"] > 0
    assert [e.name for e in generation.events] == ["first token"]
    assert request.attributes["llm_platform.answer_id"] == response.json()["id"]
    assert request.attributes["http.response.status_code"] == 200


def test_a_cached_answer_shows_the_cache_hit_and_no_generation(traced):
    post_chat(traced, "How are dictionaries looked up?", max_tokens=8)
    second = post_chat(traced, "How are dictionaries looked up?", max_tokens=8)
    spans = spans_of(traced, second.headers["x-trace-id"])

    assert second.json()["cached"] is True
    assert set(spans) == {REQUEST, "cache lookup"}
    assert spans["cache lookup"].attributes["llm_platform.cache.result"] == "hit"
    assert spans[REQUEST].attributes["llm_platform.cached"] is True


def test_the_trace_id_header_is_in_the_answers_query_log_record(traced):
    response = post_chat(traced, "What is a list comprehension?", max_tokens=8)
    records, _ = read_query_log(traced.platform.home)

    record = next(r for r in records if r["id"] == response.json()["id"])
    assert len(response.headers["x-trace-id"]) == 32
    assert record["trace_id"] == response.headers["x-trace-id"]


def test_a_callers_traceparent_is_continued(traced):
    response = post_chat(
        traced,
        "What does the pass statement do?",
        headers={"traceparent": f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"},
        max_tokens=4,
    )
    spans = spans_of(traced, CALLER_TRACE_ID)

    assert response.headers["x-trace-id"] == CALLER_TRACE_ID
    assert format(spans[REQUEST].parent.span_id, "016x") == CALLER_SPAN_ID


def test_a_stream_is_traced_with_its_tokens_and_time_to_first_token(traced):
    response = post_chat(
        traced, "How does a while loop end?", stream=True, max_tokens=8, stream_options={"include_usage": True}
    )
    spans = spans_of(traced, response.headers["x-trace-id"])

    assert set(spans) == {REQUEST, "retrieval", "prompt", "generation"}  # a stream does not read the answer cache
    generation = spans["generation"]
    assert generation.parent.span_id == spans[REQUEST].context.span_id
    assert (
        generation.attributes["gen_ai.usage.output_tokens"] > 0
        and generation.attributes["llm_platform.time_to_first_token_ms"] > 0
    )
    assert generation.status.status_code == StatusCode.UNSET and spans[REQUEST].status.status_code == StatusCode.UNSET


def test_a_dropped_stream_ends_its_generation_and_request_spans_as_errors(traced):
    with model_swapped(traced, Slow):
        with httpx.stream(
            "POST",
            f"{traced.url}/v1/chat/completions",
            json=chat_body(traced, "A long story nobody reads?", stream=True, max_tokens=256),
            timeout=60,
        ) as response:
            trace_id = response.headers["x-trace-id"]
            events = response.iter_lines()
            [next(events) for _ in range(3)]  # then the client goes
        spans = spans_of(traced, trace_id, ended=(REQUEST, "generation"))

    assert (
        spans["generation"].status.status_code == StatusCode.ERROR
        and "client disconnected" in spans["generation"].status.description
    )
    assert spans["generation"].attributes["gen_ai.usage.output_tokens"] < 256
    assert spans[REQUEST].status.status_code == StatusCode.ERROR


def test_a_client_giving_up_on_a_whole_answer_ends_its_spans_as_errors(traced):
    trace_id = "5a0c2b4e6d8f10325476980badcfe123"  # sent as traceparent: the client never sees a response header
    with model_swapped(traced, Slow):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{traced.url}/v1/chat/completions",
                json=chat_body(traced, "A long answer nobody waits for?", max_tokens=256),
                timeout=1,
                headers={"traceparent": f"00-{trace_id}-{CALLER_SPAN_ID}-01"},
            )
        spans = spans_of(traced, trace_id, ended=(REQUEST, "generation"))

    assert (
        spans["generation"].status.status_code == StatusCode.ERROR
        and "client disconnected" in spans["generation"].status.description
    )
    assert (
        spans[REQUEST].status.status_code == StatusCode.ERROR
        and spans[REQUEST].attributes["http.response.status_code"] == 499
    )


def test_a_refused_request_is_one_span_with_its_status(traced):
    response = httpx.post(
        f"{traced.url}/v1/chat/completions", json=chat_body(traced, "Too long?", max_tokens=100_000), timeout=60
    )
    spans = spans_of(traced, response.headers["x-trace-id"])

    assert response.status_code == 400
    assert spans[REQUEST].attributes["http.response.status_code"] == 400 and set(spans) == {REQUEST}


def test_health_and_metrics_are_not_traced(traced):
    traced.service.chat.tracing.flush()
    before = len(traced.exporter.get_finished_spans())
    responses = [httpx.get(f"{traced.url}{path}") for path in ("/healthz", "/readyz", "/metrics")]
    traced.service.chat.tracing.flush()

    assert all("x-trace-id" not in r.headers for r in responses)
    assert len(traced.exporter.get_finished_spans()) == before


def test_tracing_off_exports_nothing_and_sends_no_trace_id(promoted, tmp_path):
    platform = platform_of(promoted, tmp_path)
    config = serving_config(platform)
    exporter = InMemorySpanExporter()
    service = build_service(config, platform.home, span_exporter=exporter)
    with running(service, poll_seconds=config.serving.poll_seconds) as url:
        wait_ready(service)
        live = Live(url, service, platform, config)
        answered = post_chat(live, "What is a tuple?", max_tokens=4)
        streamed = post_chat(live, "What is a set?", max_tokens=4, stream=True)
    records, _ = read_query_log(platform.home)

    assert config.serving.tracing is False
    assert "x-trace-id" not in answered.headers and "x-trace-id" not in streamed.headers
    assert exporter.get_finished_spans() == ()
    assert records and not any("trace_id" in r for r in records)

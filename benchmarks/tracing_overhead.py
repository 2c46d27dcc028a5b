"""What tracing costs a request: the spans one uncached chat request makes, timed with tracing off and on.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/tracing_overhead.py

Off is the API's no-op tracer (what `serving.tracing: false` serves with); on is the
SDK's provider with a batch processor into an in-memory exporter, so the figure is
the span bookkeeping, not the network. The best of three runs of 20,000 requests.
"""

from __future__ import annotations

import timeit

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llm_platform.serving.tracing import start_tracing

REQUESTS = 20_000


def one_request(tracer) -> None:
    """The request span, three stage spans as the service opens them, and the generation span ended by its run."""
    request = tracer.start_span("POST /v1/chat/completions")
    for name in ("cache lookup", "retrieval", "prompt"):
        with tracer.start_as_current_span(name) as span:
            span.set_attribute("llm_platform.stage", name)
    generation = tracer.start_span("generation")
    generation.set_attributes({"gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 16})
    generation.end()
    request.end()


def main() -> None:
    for enabled in (False, True):
        tracing = start_tracing(enabled, exporter=InMemorySpanExporter())
        seconds = min(timeit.repeat(lambda: one_request(tracing.tracer), number=REQUESTS, repeat=3))
        print(f"tracing {'on' if enabled else 'off'}: {seconds / REQUESTS * 1e6:.1f} µs per request")
        tracing.shutdown()


if __name__ == "__main__":
    main()

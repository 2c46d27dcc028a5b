"""OpenTelemetry traces of the service's requests: one span per request, children for its stages.

Off by default (`serving.tracing: false`): the service then holds the API's
no-op tracer and adds no middleware, so a request pays for nothing but a few
no-op calls. On, spans go where the standard variables say
(`OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`,
`OTEL_TRACES_SAMPLER`, …), through a tracer provider of the service's own, never
the process-wide one (MLflow keeps its own traces there). The SDK is imported
only when tracing is on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import NoOpTracer, Span, Status, StatusCode

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

SERVICE_NAME = "llm_platform"
EXPORTER_ENV = "OTEL_TRACES_EXPORTER"
PROTOCOL_ENVS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


@dataclass
class Tracing:
    """The service's tracer and, when tracing is on, the provider that exports its spans."""

    tracer: trace.Tracer
    provider: TracerProvider | None = None

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def flush(self) -> bool:
        return self.provider.force_flush() if self.provider is not None else True

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()


def start_tracing(enabled: bool, *, exporter: SpanExporter | None = None) -> Tracing:
    """A no-op tracer when off; else a provider exporting in batches to
    `exporter`, or to those $OTEL_TRACES_EXPORTER names.
    """
    if not enabled:
        return Tracing(NoOpTracer())
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME})
    )
    for chosen in [exporter] if exporter is not None else configured_exporters():
        provider.add_span_processor(BatchSpanProcessor(chosen))
    return Tracing(provider.get_tracer("llm_platform.serving"), provider)


def configured_exporters() -> list[SpanExporter]:
    """The exporters $OTEL_TRACES_EXPORTER names (comma-separated: otlp, console, none; unset: otlp)."""
    names = [name.strip() for name in (os.environ.get(EXPORTER_ENV) or "otlp").split(",") if name.strip()]
    unknown = sorted(set(names) - {"otlp", "console", "none"})
    if unknown:
        raise ValueError(
            f"${EXPORTER_ENV} names {', '.join(unknown)}: this service exports "
            "traces with otlp (OTLP over HTTP), console or none"
        )
    return [_exporter(name) for name in names if name != "none"]


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    protocol = next((os.environ[env] for env in PROTOCOL_ENVS if os.environ.get(env)), "http/protobuf")
    if protocol != "http/protobuf":
        raise ValueError(
            f"OTLP protocol {protocol!r} (${' or $'.join(PROTOCOL_ENVS)}) is not supported here: "
            "unset it or set http/protobuf, and point $OTEL_EXPORTER_OTLP_ENDPOINT at the collector's HTTP port (4318)"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout: from $OTEL_EXPORTER_OTLP_[TRACES_]*


def trace_id_of(span: Span) -> str | None:
    """The span's trace id as 32 hex digits (as in a traceparent header), or None for a no-op span."""
    found = span.get_span_context()
    return trace.format_trace_id(found.trace_id) if found.is_valid else None


def current_trace_id() -> str | None:
    return trace_id_of(trace.get_current_span())


def end_failed(span: Span, exc: BaseException) -> None:
    """Mark `span` failed with `exc` (a client leaving included) and end it."""
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    span.end()


def generation_ender(span: Span, started_ns: int):
    """The `on_end` of a GenerationRun traced by `span` (started at
    `started_ns`): tokens, time to first token, how it ended.
    """

    def end(run) -> None:
        span.set_attributes(
            {"gen_ai.usage.input_tokens": run.prompt_tokens, "gen_ai.usage.output_tokens": run.new_tokens}
        )
        if run.clock.first_token_ns is not None:
            span.add_event("first token", timestamp=run.clock.first_token_ns)
            span.set_attribute("llm_platform.time_to_first_token_ms", (run.clock.first_token_ns - started_ns) / 1e6)
        if run.error is not None:
            span.set_status(Status(StatusCode.ERROR, run.error))
        elif run.control.expired():
            span.set_status(Status(StatusCode.ERROR, "deadline passed (serving.request_timeout_seconds)"))
        elif run.control.cancel.is_set():
            span.set_status(Status(StatusCode.ERROR, "cancelled: the client disconnected"))
        span.end()

    return end


def set_answer_attributes(answer_id: str, cached: bool, versions: dict) -> None:
    """Name the answer on the request's span, so a trace leads to the query log record and back."""
    trace.get_current_span().set_attributes(
        {
            "llm_platform.answer_id": answer_id,
            "llm_platform.cached": cached,
            **{f"llm_platform.{name}": str(value) for name, value in versions.items() if value is not None},
        }
    )

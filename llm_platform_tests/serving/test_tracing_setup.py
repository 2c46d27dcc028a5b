"""Where traces go: chosen by serving.tracing and the standard OTEL_*
variables, refused with a message when unsupported.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from llm_platform.config import ServingSettings
from llm_platform.serving.tracing import configured_exporters, start_tracing

OTEL_ENVS = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_SERVICE_NAME",
)


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch):
    for name in OTEL_ENVS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """An OTLP/HTTP receiver on loopback: its base URL and the (path, body) of each POST it got."""
    received: list[tuple[str, bytes]] = []

    class Receive(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.path, self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receive)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()


def test_tracing_is_off_by_default():
    assert ServingSettings().tracing is False
    assert start_tracing(ServingSettings().tracing).enabled is False


def test_otlp_sends_spans_to_the_endpoint_in_the_standard_variable(collector, monkeypatch):
    url, received = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "answers-eu")
    tracing = start_tracing(True)
    with tracing.tracer.start_as_current_span("retrieval"):
        pass
    tracing.shutdown()

    assert [path for path, _ in received] == ["/v1/traces"]
    sent = ExportTraceServiceRequest.FromString(received[0][1]).resource_spans[0]
    assert {a.key: a.value.string_value for a in sent.resource.attributes}["service.name"] == "answers-eu"
    assert [span.name for span in sent.scope_spans[0].spans] == ["retrieval"]


def test_tracing_off_sends_nothing_to_the_endpoint(collector, monkeypatch):
    url, received = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    tracing = start_tracing(False)
    with tracing.tracer.start_as_current_span("retrieval"):
        pass
    tracing.shutdown()

    assert received == []


def test_the_exporter_variable_chooses_console_or_none(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    assert [type(e) for e in configured_exporters()] == [ConsoleSpanExporter]
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert configured_exporters() == []


def test_an_unknown_exporter_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp,zipkin")

    with pytest.raises(
        ValueError, match=r"\$OTEL_TRACES_EXPORTER names zipkin: .*otlp \(OTLP over HTTP\), console or none"
    ):
        start_tracing(True)


def test_otlp_over_grpc_is_refused_with_what_to_set(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")

    with pytest.raises(ValueError, match=r"OTLP protocol 'grpc' .*set http/protobuf.*4318"):
        start_tracing(True)


def test_the_cli_and_an_untraced_service_do_not_import_the_sdk():
    code = (
        "import sys, llm_platform.cli, llm_platform.serving.app; from "
        "llm_platform.serving.tracing import start_tracing; "
        "start_tracing(False); print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)

    assert result.stdout.strip() == "[]"

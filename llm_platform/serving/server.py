"""Wire the service from the platform config and storage root, and run it under uvicorn."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llm_platform.config import PlatformConfig
from llm_platform.serving.cache import build_store
from llm_platform.serving.callers import CallerDirectory, configured_keys
from llm_platform.serving.feedback import FeedbackLog, RateLimiter
from llm_platform.serving.metrics import ServingMetrics
from llm_platform.serving.model_source import load_registered_adapter, registered_version
from llm_platform.serving.query_log import QueryLog
from llm_platform.serving.service import ChatService
from llm_platform.serving.state import ServingState, Snapshot, Sources
from llm_platform.serving.tracing import start_tracing

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace.export import SpanExporter

REDIS_URL_ENV = "LLM_PLATFORM_REDIS_URL"


def quiet_service_libraries() -> None:
    """The service's log is requests and version swaps: no download or load bars
    (unless the operator set them) or peft deprecations.
    """
    from llm_platform.library_warnings import ignore_third_party_deprecations, quiet_progress_bars

    quiet_progress_bars()
    ignore_third_party_deprecations()


def log_service_events() -> None:
    """Print the service's own INFO lines (version swaps: "now serving {'index_version': 3, ...}") beside uvicorn's.

    Without a handler only warnings reached stderr: an operator saw 503 "waiting for the published index"
    and no line saying when the index, adapter or prompt was loaded.
    """
    service_log = logging.getLogger("llm_platform.serving")
    service_log.setLevel(logging.INFO)
    if not service_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s:     llm_platform.serving: %(message)s"))
        service_log.addHandler(handler)


def index_sources(config: PlatformConfig, home: str):
    """(published version reader, opener of a version) for the chunk table under `home`."""
    from llm_platform.home_layout import lancedb_uri
    from llm_platform.index.table import configured_table_name, connect, open_table, published_version

    name = configured_table_name(config)
    uri = lancedb_uri(home)

    def version() -> int | None:
        db = connect(uri)
        if name not in db.list_tables().tables:
            return None
        return published_version(open_table(db, name), config.index.published_tag)

    def open_version(number: int):
        table = open_table(connect(uri), name)
        table.checkout(number)
        return table

    return version, open_version


def build_sources(config: PlatformConfig, home: str) -> Sources:
    from llm_platform.resources.mlflow import mlflow_resource

    # The store definitions.py's resource resolves, so the service reads the registry the assets write.
    mlflow = mlflow_resource(config.mlflow, home, in_dagster=False)
    index_version, open_index = index_sources(config, home)
    device = config.training.device
    return Sources(
        index_version=index_version,
        open_index=open_index,
        adapter_version=lambda: registered_version(mlflow, config.mlflow.registered_model),
        load_adapter=lambda: load_registered_adapter(mlflow, config.mlflow.registered_model, device=device),
        max_concurrent_generations=config.serving.max_concurrent_generations,
    )


@dataclass
class Service:
    """The application and the state whose watcher must run while it serves."""

    app: FastAPI
    state: ServingState
    chat: ChatService

    def stop(self) -> None:
        """Stop following the pointers and send the spans not exported yet."""
        self.state.stop()
        self.chat.tracing.shutdown()


def build_service(
    config: PlatformConfig, home: str, *, sources: Sources | None = None, span_exporter: SpanExporter | None = None
) -> Service:
    """Everything `llm-platform serve` runs, not started yet; with serving.tracing,
    spans go to `span_exporter` if given, else where $OTEL_* say.
    """
    from llm_platform.index.embedding import configured_embedder
    from llm_platform.serving.app import create_app

    settings = config.serving
    metrics = ServingMetrics()

    def on_swap(snap: Snapshot) -> None:
        metrics.swaps.inc()
        metrics.set_versions(snap.versions())

    state = ServingState(
        sources or build_sources(config, home), on_swap=on_swap, on_failure=lambda message: metrics.load_failures.inc()
    )
    redis_url = os.environ.get(REDIS_URL_ENV) or settings.redis_url
    stores = {
        name: build_store(
            settings.cache_backend,
            namespace=name,
            redis_url=redis_url,
            max_entries=settings.cache_max_entries,
            ttl_seconds=settings.cache_ttl_seconds,
        )
        for name in ("response", "answer")
    }
    embedding = config.embedding

    from llm_platform.index.table import QueryTuning

    def embed(texts: list[str]):
        return configured_embedder(embedding).encode(texts)

    chat = ChatService(
        state=state,
        embed=embed,
        responses=stores["response"],
        answers=stores["answer"],
        query_log=QueryLog(home, settings),
        feedback_log=FeedbackLog(home, settings),
        feedback_limit=RateLimiter(settings.feedback_per_minute),
        metrics=metrics,
        k=config.index.retrieval_k,
        max_context_chars=settings.max_context_chars,
        tuning=QueryTuning.from_config(config.index),
        tracing=start_tracing(settings.tracing, exporter=span_exporter),
    )
    app = create_app(chat, config, callers=CallerDirectory(configured_keys(settings, os.environ), settings))
    return Service(app=app, state=state, chat=chat)


class HideQueryStrings(logging.Filter):
    """Cuts the query string off uvicorn's access lines: a key a client sent as `?api_key=…` must never reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn's access record: (client, method, path with query, HTTP version, status).
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            record.args = (*record.args[:2], record.args[2].split("?", 1)[0], *record.args[3:])
        return True


def _uvicorn_server(app, *, host: str, port: int, log_level: str):
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
    access = logging.getLogger("uvicorn.access")  # configured by uvicorn.Config, so filtered after it
    if not any(isinstance(f, HideQueryStrings) for f in access.filters):
        access.addFilter(HideQueryStrings())
    return uvicorn.Server(config)


def check_exposure(
    host: str, *, has_key: bool, key_env: str, insecure_no_auth: bool, trusts_groups_header: str | None = None
) -> None:
    """Refuse to answer anyone but this machine without an API key, unless told so explicitly.

    `trusts_groups_header` (the header's name, when serving.trust_groups_header is on) needs a key
    even with --insecure-no-auth: anyone who reaches the port could name any group in it.
    """
    if has_key or _is_loopback(host):
        return
    if trusts_groups_header:
        raise ValueError(
            f"refusing to serve on {host} with serving.trust_groups_header on and no "
            "API key: anyone who can reach it could send "
            f"{trusts_groups_header} naming any group and read its documents; set "
            f"${key_env} (or the keys variable) to a secret "
            "only the auth proxy sends, or bind 127.0.0.1 (--host) behind a proxy on the same host"
        )
    if insecure_no_auth:
        return
    raise ValueError(
        f"refusing to serve on {host} without an API key: anyone who can reach "
        "it could read answers and write feedback; "
        f"set ${key_env} to a secret, bind 127.0.0.1 (--host), or pass "
        "--insecure-no-auth if the network in front is trusted"
    )


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost: it may resolve anywhere
        return False


def serve(config: PlatformConfig, home: str, *, host: str, port: int, insecure_no_auth: bool = False) -> None:
    """Run until interrupted: the watcher loads and follows the production pointers while uvicorn answers."""
    settings = config.serving
    keys = configured_keys(settings, os.environ)
    check_exposure(
        host,
        has_key=bool(keys),
        key_env=f"{settings.api_keys_env} or ${settings.api_key_env}",
        insecure_no_auth=insecure_no_auth,
        trusts_groups_header=settings.groups_header if settings.trust_groups_header else None,
    )
    print(
        f"serving on http://{host}:{port} (OpenAI-compatible: /v1/chat/completions; metrics: /metrics); Ctrl-C stops",
        file=sys.stderr,
    )
    quiet_service_libraries()
    log_service_events()
    service = build_service(config, home)
    service.state.start(config.serving.poll_seconds)
    try:
        _uvicorn_server(service.app, host=host, port=port, log_level="info").run()
    finally:
        service.stop()


@contextmanager
def running(service: Service, *, poll_seconds: float, host: str = "127.0.0.1", log_level: str = "warning"):
    """Serve `service` on a free loopback port in this process; yields the base URL; always stops it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    server = _uvicorn_server(service.app, host=host, port=sock.getsockname()[1], log_level=log_level)
    service.state.start(poll_seconds)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="llm-platform-serve", daemon=True)
    thread.start()
    try:
        while not server.started and thread.is_alive():
            threading.Event().wait(0.05)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        service.stop()
        sock.close()


def wait_ready(service: Service, timeout: float = 300) -> None:
    """Block until the first snapshot with index and adapter is loaded (or raise with the load error)."""
    import time

    deadline = time.monotonic() + timeout
    while not service.state.current.ready:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"service not ready after {timeout}s: {service.state.last_error or service.state.current.versions()}"
            )
        time.sleep(0.1)

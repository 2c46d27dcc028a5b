"""ASGI pieces under the routes: body limit, request metrics and traces, one log line
and a JSON body per unhandled error, and cancelling on disconnect.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
from fastapi.responses import JSONResponse, StreamingResponse
from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.concurrency import run_in_threadpool

from llm_platform.serving.tracing import end_failed, trace_id_of

log = logging.getLogger("llm_platform.serving")
T = TypeVar("T")
# Nginx's code for "client closed request": counted in metrics, read by nobody.
CLIENT_GONE = 499
TRACE_ID_HEADER = "x-trace-id"


def error_response(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


class BodyLimit:
    """Refuses bodies over `limit` bytes with 413 before any route parses them."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                response = error_response(
                    413,
                    f"request body over {self.limit} bytes (serving.max_body_bytes); send a shorter question",
                    "invalid_request_error",
                )
                return await response(scope, receive, send)

        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:  # after the body, the server's own messages (http.disconnect)
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


class Observe:
    """Counts requests by path and status, times them to the last byte sent, and tracks requests in flight."""

    def __init__(self, app, metrics, known_paths: set[str]) -> None:
        self.app, self.metrics, self.known_paths = app, metrics, known_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        began, status = time.perf_counter(), 500
        self.metrics.in_flight.inc()

        async def record_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            self.metrics.in_flight.dec()
            path = scope["path"] if scope["path"] in self.known_paths else "other"
            self.metrics.requests.labels(path, str(status)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - began)


class TraceRequests:
    """One server span per request to `paths`, continuing the caller's `traceparent`; its trace id goes back in
    X-Trace-Id.

    The span is the current one while the route runs, so the service's stage spans are its children.
    """

    def __init__(self, app, tracer: trace.Tracer, paths: set[str]) -> None:
        self.app, self.tracer, self.paths, self.propagator = app, tracer, paths, TraceContextTextMapPropagator()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        span = self.tracer.start_span(
            f"{scope['method']} {scope['path']}",
            context=self.propagator.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": scope["method"], "url.path": scope["path"]},
        )
        trace_id, status, complete = (trace_id_of(span) or "").encode(), 500, False
        token = context.attach(trace.set_span_in_context(span))

        async def send_with_trace_id(message):
            nonlocal status, complete
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (TRACE_ID_HEADER.encode(), trace_id)]}
            complete = complete or (message["type"] == "http.response.body" and not message.get("more_body", False))
            await send(message)

        try:
            await self.app(scope, receive, send_with_trace_id)
        except BaseException as exc:  # cancelled included; re-raised
            end_failed(span, exc)
            raise
        else:
            _set_outcome(span, status, complete)
            span.end()
        finally:
            context.detach(token)


def _set_outcome(span: Span, status: int, complete: bool) -> None:
    span.set_attribute("http.response.status_code", status)
    if status == CLIENT_GONE or not complete:  # a stream Starlette stopped because its client left
        span.set_status(Status(StatusCode.ERROR, "the client disconnected before the response was complete"))
    elif status >= 500:
        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))


class CatchErrors:
    """Answers an unhandled error with a 500 JSON body and logs it once.

    Inside Starlette's ServerErrorMiddleware, which would log it a second time
    (and re-raise it to uvicorn) if a handler for Exception were registered.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watch_start(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch_start)
        except Exception as exc:
            log.error("unhandled error on %s %s", scope["method"], scope["path"], exc_info=exc)
            if not started:  # a stream that already began can only be cut off
                response = error_response(
                    500,
                    f"internal error on {scope['path']} ({type(exc).__name__}); the server log has the details",
                    "server_error",
                )
                await response(scope, receive, send)


async def _set_on_disconnect(receive, cancel: threading.Event, finished: threading.Event) -> None:
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except anyio.get_cancelled_exc_class():
        # Cancelled before the work finished: the server is shutting down this request. A worker thread
        # cannot be cancelled, so its token loop must stop itself, or it would hold the process open.
        if not finished.is_set():
            cancel.set()
        raise
    cancel.set()


async def run_until_disconnect(receive, cancel: threading.Event, work: Callable[[], T]) -> T:
    """`work()` on a worker thread; `cancel` is set the moment the client
    disconnects, or the server cancels the request, while it runs.
    """
    outcome: list = []
    finished = threading.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(_set_on_disconnect, receive, cancel, finished)
        try:
            outcome.append(await run_in_threadpool(work))
        except Exception as exc:  # noqa: BLE001  re-raised below, so the route's handlers see it and not an ExceptionGroup
            outcome.append(exc)
        finally:
            finished.set()
            group.cancel_scope.cancel()
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]


class CancellingStream(StreamingResponse):
    """A streaming response that sets `cancel` once it ends for any reason:
    finished, client gone (Starlette stops it), or failed.
    """

    def __init__(self, content, cancel: threading.Event, **kwargs) -> None:
        super().__init__(content, **kwargs)
        self.cancel = cancel

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.cancel.set()

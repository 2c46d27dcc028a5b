"""ASGI pieces under the routes: body limit, request metrics, one log line and a JSON body per unhandled error, and cancelling on disconnect."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

log = logging.getLogger("llm_platform.serving")
T = TypeVar("T")


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
                response = error_response(413, f"request body over {self.limit} bytes (serving.max_body_bytes); send a shorter question", "invalid_request_error")
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
                response = error_response(500, f"internal error on {scope['path']} ({type(exc).__name__}); the server log has the details", "server_error")
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
    """`work()` on a worker thread; `cancel` is set the moment the client disconnects, or the server cancels the request, while it runs."""
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
    """A streaming response that sets `cancel` once it ends for any reason: finished, client gone (Starlette stops it), or failed."""

    def __init__(self, content, cancel: threading.Event, **kwargs) -> None:
        super().__init__(content, **kwargs)
        self.cancel = cancel

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.cancel.set()

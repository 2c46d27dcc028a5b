"""The HTTP layer: FastAPI routes over `ChatService`, errors as OpenAI-style JSON with a clear message."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, cast

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from llm_platform.config import PlatformConfig, ServingSettings
from llm_platform.serving.asgi import (
    CLIENT_GONE,
    BodyLimit,
    CancellingStream,
    CatchErrors,
    Observe,
    TraceRequests,
    error_response,
    run_until_disconnect,
)
from llm_platform.serving.callers import Caller, CallerDirectory, CallerError
from llm_platform.serving.schemas import (
    MAX_EMBEDDING_INPUTS,
    ChatRequest,
    EmbeddingRequest,
    FeedbackRequest,
    SearchRequest,
)
from llm_platform.serving.service import Answer, ChatService, NotReady, Params, TooManyRatings, UnknownAnswer
from llm_platform.serving.slots import ClientGone, Control, GenerationFailed, GenerationTimedOut, SlotsBusy

if TYPE_CHECKING:
    from starlette.routing import Mount, Route, WebSocketRoute

log = logging.getLogger("llm_platform.serving")
OPEN_PATHS = {"/healthz", "/readyz", "/metrics"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def require_key(request: Request) -> Caller:
    """The caller and its reader groups, resolved once per request (FastAPI caches a dependency within a request)."""
    callers: CallerDirectory = request.app.state.callers
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or request.headers.get(
        "x-api-key", ""
    )
    try:
        return callers.resolve(given, request.headers.get(callers.settings.groups_header))
    except CallerError as exc:
        raise ApiError(
            exc.status, str(exc), "authentication_error" if exc.status == 401 else "invalid_request_error"
        ) from None


# The caller of a route: its key checked, its groups resolved.
CallerOf = Annotated[Caller, Depends(require_key)]


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for item in exc.errors():
        field = ".".join(str(p) for p in item["loc"] if p != "body") or "body"
        parts.append(
            f"{field}: "
            f"{'unknown field (not accepted by this endpoint)' if item['type'] == 'extra_forbidden' else item['msg']}"
        )
    return "invalid request: " + "; ".join(parts)


def create_app(service: ChatService, config: PlatformConfig, *, callers: CallerDirectory) -> FastAPI:
    """The FastAPI application; `service.state` must be started by the caller (see server.py)."""
    # The schema and its browsable page are served by guarded routes, so they need the key like /v1 does.
    app = FastAPI(
        title="llm_platform",
        description="Retrieval-augmented answers from the published index and the production adapter.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.callers = callers
    _add_error_handlers(app)
    _add_health_routes(app, service, config.serving)
    _add_docs_routes(app)
    _add_chat_routes(app, service, config)
    _add_search_routes(app, service, config)
    _add_feedback_route(app, service)
    _add_middleware(app, service, config.serving)
    return app


# The dependency of every route but the open ones: the caller's key checked, its groups resolved.
GUARDED = [Depends(require_key)]


def _add_error_handlers(app: FastAPI) -> None:
    """Every expected error answers as OpenAI-style JSON with its status."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.kind)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return error_response(400, _validation_message(exc), "invalid_request_error")

    for error, status, kind in _MAPPED_ERRORS:
        app.add_exception_handler(error, _handler(status, kind))

    @app.exception_handler(TooManyRatings)
    async def _too_many(request: Request, exc: TooManyRatings):
        response = error_response(429, str(exc), "rate_limit_error")
        response.headers["Retry-After"] = "60"
        return response


def _add_health_routes(app: FastAPI, service: ChatService, settings: ServingSettings) -> None:
    """The open routes a probe or a scraper calls without a key: /healthz, /readyz, /metrics."""
    metrics = service.metrics

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz():
        snap, held = service.state.current, service.stuck_seconds()
        stuck = held > settings.request_timeout_seconds + settings.stuck_grace_seconds
        body = {
            "ready": snap.ready and not stuck,
            **snap.versions(),
            "last_error": service.state.last_error,
            "stuck": f"a generation has held its slot for {held:.0f} s, past "
            "serving.request_timeout_seconds + serving.stuck_grace_seconds"
            if stuck
            else None,
        }
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @app.get("/metrics")
    def metrics_page():
        return PlainTextResponse(metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _add_docs_routes(app: FastAPI) -> None:
    """The OpenAPI schema and its browsable page, behind the key."""

    @app.get("/openapi.json", dependencies=GUARDED, include_in_schema=False)
    def openapi_schema():
        return app.openapi()

    @app.get("/docs", dependencies=GUARDED, include_in_schema=False)
    def docs_page():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="llm_platform")


def _add_chat_routes(app: FastAPI, service: ChatService, config: PlatformConfig) -> None:
    """/v1/models and /v1/chat/completions: the served models and their answers, whole or streamed."""
    settings = config.serving

    @app.get("/v1/models", dependencies=GUARDED)
    def models():
        snap = service.state.current
        data = [
            {
                "id": config.mlflow.registered_model,
                "object": "model",
                "owned_by": "llm_platform",
                "version": snap.adapter_version,
                **snap.versions(),
            },
            {"id": config.embedding.model, "object": "model", "owned_by": "llm_platform"},
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", dependencies=GUARDED)
    async def chat(body: ChatRequest, request: Request, caller: CallerOf):
        _expect_model(body.model, config.mlflow.registered_model)
        question = _question(body, settings.max_question_chars)
        wanted = body.max_completion_tokens or body.max_tokens or settings.default_max_tokens
        if wanted > settings.max_tokens:
            raise ApiError(
                400, f"max_tokens {wanted} is over this service's limit of {settings.max_tokens} (serving.max_tokens)"
            )
        params = Params(max_tokens=wanted, temperature=body.temperature, top_p=body.top_p)
        control = Control.within(settings.request_timeout_seconds)
        if body.stream:
            header, pieces = await run_until_disconnect(
                request.receive, control.cancel, lambda: service.stream(question, params, control, caller=caller)
            )
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return CancellingStream(
                _sse(header, pieces, body.model, include_usage), control.cancel, media_type="text/event-stream"
            )
        answer = await run_until_disconnect(
            request.receive, control.cancel, lambda: service.answer(question, params, control, caller=caller)
        )
        return _completion(answer, body.model)


def _add_search_routes(app: FastAPI, service: ChatService, config: PlatformConfig) -> None:
    """/v1/embeddings and /v1/search: the embedding model and the published index, without generation."""
    settings = config.serving

    @app.post("/v1/embeddings", dependencies=GUARDED)
    def embeddings(body: EmbeddingRequest):
        _expect_model(body.model, config.embedding.model)
        texts = [body.input] if isinstance(body.input, str) else body.input
        if not texts or len(texts) > MAX_EMBEDDING_INPUTS:
            raise ApiError(400, f"input must hold 1 to {MAX_EMBEDDING_INPUTS} texts, got {len(texts)}")
        for i, text in enumerate(texts):
            if not text.strip() or len(text) > settings.max_question_chars:
                raise ApiError(
                    400,
                    f"input[{i}] must be non-empty and at most "
                    f"{settings.max_question_chars} characters (serving.max_question_chars)",
                )
        vectors = service.embed(texts)
        return {
            "object": "list",
            "model": config.embedding.model,
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
            "data": [
                {"object": "embedding", "index": i, "embedding": _encoded(v, body.encoding_format)}
                for i, v in enumerate(vectors)
            ],
        }

    @app.post("/v1/search", dependencies=GUARDED)
    def search(body: SearchRequest, caller: CallerOf):
        if len(body.query) > settings.max_question_chars:
            raise ApiError(
                400,
                f"query is {len(body.query)} characters; the limit is "
                f"{settings.max_question_chars} (serving.max_question_chars)",
            )
        if body.source is not None and body.source not in config.source_names:
            raise ApiError(400, f"unknown source {body.source!r}; known sources: {', '.join(config.source_names)}")
        from llm_platform.index.table import SearchInputError

        snap = service.snapshot(need_adapter=False)
        try:
            hits = service.search(
                snap, body.query, mode=body.mode, k=body.k, source=body.source, readers=caller.readers
            )
        except SearchInputError as exc:
            raise ApiError(400, f"query: {exc}") from None
        return {"object": "list", "index_version": snap.index_version, "mode": body.mode, "data": hits}


def _add_feedback_route(app: FastAPI, service: ChatService) -> None:
    """/v1/feedback: a rating of an answer, and a correction held for review."""

    @app.post("/v1/feedback", dependencies=GUARDED)
    def feedback(body: FeedbackRequest, request: Request, caller: CallerOf):
        client = request.client.host if request.client else "unknown"
        record = service.rate(body.answer_id, body.rating, body.corrected_answer, caller=caller, client=client)
        proposal = (
            {"proposal_id": record["proposal_id"], "correction": "pending review"} if "proposal_id" in record else {}
        )
        return {"status": "recorded", "answer_id": body.answer_id, "rating": record["rating"], **proposal}


def _add_middleware(app: FastAPI, service: ChatService, settings: ServingSettings) -> None:
    """Error catching, the body limit, metrics and tracing; added once every
    route exists, as they label requests by route.
    """
    # Every route has a path (none is a starlette Host); other paths count as "other".
    known_paths = {route.path for route in cast("list[Route | WebSocketRoute | Mount]", app.routes)}
    app.add_middleware(CatchErrors)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(Observe, metrics=service.metrics, known_paths=known_paths)
    if service.tracing.enabled:  # outermost, so a request's span covers every layer and its status
        app.add_middleware(TraceRequests, tracer=service.tracing.tracer, paths=known_paths - OPEN_PATHS)


_MAPPED_ERRORS = (
    (NotReady, 503, "service_unavailable"),
    (SlotsBusy, 503, "service_unavailable"),
    (UnknownAnswer, 404, "not_found"),
    (GenerationTimedOut, 504, "timeout"),
    (GenerationFailed, 500, "server_error"),
    (ClientGone, CLIENT_GONE, "client_closed_request"),
)


def _handler(status: int, kind: str):
    # Each of these is expected and already logged where it happened (a failed generation on its worker thread).
    async def answer(request: Request, exc: Exception) -> JSONResponse:
        return error_response(status, str(exc), kind)

    return answer


def _encoded(vector, encoding: str):
    # OpenAI clients ask for base64 by default: little-endian float32 bytes.
    return (
        base64.b64encode(vector.astype("<f4").tobytes()).decode()
        if encoding == "base64"
        else [float(x) for x in vector]
    )


def _expect_model(asked: str, served: str) -> None:
    if asked != served:
        raise ApiError(
            404, f"model {asked!r} is not served here; use {served!r} (GET /v1/models lists them)", "not_found"
        )


def _question(body: ChatRequest, max_chars: int) -> str:
    users = [m.content for m in body.messages if m.role == "user"]
    if not users or not users[-1].strip():
        raise ApiError(400, "messages must end with a non-empty user message holding the question")
    if len(users[-1]) > max_chars:
        raise ApiError(
            400, f"the question is {len(users[-1])} characters; the limit is {max_chars} (serving.max_question_chars)"
        )
    return users[-1].strip()


def _extras(answer: Answer) -> dict:
    return {"citations": answer.citations, "versions": answer.versions, "cached": answer.cached}


def _completion(answer: Answer, model: str) -> dict:
    usage = {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }
    choice = {"index": 0, "message": {"role": "assistant", "content": answer.answer}, "finish_reason": "stop"}
    return {
        "id": answer.id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": usage,
        **_extras(answer),
    }


def _sse(answer: Answer, pieces: Iterator[str], model: str, include_usage: bool) -> Iterator[str]:
    created = int(time.time())

    def chunk(delta: dict, finish: str | None, **extra) -> str:
        body = {
            "id": answer.id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""}, None, **_extras(answer))
    try:
        for piece in pieces:
            if piece:
                yield chunk({"content": piece}, None)
    except ClientGone:
        return
    except GenerationFailed as exc:  # the status line went out with the first event: the error travels as an event
        status, kind = (504, "timeout") if isinstance(exc, GenerationTimedOut) else (500, "server_error")
        yield f"data: {json.dumps({'error': {'message': str(exc), 'type': kind, 'code': status}})}\n\n"
        return
    usage = {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }
    yield chunk({}, "stop", **({"usage": usage} if include_usage else {}))
    yield "data: [DONE]\n\n"

"""Answering, embedding, searching and rating, on one snapshot per request; no HTTP here."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from llm_platform.index.access import ReaderGroups
from llm_platform.serving.cache import Store, response_key
from llm_platform.serving.callers import Caller
from llm_platform.serving.feedback import ANONYMOUS, FeedbackLog, RateLimiter, feedback_record
from llm_platform.serving.metrics import ServingMetrics
from llm_platform.serving.model_source import format_prompt
from llm_platform.serving.query_log import QueryLog
from llm_platform.serving.slots import Control
from llm_platform.serving.state import ServingState, Snapshot
from llm_platform.serving.tracing import (
    Tracing,
    current_trace_id,
    end_failed,
    generation_ender,
    set_answer_attributes,
    start_tracing,
)

log = logging.getLogger("llm_platform.serving")
CITATION_FIELDS = ("source", "locator", "title", "heading", "chunk_id", "score")


class NotReady(RuntimeError):
    """The service has not loaded what the request needs yet (HTTP 503)."""


class UnknownAnswer(LookupError):
    """Feedback names an answer id this service never issued, one that
    expired, or one issued to another group set (HTTP 404).
    """


class TooManyRatings(RuntimeError):
    """A caller sent more feedback than serving.feedback_per_minute allows (HTTP 429)."""


@dataclass(frozen=True)
class Params:
    max_tokens: int
    temperature: float
    top_p: float | None = None


@dataclass
class Answer:
    id: str
    question: str
    answer: str
    citations: list[dict]
    versions: dict
    prompt_tokens: int
    completion_tokens: int
    cached: bool
    reader_groups: list[str] = field(default_factory=list)  # the group set of the caller it was issued to

    def record(self) -> dict:
        return {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "citations": self.citations,
            "versions": self.versions,
            "reader_groups": self.reader_groups,
        }


def new_answer_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class ChatService:
    """Retrieval-augmented answers with caching, logging and feedback, over `state`'s current snapshot."""

    def __init__(
        self,
        *,
        state: ServingState,
        embed: Callable[[list[str]], object],
        responses: Store,
        answers: Store,
        query_log: QueryLog,
        feedback_log: FeedbackLog,
        feedback_limit: RateLimiter,
        metrics: ServingMetrics,
        k: int,
        max_context_chars: int,
        tuning=None,
        tracing: Tracing | None = None,
    ) -> None:
        self.state, self._embed, self.responses, self.answers = state, embed, responses, answers
        self.query_log, self.feedback_log, self.feedback_limit, self.metrics = (
            query_log,
            feedback_log,
            feedback_limit,
            metrics,
        )
        self.k, self.max_context_chars, self.tuning = k, max_context_chars, tuning
        self.tracing = tracing or start_tracing(False)
        self.tracer = self.tracing.tracer
        self._embed_lock = threading.Lock()

    def snapshot(self, *, need_adapter: bool = True) -> Snapshot:
        snap = self.state.current
        missing = [
            what
            for what, ok in (
                ("the published index", snap.table is not None),
                ("the production adapter", snap.adapter is not None or not need_adapter),
            )
            if not ok
        ]
        if missing:
            detail = f"; last load error: {self.state.last_error}" if self.state.last_error else ""
            raise NotReady(f"not ready: waiting for {' and '.join(missing)}{detail}")
        return snap

    def embed(self, texts: list[str]):
        with self._embed_lock:
            return self._embed(texts)

    def search(
        self,
        snap: Snapshot,
        query: str,
        *,
        readers: ReaderGroups,
        mode: str = "vector",
        k: int | None = None,
        source: str | None = None,
    ) -> list[dict]:
        """Top-k among the rows `readers` may read (filtered inside the search);
        `readers` has no default so no route forgets it.
        """
        from llm_platform.index.table import search

        vector = self.embed([query])[0] if mode != "fts" else None
        # The source is a value, never pasted into a filter string: search() validates it and builds the filter.
        return search(
            snap.table, query, vector, mode=mode, k=k or self.k, source=source, tuning=self.tuning, readers=readers
        )

    def _retrieve(self, snap: Snapshot, question: str, caller: Caller) -> list[dict]:
        with self.tracer.start_as_current_span("retrieval", attributes={"llm_platform.retrieval.k": self.k}) as span:
            began = time.perf_counter()
            hits = self.search(snap, question, readers=caller.readers)
            self.metrics.retrieval.observe(time.perf_counter() - began)
            span.set_attribute("llm_platform.retrieval.hits", len(hits))
        return hits

    def _contexts(self, hits: list[dict]) -> list[str]:
        contexts, budget = [], self.max_context_chars
        for hit in hits:
            if budget <= 0:
                break
            contexts.append(hit["text"][:budget])
            budget -= len(contexts[-1])
        return contexts

    def _cached(self, key: str) -> dict | None:
        with self.tracer.start_as_current_span("cache lookup") as span:
            try:
                found, outcome = self.responses.get(key), "miss"
            except Exception as exc:  # a cache outage costs latency, never an answer
                log.warning("response cache read failed: %s", exc)
                span.record_exception(exc)
                found, outcome = None, "error"
            outcome = "hit" if found else outcome
            self.metrics.cache.labels(outcome).inc()
            span.set_attribute("llm_platform.cache.result", outcome)
        return found

    def _remember(self, key: str | None, answer: Answer) -> None:
        try:
            if key is not None:
                self.responses.put(
                    key,
                    {
                        "answer": answer.answer,
                        "citations": answer.citations,
                        "prompt_tokens": answer.prompt_tokens,
                        "completion_tokens": answer.completion_tokens,
                    },
                )
            self.answers.put(answer.id, answer.record())
        except Exception as exc:
            log.warning("cache write failed: %s", exc)
            self.metrics.cache.labels("error").inc()

    def answer(self, question: str, params: Params, control: Control, *, caller: Caller) -> Answer:
        """A whole answer, from the cache when these versions answered this question before for the same group set."""
        snap = self.snapshot()
        began, trace_id = time.perf_counter(), current_trace_id()
        key = (
            response_key(snap.versions(), question, params.__dict__, caller.group_set)
            if params.temperature == 0
            else None
        )
        hit = self._cached(key) if key else None
        if hit is not None:
            answer = Answer(
                new_answer_id(),
                question,
                hit["answer"],
                hit["citations"],
                snap.versions(),
                hit["prompt_tokens"],
                hit["completion_tokens"],
                cached=True,
                reader_groups=caller.group_set,
            )
        else:
            hits = self._retrieve(snap, question, caller)
            gen_began = time.perf_counter()
            result = self._generation(snap, question, hits, params, control).result()
            self.metrics.generation.observe(time.perf_counter() - gen_began)
            answer = Answer(
                new_answer_id(),
                question,
                result.text,
                citations(hits),
                snap.versions(),
                result.prompt_tokens,
                result.completion_tokens,
                cached=False,
                reader_groups=caller.group_set,
            )
        set_answer_attributes(answer.id, answer.cached, answer.versions)
        self._finish(answer, key if hit is None else None, began, trace_id)
        return answer

    def stream(
        self, question: str, params: Params, control: Control, *, caller: Caller
    ) -> tuple[Answer, Iterator[str]]:
        """The answer's header (id, citations, versions) now, and its text piece by
        piece; generation has started (and holds a slot).
        """
        snap = self.snapshot()
        began, trace_id = time.perf_counter(), current_trace_id()
        hits = self._retrieve(snap, question, caller)
        gen_began = time.perf_counter()
        run = self._generation(snap, question, hits, params, control)
        answer = Answer(
            new_answer_id(),
            question,
            "",
            citations(hits),
            snap.versions(),
            run.prompt_tokens,
            0,
            cached=False,
            reader_groups=caller.group_set,
        )
        set_answer_attributes(answer.id, answer.cached, answer.versions)

        def pieces() -> Iterator[str]:
            yield from run.pieces()
            result = run.result()
            self.metrics.generation.observe(time.perf_counter() - gen_began)
            answer.answer, answer.completion_tokens = result.text, result.completion_tokens
            self._finish(answer, None, began, trace_id)

        return answer, pieces()

    def _generation(self, snap: Snapshot, question: str, hits: list[dict], params: Params, control: Control):
        from llm_platform.serving.generation import GenerationRun, Sampling

        with self.tracer.start_as_current_span("prompt") as span:
            contexts = self._contexts(hits)
            prompt = format_prompt(
                snap.adapter.prompt_template, question, contexts=contexts, tokenizer=snap.adapter.tokenizer
            )
            span.set_attributes(
                {"llm_platform.prompt.contexts": len(contexts), "llm_platform.prompt.chars": len(prompt)}
            )
        sampling = Sampling(max_new_tokens=params.max_tokens, temperature=params.temperature, top_p=params.top_p)
        # Ended by the run when its token loop ends (in a stream, after this returns); includes the wait for a slot.
        started_ns = time.time_ns()
        span = self.tracer.start_span("generation", start_time=started_ns, attributes=_requested(params))
        try:
            return GenerationRun(
                snap.adapter.model,
                snap.adapter.tokenizer,
                prompt,
                sampling=sampling,
                control=control,
                slots=snap.slots,
                on_end=generation_ender(span, started_ns),
            )
        except Exception as exc:  # no slot came free, or the prompt could not be encoded: the loop never started
            end_failed(span, exc)
            raise

    def stuck_seconds(self) -> float:
        """How long the current snapshot's oldest generation slot has been held (the readiness watchdog reads it)."""
        return self.state.current.slots.longest_held_seconds()

    def _finish(self, answer: Answer, key: str | None, began: float, trace_id: str | None) -> None:
        self._remember(key, answer)
        self.metrics.tokens.labels("in").inc(answer.prompt_tokens)
        self.metrics.tokens.labels("out").inc(answer.completion_tokens)
        self.query_log.append(
            {
                **answer.record(),
                "citations": [c["chunk_id"] for c in answer.citations],
                "cached": answer.cached,
                "latency_ms": round((time.perf_counter() - began) * 1000, 3),
                **answer.versions,
                **({"trace_id": trace_id} if trace_id else {}),
            }
        )

    def rate(
        self, answer_id: str, rating: int, corrected_answer: str | None, *, caller: Caller, client: str = ""
    ) -> dict:
        """Write `caller`'s rating of an answer issued to its group set,
        durably; a correction is kept as a proposal for review.
        """
        limited = caller.identity if caller.identity != ANONYMOUS else f"{ANONYMOUS}@{client}"
        if not self.feedback_limit.allow(limited):
            raise TooManyRatings(
                f"more than {self.feedback_limit.per_minute} feedback requests in a minute from {limited} "
                "(serving.feedback_per_minute); wait a minute and send again"
            )
        answer = self.answers.get(answer_id)
        # Another group set's answer reads as unknown, so an id never tells a caller that answer exists; an answer
        # stored before group sets were recorded was retrieved as public-only, which is what the default says.
        if answer is None or answer.get("reader_groups", []) != caller.group_set:
            raise UnknownAnswer(
                f"no answer with id {answer_id!r}: use the id of a chat completion this "
                "service returned to you (ids expire with the cache)"
            )
        record = feedback_record(
            answer=answer, rating=rating, corrected_answer=corrected_answer, caller=caller.identity
        )
        self.feedback_log.append(record)
        return record


def _requested(params: Params) -> dict:
    asked = {
        "gen_ai.request.max_tokens": params.max_tokens,
        "gen_ai.request.temperature": params.temperature,
        "gen_ai.request.top_p": params.top_p,
    }
    return {name: value for name, value in asked.items() if value is not None}


def citations(hits: list[dict]) -> list[dict]:
    return [{name: hit.get(name) for name in CITATION_FIELDS} for hit in hits]

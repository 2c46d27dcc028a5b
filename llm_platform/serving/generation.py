"""Text generation for one request on a worker thread that holds a generation slot only while its token loop runs.

The loop stops at the next token when the request's client goes or its
deadline passes (a transformers stopping criterion reads the request's
`Control`), so a slot is never held by an answer nobody will read. A model that
raises fails only its own request.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from llm_platform.model.decoding import answer_only_decoding
from llm_platform.serving.slots import ClientGone, Control, GenerationFailed, GenerationTimedOut, Slots

log = logging.getLogger("llm_platform.serving")


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int
    temperature: float  # 0: greedy
    top_p: float | None = None


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int


def encode(tokenizer, model, prompt: str, max_new_tokens: int) -> torch.Tensor:
    """Prompt ids (BOS first when the model has one), cut from the front to leave room for the answer."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    room = max(8, getattr(model.config, "max_position_embeddings", 2048) - max_new_tokens - len(bos))
    # The end holds the question and the response marker; the oldest context goes first.
    return torch.tensor([bos + ids[-room:]], device=next(model.parameters()).device)


def _options(tokenizer, sampling: Sampling, prompt_length: int) -> dict:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    chosen: dict[str, object] = {"do_sample": False}
    if sampling.temperature > 0:
        chosen = {
            "do_sample": True,
            "temperature": sampling.temperature,
            **({"top_p": sampling.top_p} if sampling.top_p is not None else {}),
        }
    # Anti-loop penalties on the answer only, as evaluation decodes: a grounded answer may quote its context.
    return {
        "max_new_tokens": sampling.max_new_tokens,
        "pad_token_id": pad,
        "eos_token_id": tokenizer.eos_token_id,
        **answer_only_decoding(prompt_length),
        **chosen,
    }


def _stopping(control: Control):
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopWhenControlled(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), control.stopped(), dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([StopWhenControlled()])


class TokenClock:
    """Between `generate` and its text streamer: counts the new tokens and stamps when the first came (epoch ns)."""

    def __init__(self, streamer) -> None:
        self.streamer, self.new_tokens, self._prompt_seen = streamer, 0, False
        self.first_token_ns: int | None = None

    def put(self, value: torch.Tensor) -> None:
        if self._prompt_seen:  # generate puts the prompt first
            self.first_token_ns = self.first_token_ns or time.time_ns()
            self.new_tokens += int(value.numel())
        self._prompt_seen = True
        self.streamer.put(value)

    def end(self) -> None:
        self.streamer.end()


class GenerationRun:
    """One `model.generate` on its own thread, holding one of `slots` from start to the end of its token loop.

    `on_end(run)` is called on that thread once the loop ended, however it ended (the service ends its trace span
    there).
    """

    def __init__(
        self,
        model,
        tokenizer,
        prompt: str,
        *,
        sampling: Sampling,
        control: Control,
        slots: Slots,
        on_end: Callable[[GenerationRun], None] | None = None,
    ) -> None:
        from transformers import TextIteratorStreamer

        self.model, self.tokenizer, self.control, self.on_end = model, tokenizer, control, on_end
        self.ids = encode(tokenizer, model, prompt, sampling.max_new_tokens)
        self.streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.clock = TokenClock(self.streamer)
        self.options = {
            "input_ids": self.ids,
            "attention_mask": torch.ones_like(self.ids),
            "streamer": self.clock,
            "stopping_criteria": _stopping(control),
            **_options(tokenizer, sampling, int(self.ids.shape[1])),
        }
        self.output: torch.Tensor | None = None
        self.error: str | None = None
        self.done = threading.Event()
        self._slot = slots.acquire(control)
        self._slots = slots
        # Not a daemon: the stopping criterion ends it within a token of its client leaving or its deadline.
        threading.Thread(target=self._work, name="llm-platform-generate").start()

    @property
    def prompt_tokens(self) -> int:
        return int(self.ids.shape[1])

    @property
    def new_tokens(self) -> int:
        """Tokens generated so far (all of them once the loop ended)."""
        return int(self.output.shape[1] - self.ids.shape[1]) if self.output is not None else self.clock.new_tokens

    def _work(self) -> None:
        try:
            with torch.no_grad():
                self.output = self.model.generate(**self.options)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.error(
                "generation failed (the request gets an error, the service keeps serving): %s", self.error, exc_info=exc
            )
            self.streamer.end()
        finally:
            self._slots.release(self._slot)
            try:
                if self.on_end is not None:  # before `done`, so whoever waits for the answer finds the span ended
                    self.on_end(self)
            finally:
                self.done.set()

    def pieces(self) -> Iterator[str]:
        """The answer's text as it is generated; raises GenerationFailed,
        GenerationTimedOut or ClientGone at the end.
        """
        while True:
            try:
                piece = self.streamer.text_queue.get(timeout=self.control.remaining())
            except queue.Empty:
                raise self._timed_out() from None
            if piece is self.streamer.stop_signal:
                break
            yield piece
        self.result()

    def result(self) -> Generation:
        """The whole answer, once the token loop ended; raises as `pieces` does."""
        if not self.done.wait(timeout=self.control.remaining()):
            raise self._timed_out()
        if self.error is not None:
            raise GenerationFailed(f"generation failed ({self.error}); the server log has the details")
        if self.control.cancel.is_set():
            raise ClientGone("the client disconnected; its generation was stopped")
        if self.control.expired():
            raise self._timed_out()
        assert self.output is not None
        new = self.output[0, self.ids.shape[1] :]
        return Generation(
            self.tokenizer.decode(new, skip_special_tokens=True).strip(), self.prompt_tokens, int(new.shape[0])
        )

    def _timed_out(self) -> GenerationTimedOut:
        self.control.cancel.set()  # stop the loop if it is still running
        return GenerationTimedOut(
            "the answer was not complete within "
            "serving.request_timeout_seconds; ask for fewer max_tokens or retry "
            "later"
        )

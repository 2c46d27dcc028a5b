"""Text generation for one request: greedy or sampled, whole or streamed token by token."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import torch

# Small models loop on one token when decoding greedily; evaluation uses the same settings.
_DECODING = {"repetition_penalty": 1.3, "no_repeat_ngram_size": 3}


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


def _options(tokenizer, max_new_tokens: int, temperature: float) -> dict:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
    return {"max_new_tokens": max_new_tokens, "pad_token_id": pad, "eos_token_id": tokenizer.eos_token_id, **_DECODING, **sampling}


@torch.no_grad()
def generate(model, tokenizer, prompt: str, *, max_new_tokens: int, temperature: float) -> Generation:
    """The whole completion of `prompt`."""
    ids = encode(tokenizer, model, prompt, max_new_tokens)
    output = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **_options(tokenizer, max_new_tokens, temperature))
    new = output[0, ids.shape[1]:]
    return Generation(tokenizer.decode(new, skip_special_tokens=True).strip(), int(ids.shape[1]), int(new.shape[0]))


def stream(model, tokenizer, prompt: str, *, max_new_tokens: int, temperature: float) -> tuple[int, Iterator[str]]:
    """(prompt token count, text pieces as they are generated)."""
    from transformers import TextIteratorStreamer

    ids = encode(tokenizer, model, prompt, max_new_tokens)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300)
    options = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "streamer": streamer, **_options(tokenizer, max_new_tokens, temperature)}
    worker = threading.Thread(target=torch.no_grad()(model.generate), kwargs=options, daemon=True)
    worker.start()
    return int(ids.shape[1]), iter(streamer)

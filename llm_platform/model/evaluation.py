"""Quality metrics for a causal LM and for retrieval.

Generation is greedy and batched (left padding) on whatever device the model sits on, its anti-loop penalties on the
answer only (`decoding`); perplexity is measured on response tokens only. Both go through the prompt template the
adapter was trained with (`llm_platform.model.prompts`), so scores of two adapters compare.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import sacrebleu
import torch
from rouge_score import rouge_scorer

from llm_platform.model.batching import collate, encode_example, pad_id_of
from llm_platform.model.decoding import answer_only_decoding
from llm_platform.model.prompts import DEFAULT_PROMPT, PromptTemplate, encode_prompt

_EVAL_BATCH = 8


def _check_paired(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(
            f"got {len(predictions)} predictions but {len(references)} references; they must be paired one to one"
        )
    if not predictions:
        raise ValueError("no predictions to score; the eval split is empty")


def _device_of(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def perplexity(
    model,
    tokenizer,
    examples: Sequence[tuple[str, str]],
    *,
    max_length: int,
    template: PromptTemplate = DEFAULT_PROMPT,
    batch_size: int = _EVAL_BATCH,
) -> float:
    """Return exp(mean negative log-likelihood) of the responses given their prompts."""
    if not examples:
        raise ValueError("perplexity needs at least one (instruction, response) example")
    model.eval()
    rows = [encode_example(tokenizer, q, a, max_length=max_length, template=template) for q, a in examples]
    total_nll, total_tokens = 0.0, 0
    for start in range(0, len(rows), batch_size):
        batch = {
            k: v.to(_device_of(model))
            for k, v in collate(rows[start : start + batch_size], pad_id_of(tokenizer)).items()
        }
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        targets = batch["labels"][:, 1:]
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].float().transpose(1, 2), targets, ignore_index=-100, reduction="sum"
        )
        total_nll += nll.item()
        total_tokens += int((targets != -100).sum())
    return math.exp(total_nll / total_tokens)


def _left_padded(prompts: list[list[int]], pad_id: int, device) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids in prompts)
    input_ids = [[pad_id] * (width - len(ids)) + ids for ids in prompts]
    mask = [[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts]
    return {"input_ids": torch.tensor(input_ids, device=device), "attention_mask": torch.tensor(mask, device=device)}


@torch.no_grad()
def generate_answers(
    model,
    tokenizer,
    instructions: Sequence[str],
    *,
    max_new_tokens: int = 64,
    template: PromptTemplate = DEFAULT_PROMPT,
    contexts: Sequence[Sequence[str]] | None = None,
    batch_size: int = _EVAL_BATCH,
) -> list[str]:
    """Return the greedy completion of each instruction's prompt (with its
    retrieved `contexts`), batched with left padding.
    """
    model.eval()
    answers: list[str] = []
    pad_id = pad_id_of(tokenizer)
    contexts = contexts if contexts is not None else [()] * len(instructions)
    if len(contexts) != len(instructions):
        raise ValueError(
            f"got {len(contexts)} context lists for {len(instructions)} instructions; pass one per instruction"
        )
    room = _prompt_room(model, max_new_tokens)
    for start in range(0, len(instructions), batch_size):
        prompts = [
            _fit(encode_prompt(template, tokenizer, q, contexts=c), room)
            for q, c in zip(
                instructions[start : start + batch_size], contexts[start : start + batch_size], strict=False
            )
        ]
        batch = _left_padded(prompts, pad_id, _device_of(model))
        output = model.generate(
            **batch,
            do_sample=False,
            max_new_tokens=max_new_tokens,
            # Left padding: every prompt of the batch ends where the answers start.
            **answer_only_decoding(batch["input_ids"].shape[1]),
            pad_token_id=pad_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        answers.extend(t.strip() for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    return answers


def _prompt_room(model, max_new_tokens: int) -> int | None:
    limit = getattr(model.config, "max_position_embeddings", None)
    return None if limit is None else max(8, limit - max_new_tokens)


def _fit(prompt: list[int], room: int | None) -> list[int]:
    # Keep the first token (BOS or turn start) and the end, where the question and answer marker are.
    return prompt if room is None or len(prompt) <= room else prompt[:1] + prompt[-(room - 1) :]


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Return the mean ROUGE-L F1 (rouge-score, stemmed) of predictions against references."""
    _check_paired(predictions, references)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references, strict=False)]
    return sum(scores) / len(scores)


def bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Return sacrebleu's corpus BLEU (13a tokenizer) scaled to [0, 1]."""
    _check_paired(predictions, references)
    return sacrebleu.corpus_bleu(list(predictions), [list(references)]).score / 100

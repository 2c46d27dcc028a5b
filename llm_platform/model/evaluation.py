"""Quality metrics for a causal LM and for retrieval.

Generation is greedy and perplexity is measured on response tokens only, both
through the prompt template training uses, so scores of two adapters compare.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import sacrebleu
import torch
from rouge_score import rouge_scorer

from llm_platform.model.training import collate, encode_example, encode_prompt, pad_id_of

_EVAL_BATCH = 8


def _check_paired(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(
            f"got {len(predictions)} predictions but {len(references)} references; "
            "they must be paired one to one"
        )
    if not predictions:
        raise ValueError("no predictions to score; the eval split is empty")


def _device_of(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def perplexity(model, tokenizer, examples: Sequence[tuple[str, str]], *, max_length: int) -> float:
    """Return exp(mean negative log-likelihood) of the responses given their prompts."""
    if not examples:
        raise ValueError("perplexity needs at least one (instruction, response) example")
    model.eval()
    rows = [encode_example(tokenizer, q, a, max_length=max_length) for q, a in examples]
    total_nll, total_tokens = 0.0, 0
    for start in range(0, len(rows), _EVAL_BATCH):
        batch = {k: v.to(_device_of(model)) for k, v in
                 collate(rows[start : start + _EVAL_BATCH], pad_id_of(tokenizer)).items()}
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
    return {"input_ids": torch.tensor(input_ids, device=device),
            "attention_mask": torch.tensor(mask, device=device)}


@torch.no_grad()
def generate_answers(
    model, tokenizer, instructions: Sequence[str], *, max_new_tokens: int = 64
) -> list[str]:
    """Return the greedy completion of each instruction's prompt, batched with left padding."""
    model.eval()
    answers = []
    pad_id = pad_id_of(tokenizer)
    for start in range(0, len(instructions), _EVAL_BATCH):
        prompts = [encode_prompt(tokenizer, q) for q in instructions[start : start + _EVAL_BATCH]]
        batch = _left_padded(prompts, pad_id, _device_of(model))
        output = model.generate(
            **batch,
            do_sample=False,
            max_new_tokens=max_new_tokens,
            # Greedy decoding of small models loops on one token; these keep it deterministic but useful.
            repetition_penalty=1.3,
            no_repeat_ngram_size=3,
            pad_token_id=pad_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        answers.extend(t.strip() for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    return answers


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Return the mean ROUGE-L F1 (rouge-score, stemmed) of predictions against references."""
    _check_paired(predictions, references)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    scores = [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references)]
    return sum(scores) / len(scores)


def bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Return sacrebleu's corpus BLEU (13a tokenizer) scaled to [0, 1]."""
    _check_paired(predictions, references)
    return sacrebleu.corpus_bleu(list(predictions), [list(references)]).score / 100

"""How an (instruction, response) pair becomes a token row, which rows each optimizer step, micro-batch and process
trains on, and how they are padded.

Batches are length-grouped, not packed. Packing several examples into one row
is only correct when attention is kept inside each example, which transformers
does from `position_ids` only with flash-attention kernels (CUDA, optional
wheels); SDPA and eager attention, which every device has, would let packed
examples attend to each other. Grouping by length removes most of the padding
with plain right-padding and an attention mask, so one code path is exact on
CPU and GPU alike, and the padding it saves is measured (`padding_share`).

Everything here is a pure function of (seed, epoch, step), so a resumed run,
or the same run split over more processes, trains on exactly the same batches.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from llm_platform.model.prompts import DEFAULT_PROMPT, PromptTemplate, encode_prompt

IGNORE = -100
# Examples are sorted by length within windows of this many batches (the multiplier
# transformers' `group_by_length` uses): batches of like lengths, yet shuffled across the epoch.
GROUP_WINDOW_BATCHES = 50


def epoch_batches(
    lengths: Sequence[int], batch_size: int, *, seed: int, epoch: int, group_by_length: bool
) -> list[list[int]]:
    """Return the epoch's batches as lists of example indices: every example exactly once."""
    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if not group_by_length:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    window = batch_size * GROUP_WINDOW_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        grouped = sorted(order[start : start + window], key=lambda i: -lengths[i])
        batches += [grouped[i : i + batch_size] for i in range(0, len(grouped), batch_size)]
    longest = max(range(len(batches)), key=lambda b: lengths[batches[b][0]])
    first = batches.pop(longest)
    rng.shuffle(batches)
    # The longest batch goes first, so a batch that does not fit in memory fails at step 1, not hours in.
    return [first, *batches]


def micro_batches(batch: Sequence[int], lengths: Sequence[int], parts: int) -> list[list[int]]:
    """Split one optimizer step's batch into `parts` micro-batches of like lengths (some empty when it is small)."""
    ordered = sorted(batch, key=lambda i: -lengths[i])
    size, extra = divmod(len(ordered), parts)
    chunks, start = [], 0
    for part in range(parts):
        end = start + size + (1 if part < extra else 0)
        chunks.append(ordered[start:end])
        start = end
    return chunks


def rank_micro_batches(chunks: Sequence[list[int]], rank: int, world_size: int) -> list[list[int]]:
    """The micro-batches process `rank` runs: every world_size-th one, so long and short ones are shared out."""
    return [list(chunk) for chunk in chunks[rank::world_size]]


def label_tokens(labels: Sequence[int]) -> int:
    """Tokens that carry loss: causal LMs predict position t+1 from t, so the first label never counts."""
    return sum(1 for label in labels[1:] if label != IGNORE)


def collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict:
    """Right-pad (input_ids, labels) rows into a batch with an attention mask; padding carries no loss."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    batch: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
    for ids, labels in rows:
        gap = width - len(ids)
        batch["input_ids"].append(ids + [pad_id] * gap)
        batch["attention_mask"].append([1] * len(ids) + [0] * gap)
        batch["labels"].append(labels + [IGNORE] * gap)
    return {key: torch.tensor(value, dtype=torch.long) for key, value in batch.items()}


def encode_example(
    tokenizer, instruction: str, response: str, *, max_length: int, template: PromptTemplate = DEFAULT_PROMPT
) -> tuple[list[int], list[int]]:
    """Return (input_ids, labels) with prompt positions masked to -100 in labels."""
    prompt = encode_prompt(template, tokenizer, instruction)
    budget = max_length - max_length // 4
    if len(prompt) > budget:
        # Keep the first token (BOS) and the end (the response marker); a quarter stays for the answer.
        prompt = prompt[:1] + prompt[-(budget - 1) :]
    answer = tokenizer(response.strip(), add_special_tokens=False)["input_ids"]
    answer = ([*answer, tokenizer.eos_token_id])[: max_length - len(prompt)]
    return prompt + answer, [IGNORE] * len(prompt) + answer


def pad_id_of(tokenizer) -> int:
    """Return the padding id, falling back to EOS for models that define no pad token."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

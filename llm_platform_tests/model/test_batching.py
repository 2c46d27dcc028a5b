"""Batch plans: every example once per epoch, like lengths together, splits that cover the batch."""

from __future__ import annotations

import random

from llm_platform.model.batching import IGNORE, collate, epoch_batches, label_tokens, micro_batches, rank_micro_batches

_RNG = random.Random(3)
LENGTHS = [_RNG.randint(10, 200) for _ in range(403)]


def _padding(batches: list[list[int]], lengths: list[int]) -> int:
    return sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in batches)


def test_each_epoch_trains_on_every_example_once():
    for group in (True, False):
        batches = epoch_batches(LENGTHS, 8, seed=1, epoch=0, group_by_length=group)
        assert sorted(i for b in batches for i in b) == list(range(len(LENGTHS)))
        assert len(batches) == 51 and sum(len(b) == 8 for b in batches) == 50


def test_length_grouping_cuts_padding_by_most_of_it():
    grouped = epoch_batches(LENGTHS, 8, seed=1, epoch=0, group_by_length=True)
    shuffled = epoch_batches(LENGTHS, 8, seed=1, epoch=0, group_by_length=False)
    assert _padding(grouped, LENGTHS) < 0.2 * _padding(shuffled, LENGTHS)


def test_the_longest_batch_comes_first_so_memory_runs_out_at_step_one():
    batches = epoch_batches(LENGTHS, 8, seed=1, epoch=2, group_by_length=True)
    assert max(LENGTHS[i] for i in batches[0]) == max(LENGTHS)


def test_batches_are_a_function_of_seed_and_epoch():
    plan = lambda seed, epoch: epoch_batches(LENGTHS, 8, seed=seed, epoch=epoch, group_by_length=True)
    assert plan(1, 0) == plan(1, 0)
    assert plan(1, 0) != plan(1, 1) and plan(1, 0) != plan(2, 0)


def test_micro_batches_split_the_batch_evenly_by_length():
    batch = list(range(10))
    lengths = [5, 50, 7, 40, 9, 30, 11, 20, 13, 10]
    chunks = micro_batches(batch, lengths, 4)
    assert [len(c) for c in chunks] == [3, 3, 2, 2]
    assert sorted(i for c in chunks for i in c) == batch
    assert chunks[0] == [1, 3, 5]


def test_a_batch_smaller_than_its_split_leaves_empty_micro_batches():
    assert micro_batches([4, 2], [1, 2, 3, 4, 5], 4) == [[4], [2], [], []]


def test_processes_share_out_micro_batches_without_overlap():
    chunks = [[0], [1], [2], [3], [4], [5]]
    mine = [rank_micro_batches(chunks, rank, 2) for rank in (0, 1)]
    assert mine == [[[0], [2], [4]], [[1], [3], [5]]]


def test_label_tokens_skip_the_first_position_which_nothing_predicts():
    assert label_tokens([7, IGNORE, 8, 9]) == 2
    assert label_tokens([IGNORE, IGNORE, 8, 9]) == 2


def test_padding_carries_no_loss_and_no_attention():
    batch = collate([([1, 2, 3], [IGNORE, 2, 3]), ([4], [4])], pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 2, 3], [4, IGNORE, IGNORE]]

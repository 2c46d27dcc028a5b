"""Decoding penalties see the answer only: a grounded answer may quote its prompt, an answer may not loop on itself."""

from __future__ import annotations

import math

import torch
from transformers import NoRepeatNGramLogitsProcessor

from llm_platform.model.decoding import REPETITION_PENALTY, answer_only_penalties

PROMPT = [5, 6, 7, 8, 9]  # a retrieved chunk "5 6 7 ..." in the prompt
VOCAB = 12


def _scores_after(prompt: list[int], answer: list[int]) -> torch.Tensor:
    ids = torch.tensor([prompt + answer])
    return answer_only_penalties(len(prompt))(ids, torch.ones(1, VOCAB))[0]


def test_transformers_alone_bans_quoting_a_trigram_of_the_prompt():
    # The reason for answer_only_penalties: applied to the whole sequence, the 3-gram ban forbids quoting the context.
    scores = NoRepeatNGramLogitsProcessor(3)(torch.tensor([[*PROMPT, 5, 6]]), torch.ones(1, VOCAB))[0]

    assert scores[7] == -math.inf


def test_an_answer_may_quote_a_trigram_of_its_prompt():
    scores = _scores_after(PROMPT, [5, 6])

    assert scores[7] > -math.inf


def test_an_answer_may_not_repeat_its_own_trigram():
    scores = _scores_after(PROMPT, [1, 2, 3, 1, 2])

    assert scores[3] == -math.inf


def test_the_repetition_penalty_falls_on_answer_tokens_not_prompt_tokens():
    scores = _scores_after(PROMPT, [1])

    assert scores[1] == torch.tensor(1 / REPETITION_PENALTY) and scores[9] == 1.0

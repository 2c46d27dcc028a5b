"""Decoding penalties see the answer only: a grounded answer may quote its prompt, an answer may not loop on itself."""

from __future__ import annotations

import math

import torch
from transformers import NoRepeatNGramLogitsProcessor

from llm_platform.model.decoding import REPETITION_PENALTY, answer_only_decoding, answer_only_penalties

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


def _first_step_scores(options: dict) -> torch.Tensor:
    """First-token scores of a tiny Llama whose own generation_config bans any repeated token."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=16,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    model = LlamaForCausalLM(config).eval()
    model.generation_config.no_repeat_ngram_size = 1  # as a base model may ship it: on the prompt too
    prompt = torch.arange(16)[None]  # every token id appears in the prompt
    out = model.generate(
        prompt,
        max_new_tokens=1,
        do_sample=False,
        pad_token_id=0,
        return_dict_in_generate=True,
        output_scores=True,
        **options,
    )
    return out.scores[0][0]


def test_a_base_models_own_penalties_would_fall_on_the_prompt():
    assert torch.isinf(_first_step_scores({})).all()


def test_answer_only_decoding_turns_the_base_models_own_penalties_off():
    assert torch.isfinite(_first_step_scores(answer_only_decoding(16))).all()

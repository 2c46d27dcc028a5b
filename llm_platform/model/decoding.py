"""How answers are decoded: greedy with anti-loop penalties on the answer's own tokens, never on the prompt's.

Small models decoding greedily loop on one token, so a repetition penalty and a
ban on repeated 3-grams keep their answers useful. transformers applies both to
every id in the sequence, the prompt included; for a retrieval-augmented prompt
that forbids quoting the retrieved chunks (any 3-gram of the context is banned)
and penalizes every word of the question, which is what a grounded answer must
use. Here they see only the tokens generated after the prompt.
"""

from __future__ import annotations

REPETITION_PENALTY = 1.3
NO_REPEAT_NGRAM_SIZE = 3


def answer_only_penalties(prompt_length: int):
    """Logits processors for `generate`: the repetition penalty and the
    3-gram ban over ids after `prompt_length` only.
    """
    from transformers import (
        LogitsProcessor,
        LogitsProcessorList,
        NoRepeatNGramLogitsProcessor,
        RepetitionPenaltyLogitsProcessor,
    )

    class OnAnswer(LogitsProcessor):
        def __init__(self, inner) -> None:
            self.inner = inner

        def __call__(self, input_ids, scores):
            return self.inner(input_ids[:, prompt_length:], scores)

    return LogitsProcessorList(
        [
            OnAnswer(RepetitionPenaltyLogitsProcessor(REPETITION_PENALTY)),
            OnAnswer(NoRepeatNGramLogitsProcessor(NO_REPEAT_NGRAM_SIZE)),
        ]
    )


def answer_only_decoding(prompt_length: int) -> dict:
    """`generate` options for the answer-only penalties, with the model's own whole-sequence ones turned off.

    A base model's generation_config may set its own repetition penalty or n-gram ban
    (several instruct models ship `repetition_penalty: 1.1`); transformers would apply
    it to the prompt as well, on top of these, so the explicit neutral values win.
    """
    return {
        "logits_processor": answer_only_penalties(prompt_length),
        "repetition_penalty": 1.0,
        "no_repeat_ngram_size": 0,
    }

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

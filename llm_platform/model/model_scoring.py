"""Scores of one model on the eval split; every number here depends on the model.

Plain answers give perplexity, ROUGE-L and BLEU; retrieval-augmented answers
(the top-k chunks of the served index in the prompt, as the service asks) give
rag_rouge_l and rag_bleu. How good the index is (hit rate, MRR) is
retrieval_eval's business, not the model's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from llm_platform.index.access import ReaderGroups
from llm_platform.index.table import search
from llm_platform.model.evaluation import bleu, generate_answers, perplexity, rouge_l
from llm_platform.model.prompts import PromptTemplate


def generation_scores(
    model,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    *,
    max_length: int,
    max_new_tokens: int,
    template: PromptTemplate,
    contexts: Sequence[Sequence[str]] | None = None,
    batch_size: int = 8,
) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Perplexity on the references, ROUGE-L/BLEU of greedy answers and, given `contexts`, of RAG answers."""
    questions, references = [q for q, _ in pairs], [a for _, a in pairs]
    answers = {
        "plain": generate_answers(
            model, tokenizer, questions, max_new_tokens=max_new_tokens, template=template, batch_size=batch_size
        )
    }
    scores = {
        "perplexity": perplexity(
            model, tokenizer, pairs, max_length=max_length, template=template, batch_size=batch_size
        ),
        "rouge_l": rouge_l(answers["plain"], references),
        "bleu": bleu(answers["plain"], references),
    }
    if contexts is not None:
        answers["rag"] = generate_answers(
            model,
            tokenizer,
            questions,
            contexts=contexts,
            max_new_tokens=max_new_tokens,
            template=template,
            batch_size=batch_size,
        )
        scores |= {"rag_rouge_l": rouge_l(answers["rag"], references), "rag_bleu": bleu(answers["rag"], references)}
    return scores, answers


def retrieved_contexts(
    table, questions: Sequence[str], encode: Callable[[list[str]], np.ndarray], *, k: int, max_chars: int
) -> list[list[str]]:
    """For each question, the text of the served index's top-k chunks (vector
    search, as the service does), each cut to `max_chars`.
    """
    if not questions:
        return []
    vectors = encode(list(questions))
    # Evaluation reads every row; a caller's groups are the service's business.
    return [
        [hit["text"][:max_chars] for hit in search(table, q, v, mode="vector", k=k, readers=ReaderGroups.everyone())]
        for q, v in zip(questions, vectors, strict=False)
    ]

"""Scores of one model on the eval split: perplexity, ROUGE-L, BLEU; retrieval on the index."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from llm_platform.index.retrieval import retrieval_metrics
from llm_platform.index.table import ranked_ids
from llm_platform.model.evaluation import bleu, generate_answers, perplexity, rouge_l


def generation_scores(model, tokenizer, pairs: Sequence[tuple[str, str]], *, max_length: int, max_new_tokens: int) -> tuple[dict[str, float], list[str]]:
    """Perplexity on the references and ROUGE-L/BLEU of greedy answers; also returns the answers."""
    answers = generate_answers(model, tokenizer, [q for q, _ in pairs], max_new_tokens=max_new_tokens)
    references = [a for _, a in pairs]
    scores = {
        "perplexity": perplexity(model, tokenizer, pairs, max_length=max_length),
        "rouge_l": rouge_l(answers, references),
        "bleu": bleu(answers, references),
    }
    return scores, answers


def retrieval_scores(table, questions: Sequence[str], chunk_ids: Sequence[str], encode: Callable[[list[str]], np.ndarray], *, k: int) -> dict[str, float]:
    """Hit rate@k and MRR@k of the served index on questions whose source chunk is known."""
    if not questions:
        return {}
    ranked = ranked_ids(table, list(questions), encode(list(questions)), k=k, field="chunk_id")
    hit_rate, mrr = retrieval_metrics(ranked, list(chunk_ids), k=k)
    return {"retrieval_hit_rate": hit_rate, "retrieval_mrr": mrr}

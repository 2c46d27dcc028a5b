"""Retrieval quality of a table version on questions whose answer document is known.

Questions come from the chunks themselves: a chunk's section heading (or its
document's title) is the question and its document is the right answer. That is
weaker than human-written questions, but it is deterministic, costs nothing, and
moves when chunking, embedding or index writes break.

The overall score searches as everyone. Per reader group, each group is asked
the questions whose answer document it may read, searching as that group, so a
group whose documents are crowded out (or filtered away) shows up by name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from llm_platform.index.access import ReaderGroups
from llm_platform.index.table import QueryTuning, ranked_ids
from llm_platform.readers import EVERYONE

_MIN_QUESTION_WORDS = 2


def retrieval_metrics(ranked: Sequence[Sequence[str]], relevant: Sequence[str], *, k: int) -> tuple[float, float]:
    """Return (hit_rate@k, MRR@k): ranked[i] is query i's result ids, relevant[i] its answer id."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if len(ranked) != len(relevant):
        raise ValueError(f"got {len(ranked)} rankings but {len(relevant)} relevant ids; pair them one to one")
    if not ranked:
        return 0.0, 0.0
    hits, reciprocal_ranks = 0, 0.0
    for results, answer in zip(ranked, relevant, strict=False):
        top = list(results[:k])
        if answer in top:
            hits += 1
            reciprocal_ranks += 1.0 / (top.index(answer) + 1)
    return hits / len(ranked), reciprocal_ranks / len(ranked)


@dataclass(frozen=True)
class RetrievalQuestion:
    """A query and the document that answers it."""

    question: str
    doc_id: str
    readers: tuple[str, ...] = ()


@dataclass(frozen=True)
class RetrievalScore:
    """Hit rate and MRR at k of one table version."""

    version: int
    hit_rate: float
    mrr: float
    k: int
    questions: int


def questions_from_chunks(rows: Sequence[dict], *, limit: int) -> list[RetrievalQuestion]:
    """One question per document with an informative heading or title, chosen deterministically."""
    seen: set[str] = set()
    questions = []
    for row in sorted(rows, key=lambda r: hashlib.sha256(r["chunk_id"].encode()).hexdigest()):
        text = (row.get("heading") or row.get("title") or "").strip().strip("#").strip()
        if row["doc_id"] in seen or len(text.split()) < _MIN_QUESTION_WORDS:
            continue
        seen.add(row["doc_id"])
        questions.append(
            RetrievalQuestion(question=text, doc_id=row["doc_id"], readers=tuple(row.get("readers") or ()))
        )
        if len(questions) >= limit:
            break
    return questions


def score_table(
    table,
    questions: Sequence[RetrievalQuestion],
    encode: Callable[[list[str]], np.ndarray],
    *,
    k: int,
    tuning: QueryTuning | None = None,
    readers: ReaderGroups,
) -> RetrievalScore:
    """Hit rate and MRR of `table` (already checked out at the version to score), searching as `readers`."""
    if not questions:
        return RetrievalScore(version=table.version, hit_rate=0.0, mrr=0.0, k=k, questions=0)
    texts = [q.question for q in questions]
    ranked = ranked_ids(table, texts, encode(texts), k=k, tuning=tuning, readers=readers)
    hit_rate, mrr = retrieval_metrics(ranked, [q.doc_id for q in questions], k=k)
    return RetrievalScore(version=table.version, hit_rate=hit_rate, mrr=mrr, k=k, questions=len(questions))


def reader_groups_of(questions: Sequence[RetrievalQuestion]) -> list[str]:
    """Every group named by the questions' documents, and `*` (a caller in no group) when any is public."""
    return sorted({group for q in questions for group in q.readers})


def score_by_reader_group(
    table,
    questions: Sequence[RetrievalQuestion],
    encode: Callable[[list[str]], np.ndarray],
    *,
    k: int,
    tuning: QueryTuning | None = None,
) -> dict[str, RetrievalScore]:
    """Per group (`*`: a caller in no group), the score on the questions whose document it may read, searching as it."""
    texts = [q.question for q in questions]
    vectors = dict(zip(texts, encode(texts), strict=True)) if texts else {}

    def encoded(asked: list[str]) -> np.ndarray:
        return np.stack([vectors[text] for text in asked])

    scores = {}
    for group in reader_groups_of(questions):
        caller = ReaderGroups.public_only() if group == EVERYONE else ReaderGroups.of({group})
        asked = [q for q in questions if caller.can_read(q.readers)]
        scores[group] = score_table(table, asked, encoded, k=k, tuning=tuning, readers=caller)
    return scores

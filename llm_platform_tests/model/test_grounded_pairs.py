"""Grounded corpus pairs: a training pair asked again with its own chunk as
context, in the RAG prompt's format, never for an eval chunk.
"""

from __future__ import annotations

from llm_platform.model.prompts import DEFAULT_PROMPT, format_prompt
from llm_platform.model.sft import pairs_from_chunks
from llm_platform.model.sft_build import build_sft, grounded_pair

CHUNK_TEXT = (
    "A list comprehension builds a list from an iterable in one expression. "
    "It can filter items with an if clause and nest several for clauses. "
) * 3
CHUNKS = [(f"chunk-{i}", "Python tutorial", f"Topic number {i}", f"{i}: {CHUNK_TEXT}") for i in range(60)]


def _build(grounding_chars: int | None):
    return build_sft(
        CHUNKS, [], [], eval_fraction=0.25, min_feedback_rating=4, max_corpus_pairs=100, grounding_chars=grounding_chars
    )


def test_a_grounded_pair_is_prompted_exactly_as_a_rag_question_with_its_chunk():
    pair = pairs_from_chunks(CHUNKS[:1])[0]

    grounded = grounded_pair(pair, CHUNKS[0][3], max_chars=50)

    rag_prompt = format_prompt(DEFAULT_PROMPT, pair.instruction, contexts=[CHUNKS[0][3][:50]])
    assert format_prompt(DEFAULT_PROMPT, grounded.instruction) == rag_prompt
    assert (grounded.response, grounded.reference) == (pair.response, pair.reference)


def test_every_training_corpus_pair_gets_one_grounded_copy_in_training():
    plain, grounded = _build(None), _build(40)

    added = [r for r in grounded.train if r["instruction"].startswith("Answer using the context below.")]
    assert sorted(r["reference"] for r in added) == sorted(r["reference"] for r in plain.train)
    assert len(grounded.train) == 2 * len(plain.train)


def test_grounding_never_adds_to_the_eval_split_nor_grounds_an_eval_chunk():
    plain, grounded = _build(None), _build(40)

    assert grounded.eval == plain.eval and plain.eval, "the test needs eval pairs to be meaningful"
    eval_chunks = {r["reference"] for r in plain.eval}
    assert not eval_chunks & {r["reference"] for r in grounded.train}


def test_without_grounding_chars_no_pair_carries_context():
    built = _build(None)

    assert not [r for r in built.train + built.eval if "Context:" in r["instruction"]]

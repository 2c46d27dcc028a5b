"""SFT pairs: identity, splits, corpus questions, curated and feedback files."""

from __future__ import annotations

import json
import random

import pytest

from llm_platform.model.sft import (
    MAX_RESPONSE_CHARS,
    SftPair,
    dedupe_pairs,
    pair_hash,
    pairs_from_chunks,
    read_curated_pairs,
    read_feedback,
    split_of,
)
from llm_platform_tests.model.conftest import DEMO_SFT

LONG_TEXT = (
    "A list comprehension builds a list from an iterable in one expression. "
    "It can filter items with an if clause and nest several for clauses. "
) * 3


def _demo(name: str) -> tuple[str, bytes]:
    path = DEMO_SFT / name
    return str(path), path.read_bytes()


def _all_demo_pairs() -> list[SftPair]:
    curated, _ = read_curated_pairs(*_demo("curated.jsonl"))
    feedback, _ = read_feedback(*_demo("feedback.jsonl"), min_rating=1)
    chunks = [(f"chunk-{i}", "Python tutorial", f"Topic number {i}", LONG_TEXT) for i in range(50)]
    return curated + feedback + pairs_from_chunks(chunks)


def test_pair_hash_ignores_whitespace_and_case_but_not_content():
    assert pair_hash("What is a set?", "A set holds unique items.") == pair_hash(
        "  what is a  SET?\n", "A set holds\tunique items."
    )
    assert pair_hash("What is a set?", "A set holds unique items.") != pair_hash(
        "What is a set?", "A set holds hashable items."
    )


def test_split_is_deterministic_and_near_the_requested_fraction():
    hashes = [pair_hash(f"question {i}", f"answer {i}") for i in range(2000)]
    splits = [split_of(h, eval_fraction=0.2) for h in hashes]
    assert splits == [split_of(h, eval_fraction=0.2) for h in hashes]
    assert 0.16 < splits.count("eval") / len(splits) < 0.24
    assert {split_of(h, eval_fraction=0.0) for h in hashes} == {"train"}


def test_eval_pairs_never_appear_in_training_pairs():
    pairs = _all_demo_pairs()
    # Near-duplicates (case and spacing) and a shuffled order must not move a pair across splits.
    variants = [SftPair(p.instruction.upper() + "  ", p.response, p.quality, p.origin, p.reference) for p in pairs]
    everything = pairs + variants
    random.Random(7).shuffle(everything)
    split = {"train": set(), "eval": set()}
    for pair in everything:
        split[split_of(pair.hash, eval_fraction=0.25)].add(pair.hash)
    assert split["eval"], "the test needs some eval pairs to be meaningful"
    assert not split["train"] & split["eval"]


def test_split_rejects_a_fraction_outside_zero_to_one():
    with pytest.raises(ValueError, match="eval_fraction"):
        split_of(pair_hash("a question", "an answer"), eval_fraction=1.5)


def test_dedupe_keeps_the_highest_quality_copy():
    low = SftPair("What is a tuple?", "An immutable sequence.", 0.4, "feedback", "f#L1")
    high = SftPair("what is a tuple?", "An immutable  sequence.", 0.9, "curated", "c#L3")
    assert dedupe_pairs([low, high]) == [high]


def test_chunk_heading_becomes_the_question_and_text_the_answer():
    [pair] = pairs_from_chunks([("c1", "Python tutorial", "## List comprehensions", LONG_TEXT)])
    assert "List comprehensions" in pair.instruction
    assert pair.response == LONG_TEXT.strip()
    assert (pair.origin, pair.reference) == ("corpus", "c1")


def test_chunk_questions_vary_but_are_stable_per_chunk():
    chunks = [(f"c{i}", None, f"Section about feature {i}", LONG_TEXT) for i in range(20)]
    first, second = pairs_from_chunks(chunks), pairs_from_chunks(chunks)
    assert [p.instruction for p in first] == [p.instruction for p in second]
    templates = {p.instruction.replace(f"Section about feature {i}", "X") for i, p in enumerate(first)}
    assert len(templates) >= 3


def test_chunks_without_heading_or_title_or_with_tiny_text_give_no_pair():
    chunks = [("c1", None, None, LONG_TEXT), ("c2", "Title", "Heading here", "Too short.")]
    assert pairs_from_chunks(chunks) == []


def test_generic_heading_falls_back_to_the_title_with_lower_quality():
    informative, generic = pairs_from_chunks(
        [("c1", "Pathlib guide", "Joining paths safely", LONG_TEXT), ("c2", "Pathlib guide", "Overview", LONG_TEXT)]
    )
    assert "Pathlib guide" in generic.instruction
    assert 0.0 <= generic.quality < informative.quality <= 1.0


def test_long_chunks_are_cut_at_a_sentence_end():
    text = " ".join(f"Sentence number {i} explains one more detail." for i in range(100))
    [pair] = pairs_from_chunks([("c1", None, "Many details here", text)])
    assert len(pair.response) <= MAX_RESPONSE_CHARS
    assert pair.response.endswith("detail.")


def test_curated_demo_file_reports_its_two_bad_lines_by_path_and_line():
    path, data = _demo("curated.jsonl")
    pairs, messages = read_curated_pairs(path, data)
    assert len(pairs) == 40
    assert len(messages) == 2
    assert messages[0].startswith(f"{path}:21: not valid JSON")
    assert messages[1].startswith(f"{path}:31: ") and "too short" in messages[1]


def test_curated_pairs_carry_quality_and_a_line_reference():
    data = (
        b'{"instruction": "What is a generator?", "response": "A lazy iterator."}\n\n'
        b'{"instruction": "What is a decorator?", "response": "A wrapper.", "quality": 0.5}\n'
    )
    pairs, messages = read_curated_pairs("c.jsonl", data)
    assert messages == []
    assert [(p.quality, p.reference, p.origin) for p in pairs] == [
        (0.9, "c.jsonl#L1", "curated"),
        (0.5, "c.jsonl#L3", "curated"),
    ]


def test_curated_quality_out_of_range_is_a_message_not_an_exception():
    data = json.dumps({"instruction": "What is a set?", "response": "Unique items.", "quality": 3}).encode()
    pairs, messages = read_curated_pairs("c.jsonl", data)
    assert pairs == [] and messages == ['c.jsonl:1: "quality" must be a number in [0, 1], got 3']


def test_undecodable_file_is_a_message_naming_the_file():
    pairs, messages = read_curated_pairs("bad.jsonl", b"\xff\xfe\x00bad")
    assert pairs == [] and "bad.jsonl" in messages[0] and "UTF-8" in messages[0]


def test_feedback_keeps_ratings_at_or_above_the_minimum_with_quality_from_rating():
    path, data = _demo("feedback.jsonl")
    pairs, messages = read_feedback(path, data, min_rating=4)
    assert len(pairs) == 13 and len(messages) == 7
    assert {p.quality for p in pairs} == {0.8, 1.0}
    assert all("below min_rating 4" in m for m in messages)


def test_feedback_with_an_invalid_rating_is_reported():
    data = b'{"question": "How do I sort a list?", "answer": "Use sorted().", "rating": "5"}\n'
    pairs, messages = read_feedback("fb.jsonl", data)
    assert pairs == [] and messages[0].startswith('fb.jsonl:1: "rating" must be an integer')

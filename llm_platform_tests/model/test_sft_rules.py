"""SFT rules on records as supplied: quarantine with file, line and rule; shares per rule."""

from __future__ import annotations

import json

from llm_platform.config import SFT_RULE_NAMES
from llm_platform.model.sft_build import build_sft
from llm_platform.model.sft_rules import (
    FIELDS_PRESENT,
    INSTRUCTION_CHARS,
    INSTRUCTION_LENGTH,
    NO_DUPLICATES,
    NO_PII,
    QUALITY_RANGE_RULE,
    RESPONSE_LENGTH,
    RULE_DESCRIPTIONS,
    check_supplied,
)

GOOD = {"instruction": "What does the with statement do?", "response": "It wraps a block in a context manager."}


def _jsonl(*records) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records).encode()


def _broken_file() -> bytes:
    return _jsonl(
        GOOD,
        {"instruction": "Short?", "response": "Long enough answer."},
        {"instruction": "What is a list in Python?", "response": "Ok"},
        {"instruction": "What is a tuple in Python?", "response": "An immutable sequence.", "quality": 0.2},
        {"instruction": "Who maintains this page?", "response": "Write to jane.doe@example.com for help."},
        GOOD,
        {"response": "No question at all."},
        "{not json",
    )


def test_each_broken_record_is_quarantined_with_file_line_and_rule():
    pairs, report = check_supplied([("curated", "curated/bad.jsonl", _broken_file())], min_feedback_rating=4)
    found = {(v.line, v.rule) for v in report.violations}
    assert found == {
        (2, INSTRUCTION_LENGTH),
        (3, RESPONSE_LENGTH),
        (4, QUALITY_RANGE_RULE),
        (5, NO_PII),
        (6, NO_DUPLICATES),
        (7, FIELDS_PRESENT),
        (8, FIELDS_PRESENT),
    }
    assert all(v.file == "curated/bad.jsonl" for v in report.violations)
    assert [p.reference for p in pairs] == ["curated/bad.jsonl#L1"] and report.supplied == 8
    assert report.share(FIELDS_PRESENT) == 2 / 8
    assert (
        next(v for v in report.violations if v.line == 5)
        .message()
        .startswith("curated/bad.jsonl:5: no_pii: contains PII (email)")
    )


def test_feedback_below_the_minimum_rating_is_filtered_not_a_violation():
    data = _jsonl(
        {"question": "What is a generator?", "answer": "A lazy iterator.", "rating": 2},
        {"question": "What is a coroutine?", "answer": "An awaitable function.", "rating": 5},
        {"question": "What is a decorator?", "answer": "A wrapper.", "rating": 9},
    )
    pairs, report = check_supplied([("feedback", "fb.jsonl", data)], min_feedback_rating=4)
    assert [p.instruction for p in pairs] == ["What is a coroutine?"]
    assert [(v.line, v.rule) for v in report.violations] == [(3, FIELDS_PRESENT)]
    assert [f.message for f in report.filtered] == ["fb.jsonl:1: rating 2 is below sft.min_feedback_rating 4"]


def test_build_reports_supplied_violations_before_filtering():
    built = build_sft(
        [], [("curated/bad.jsonl", _broken_file())], [], eval_fraction=0.2, min_feedback_rating=4, max_corpus_pairs=0
    )
    assert built.report.count(NO_PII) == 1 and len(built.train) + len(built.eval) == 1
    assert any(m.message.startswith("curated/bad.jsonl:5: no_pii") for m in built.set_aside)


def test_rule_names_carry_no_limits_and_every_rule_describes_its_own():
    assert [rule for rule in SFT_RULE_NAMES if any(ch.isdigit() for ch in rule)] == []
    assert list(RULE_DESCRIPTIONS) == list(SFT_RULE_NAMES)
    assert f"{INSTRUCTION_CHARS[0]} to {INSTRUCTION_CHARS[1]}" in RULE_DESCRIPTIONS[INSTRUCTION_LENGTH]


def test_a_placed_pair_of_any_origin_below_the_quality_range_is_set_aside():
    # Rated 2 passes a minimum rating of 1, but its quality (2 / 5) is below the quality rule's range.
    data = _jsonl({"question": "What is a generator?", "answer": "A lazy iterator.", "rating": 2})
    built = build_sft([], [], [("fb.jsonl", data)], eval_fraction=0.2, min_feedback_rating=1, max_corpus_pairs=0)
    assert built.train == [] and built.report.violations == []
    assert [m for m in built.set_aside if "quality_range: quality 0.4 outside 0.6..1.0" in m.message] != []

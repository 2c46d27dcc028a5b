"""SFT rules on records as supplied: quarantine with file, line and rule; shares per rule."""

from __future__ import annotations

import json

from llm_platform.model.sft_build import build_sft
from llm_platform.model.sft_rules import FIELDS_PRESENT, INSTRUCTION_LENGTH, NO_DUPLICATES, NO_PII, QUALITY_RANGE_RULE, RESPONSE_LENGTH, check_supplied

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
    assert found == {(2, INSTRUCTION_LENGTH), (3, RESPONSE_LENGTH), (4, QUALITY_RANGE_RULE), (5, NO_PII), (6, NO_DUPLICATES),
                     (7, FIELDS_PRESENT), (8, FIELDS_PRESENT)}
    assert all(v.file == "curated/bad.jsonl" for v in report.violations)
    assert [p.reference for p in pairs] == ["curated/bad.jsonl#L1"] and report.supplied == 8
    assert report.share(FIELDS_PRESENT) == 2 / 8
    assert next(v for v in report.violations if v.line == 5).message().startswith("curated/bad.jsonl:5: no_pii: contains PII (email)")


def test_feedback_below_the_minimum_rating_is_filtered_not_a_violation():
    data = _jsonl({"question": "What is a generator?", "answer": "A lazy iterator.", "rating": 2},
                  {"question": "What is a coroutine?", "answer": "An awaitable function.", "rating": 5},
                  {"question": "What is a decorator?", "answer": "A wrapper.", "rating": 9})
    pairs, report = check_supplied([("feedback", "fb.jsonl", data)], min_feedback_rating=4)
    assert [p.instruction for p in pairs] == ["What is a coroutine?"]
    assert [(v.line, v.rule) for v in report.violations] == [(3, FIELDS_PRESENT)]
    assert report.filtered == ["fb.jsonl:1: rating 2 is below sft.min_feedback_rating 4"]


def test_build_reports_supplied_violations_before_filtering():
    built = build_sft([], [("curated/bad.jsonl", _broken_file())], [], eval_fraction=0.2, min_feedback_rating=4, max_corpus_pairs=0)
    assert built.report.count(NO_PII) == 1 and len(built.train) + len(built.eval) == 1
    assert any(m.startswith("curated/bad.jsonl:5: no_pii") for m in built.set_aside)

"""Rules tallied batch by batch: a bad row in any batch fails the rule, and ids repeated across batches count."""

from __future__ import annotations

import pyarrow as pa

from llm_platform.documents.corpus import CleaningRules
from llm_platform.documents.stage_checks import ChunkRowChecks, CleanedRowChecks, frame
from llm_platform.rules import RuleTally, UniqueTally, text_length_within

RULES = CleaningRules(min_chars=10, min_quality=0.5, near_duplicate_threshold=0.85, max_chars=1_000, min_record_chars=5)


def ids(*values) -> object:
    return frame([{"doc_id": v} for v in values], ["doc_id"])


def test_rule_fails_on_a_bad_row_in_a_later_batch():
    tally = RuleTally(text_length_within(1, 100))
    tally.add(frame([{"text": "fine"}], ["text"]))
    tally.add(frame([{"text": "also fine"}, {"text": " "}], ["text"]))
    assert not tally.outcome.passed and tally.outcome.failures == 1


def test_rule_passes_when_every_batch_holds_it():
    tally = RuleTally(text_length_within(1, 100))
    for text in ("one", "two", "three"):
        tally.add(frame([{"text": text}], ["text"]))
    assert tally.outcome.passed and tally.outcome.failures == 0


def test_failure_examples_stay_few_however_many_batches_fail():
    tally = RuleTally(text_length_within(5, 100))
    for _ in range(20):
        tally.add(frame([{"text": "no"}], ["text"]))
    assert tally.outcome.failures == 20 and len(tally.outcome.examples) == 5


def test_id_repeated_in_another_batch_fails_uniqueness():
    tally = UniqueTally("doc_id")
    tally.add(ids("a", "b"))
    tally.add(ids("c", "a"))
    assert not tally.outcome.passed and tally.outcome.failures == 1 and tally.outcome.examples == ["a"]


def test_distinct_ids_over_batches_pass_uniqueness():
    tally = UniqueTally("doc_id")
    for batch in (("a", "b"), ("c",), ("d", "e")):
        tally.add(ids(*batch))
    assert tally.outcome.passed


def test_missing_id_fails_uniqueness():
    tally = UniqueTally("doc_id")
    tally.add(ids("a", None))
    assert not tally.outcome.passed


def _cleaned(doc_id: str, text: str, fmt: str = "txt", quality: float = 0.9) -> dict:
    return {
        "doc_id": doc_id,
        "format": fmt,
        "text": text,
        "quality": quality,
        "title": None,
        "locator": f"{doc_id}.{fmt}",
    }


def test_cleaned_checks_fail_on_length_quality_and_pii_in_later_batches():
    checks = CleanedRowChecks(RULES, min_quality=0.5)
    checks.observe(pa.Table.from_pylist([_cleaned("a", "a long enough text")]))
    checks.observe(
        pa.Table.from_pylist([_cleaned("b", "short"), _cleaned("c", "mail alice@example.com now", quality=0.1)])
    )
    assert [checks.length.failures, checks.quality.outcome.failures, checks.no_pii.outcome.failures] == [1, 1, 1]
    assert checks.ids.outcome.passed


def test_chunk_token_check_fails_on_a_later_batch():
    checks = ChunkRowChecks(max_tokens=10)
    checks.observe(
        pa.Table.from_pylist(
            [{"chunk_id": "a", "text": "x", "token_count": 5}],
            schema=pa.schema([("chunk_id", pa.string()), ("text", pa.string()), ("token_count", pa.int32())]),
        )
    )
    checks.observe(
        pa.Table.from_pylist(
            [{"chunk_id": "b", "text": "y", "token_count": 11}],
            schema=pa.schema([("chunk_id", pa.string()), ("text", pa.string()), ("token_count", pa.int32())]),
        )
    )
    assert not checks.tokens.outcome.passed and checks.text.outcome.passed and checks.ids.outcome.passed


def test_a_generic_rule_shows_its_examples_as_they_are():
    tally = RuleTally(text_length_within(100, 200))
    tally.add(frame([{"text": "mail alice@example.com"}], ["text"]))
    assert tally.outcome.examples == ["mail alice@example.com"]


def test_a_rule_with_masked_examples_shows_every_example_through_its_mask():
    tally = UniqueTally("doc_id", shown=str.upper)
    tally.add(ids("a", "b"))
    tally.add(ids("a"))
    assert tally.outcome.examples == ["A"]


def test_document_length_failures_never_show_the_pii_in_the_text():
    checks = CleanedRowChecks(RULES, min_quality=0.5)
    checks.observe(pa.Table.from_pylist([_cleaned("a", "bo@ex.com")]))
    assert checks.length.failures == 1 and checks.length.examples == ["[REDACTED_EMAIL]"]

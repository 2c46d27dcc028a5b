"""Honest document checks: rates over records, a partition on every result, empty and missing sources named."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import pytest

from llm_platform.documents.assets import (
    RAW_QUARANTINE_RATE,
    RAW_SOURCE_NOT_EMPTY,
    listing_failure,
    source_not_empty_check,
)
from llm_platform.documents.corpus import CleaningRules
from llm_platform.documents.listing import GlobOutsideSourceError
from llm_platform.documents.stage_checks import text_length_outcome
from llm_platform_tests.conftest import materialize

FAQ_RECORDS = 30


def evaluation(result: dg.ExecuteInProcessResult, check: str) -> dg.AssetCheckEvaluation:
    return next(
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_key.to_user_string() == "raw_documents" and e.check_name == check
    )


@pytest.fixture(scope="module")
def faq_run(new_platform):
    """The docs source as one JSONL export with one bad line among its records."""
    platform = new_platform("faq_checks")
    docs = platform.corpus("docs")
    lines = [
        json.dumps({"text": f"Answer {i}: open the settings page and change option {i}."}) for i in range(FAQ_RECORDS)
    ]
    lines.insert(5, "{not json")
    shutil.rmtree(docs)
    docs.mkdir()
    (docs / "faq.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return platform, materialize(platform, ["raw_documents"], "docs")


def test_one_bad_jsonl_line_is_one_record_of_many(faq_run):
    _, result = faq_run
    rate = evaluation(result, RAW_QUARANTINE_RATE)
    assert rate.passed and (rate.metadata["count"].value, rate.metadata["total"].value) == (1, FAQ_RECORDS + 1)


def test_every_check_result_carries_its_partition(faq_run):
    _, result = faq_run
    assert {e.partition for e in result.get_asset_check_evaluations()} == {"docs"}


def test_source_whose_glob_matches_nothing_warns(new_platform):
    platform = new_platform("empty_source")
    for path in platform.corpus("notes").iterdir():
        path.unlink()
    check = evaluation(materialize(platform, ["raw_documents"], "notes"), RAW_SOURCE_NOT_EMPTY)
    assert check.passed is False and check.severity == dg.AssetCheckSeverity.WARN
    assert "no file" in check.description and "'*.md'" in check.description


def test_source_with_files_passes_the_not_empty_check(faq_run):
    _, result = faq_run
    assert evaluation(result, RAW_SOURCE_NOT_EMPTY).passed


def test_missing_folder_fails_naming_source_config_key_and_path(new_platform):
    platform = new_platform("missing_folder")
    shutil.rmtree(platform.corpus("notes"))
    result = materialize(platform, ["raw_documents"], "notes", raise_on_error=False)
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.user_failure_data.description
    assert "source 'notes'" in message and "sources[1].location" in message and str(platform.corpus("notes")) in message
    assert str(platform.config_path) in message


def test_not_empty_check_fails_on_zero_files(new_platform):
    source = new_platform("empty_unit").config.source("notes")
    assert source_not_empty_check(0, source).passed is False and source_not_empty_check(3, source).passed


def test_glob_outside_the_source_fails_naming_the_config_key(new_platform):
    platform = new_platform("glob_escape")
    source = platform.config.source("notes")
    failure = listing_failure(
        platform.config, source, GlobOutsideSourceError("glob '../x/*.md' reaches outside the source folder")
    )
    assert "sources[1].glob" in failure.description and failure.allow_retries is False


RULES = CleaningRules(
    min_chars=80, min_quality=0.35, near_duplicate_threshold=0.85, max_chars=1000, min_record_chars=20
)
ANSWER = "Press Reset password in Settings."


def test_length_check_holds_records_to_the_record_minimum():
    assert text_length_outcome([{"format": "jsonl", "text": ANSWER}], RULES).passed
    assert not text_length_outcome([{"format": "txt", "text": ANSWER}], RULES).passed


def test_length_check_fails_on_a_document_over_the_maximum():
    outcome = text_length_outcome(
        [{"format": "md", "text": "word " * 50}, {"format": "md", "text": "word " * 300}], RULES
    )
    assert (outcome.passed, outcome.failures) == (False, 1)

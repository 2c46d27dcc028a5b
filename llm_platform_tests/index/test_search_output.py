"""What a search hit says to a person: each score labelled, and a snippet of prose rather than markup."""

from __future__ import annotations

import pytest

from llm_platform.index.hits import hit_line, snippet
from llm_platform.index.table import connect, open_table, search, sync_source
from llm_platform_tests.index.tables import DIMENSION, SETTINGS, rows, unit_vector


@pytest.fixture
def table(tmp_path):
    table = open_table(connect(str(tmp_path / "lancedb")), "chunks__test", DIMENSION)
    sync_source(table, "docs", rows("docs", ["with", "for", "while", "class", "global"]), settings=SETTINGS)
    return table


def test_hybrid_hits_carry_vector_similarity_and_keyword_score_beside_the_fused_score(table):
    best = search(table, "for statement", unit_vector("docs-for"), mode="hybrid", k=5)[0]
    assert best["chunk_id"] == "docs-for"
    assert best["similarity"] == pytest.approx(1.0, abs=1e-4)  # the query vector is this chunk's own vector
    assert best["keyword"] > 0 and 0 < best["score"] < 0.1  # BM25 and the fused rank score are different numbers


def test_vector_hits_report_similarity_and_no_keyword_score(table):
    best = search(table, "for", unit_vector("docs-for"), mode="vector", k=1)[0]
    assert best["similarity"] == pytest.approx(1.0, abs=1e-4) and best["keyword"] is None


def test_full_text_hits_report_the_keyword_score_and_no_similarity(table):
    best = search(table, "for statement", None, mode="fts", k=1)[0]
    assert best["keyword"] > 0 and best["similarity"] is None


def test_a_hybrid_hit_line_labels_the_fused_similarity_and_keyword_scores():
    hit = {
        "score": 0.0328,
        "similarity": 0.8123,
        "keyword": 4.25,
        "source": "docs",
        "title": "for",
        "heading": None,
        "locator": "for.md",
        "text": "The for statement",
    }
    assert hit_line(1, hit).splitlines()[0] == " 1. [fused 0.033 | similarity 0.812 | keyword (BM25) 4.25] docs: for"


def test_a_hit_line_shows_a_missing_score_as_a_dash():
    hit = {
        "score": 0.016,
        "similarity": None,
        "keyword": 2.0,
        "source": "docs",
        "title": "for",
        "heading": None,
        "locator": "for.md",
        "text": "x",
    }
    assert "similarity -" in hit_line(2, hit)


def test_snippet_skips_bare_code_fences_and_blank_lines():
    assert snippet("```\n\n```python\nimport this\n```\n\nThe Zen of Python.") == "import this The Zen of Python."


def test_snippet_of_only_fences_is_empty():
    assert snippet("```\n```") == ""


def test_snippet_is_cut_to_its_width():
    assert len(snippet("word " * 100, width=40)) == 40

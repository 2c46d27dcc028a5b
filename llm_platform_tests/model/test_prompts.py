"""Prompt templates: versioned by content, one function formats every prompt."""

from __future__ import annotations

import pytest

from llm_platform.config import DEFAULT_PROMPT_TEMPLATE
from llm_platform.model.prompts import (
    CONFIGURED,
    PromptTemplate,
    encode_prompt,
    format_prompt,
    make_template,
    read_template,
    template_for,
    write_template,
)


def test_version_follows_the_text():
    first, same = make_template(CONFIGURED, DEFAULT_PROMPT_TEMPLATE), make_template(CONFIGURED, DEFAULT_PROMPT_TEMPLATE)
    changed = make_template(CONFIGURED, "Q: {instruction}\nA: ")
    assert first.version == same.version != changed.version and len(first.version) == 12


def test_a_template_whose_version_does_not_match_its_text_is_rejected():
    real = make_template(CONFIGURED, DEFAULT_PROMPT_TEMPLATE)
    with pytest.raises(ValueError, match="does not match"):
        PromptTemplate(CONFIGURED, "Q: {instruction}\nA: ", real.version)


def test_a_configured_template_without_the_placeholder_is_rejected():
    with pytest.raises(ValueError, match=r"\{instruction\}"):
        make_template(CONFIGURED, "no placeholder here")


def test_configured_template_formats_the_instruction_and_numbered_contexts():
    template = make_template(CONFIGURED, "Q: {instruction}\nA: ")
    assert format_prompt(template, "  What is a set? ") == "Q: What is a set?\nA: "
    rag = format_prompt(template, "What is a set?", contexts=["Sets are unordered.", "Sets hash."])
    assert (
        "[1] Sets are unordered." in rag and "[2] Sets hash." in rag and rag.endswith("Question: What is a set?\nA: ")
    )


def test_tokenizer_without_chat_template_gets_the_configured_one(tiny_base):
    from llm_platform.model.base_model import load_base_tokenizer

    tokenizer = load_base_tokenizer(tiny_base.path)
    template = template_for(tokenizer, "Q: {instruction}\nA: ")
    assert (template.kind, template.text) == (CONFIGURED, "Q: {instruction}\nA: ")
    ids = encode_prompt(template, tokenizer, "What is a set?")
    assert ids[0] == tokenizer.bos_token_id and tokenizer.decode(ids[1:]) == "Q: What is a set?\nA: "


def test_chat_template_needs_the_tokenizer_to_render(tmp_path):
    template = make_template("chat_template", "{{ messages[0]['content'] }}")
    with pytest.raises(ValueError, match="pass the model's tokenizer"):
        format_prompt(template, "What is a set?")
    write_template(template, str(tmp_path))
    assert read_template(str(tmp_path)) == template

"""Serving formats prompts through the template training and evaluation use."""

from __future__ import annotations

from llm_platform.model.training import PROMPT_TEMPLATE, format_prompt as training_prompt
from llm_platform.serving.model_source import default_template, format_prompt


def test_serving_template_is_the_training_template():
    assert default_template().text == PROMPT_TEMPLATE


def test_a_question_without_context_gets_exactly_the_training_prompt():
    assert format_prompt(default_template(), "  What is a dict? ") == training_prompt("What is a dict?")


def test_retrieved_passages_are_numbered_inside_the_instruction_with_the_question_last():
    prompt = format_prompt(default_template(), "What is a dict?", contexts=["A dict maps\nkeys.", "Keys are hashable."])

    assert prompt.startswith("### Instruction:\nContext:\n[1] A dict maps keys.\n[2] Keys are hashable.")
    assert prompt.endswith("Question: What is a dict?\n\n### Response:\n")

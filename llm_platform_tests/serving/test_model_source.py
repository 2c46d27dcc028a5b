"""Serving formats prompts through the function training and evaluation use."""

from __future__ import annotations

from llm_platform.config import DEFAULT_PROMPT_TEMPLATE
from llm_platform.model import prompts
from llm_platform.serving import model_source


def test_serving_formats_prompts_with_the_model_packages_one_prompt_function():
    assert model_source.format_prompt is prompts.format_prompt


def test_a_question_without_context_gets_exactly_the_training_prompt():
    template = prompts.make_template(prompts.CONFIGURED, DEFAULT_PROMPT_TEMPLATE)
    assert model_source.format_prompt(template, "What is a dict?") == prompts.format_prompt(template, "What is a dict?")


def test_retrieved_passages_reach_the_prompt_before_the_question():
    template = prompts.make_template(prompts.CONFIGURED, DEFAULT_PROMPT_TEMPLATE)
    prompt = model_source.format_prompt(
        template, "What is a dict?", contexts=["A dict maps keys.", "Keys are hashable."]
    )

    assert prompt.index("A dict maps keys.") < prompt.index("Keys are hashable.") < prompt.index("What is a dict?")

"""Values spelled twice until llm_platform/model/ imports them from below (another branch edits that package now).

TO BE REMOVED with the duplicates (issue 19): each test keeps the two spellings equal meanwhile.
"""

from __future__ import annotations

from llm_platform.config import DEFAULT_PROMPT_TEMPLATE, PromptSettings
from llm_platform.home_layout import FEEDBACK, SFT_APPROVALS, under
from llm_platform.model import prompts
from llm_platform.model.feedback import approvals_location, feedback_folder


def test_the_configured_prompt_default_is_the_one_the_model_package_uses():
    assert PromptSettings().template == DEFAULT_PROMPT_TEMPLATE == prompts.DEFAULT_TEMPLATE


def test_feedback_is_read_from_the_folder_the_layout_names():
    assert feedback_folder("/data/home") == under("/data/home", FEEDBACK)


def test_approvals_default_to_the_file_the_layout_names():
    assert approvals_location(None, "/data/home") == under("/data/home", SFT_APPROVALS)

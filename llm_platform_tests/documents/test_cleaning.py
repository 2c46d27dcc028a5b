from pathlib import Path
from pydoc_data.topics import topics

import pytest

import llm_platform
from llm_platform.documents.cleaning import clean_document, cleaning_version, normalize_text, quality_score
from llm_platform.documents.html_text import html_to_text

HANDBOOK = Path(llm_platform.__file__).parent / "demo" / "corpus" / "handbook"


def demo_text(name: str, encoding: str = "utf-8") -> str:
    return (HANDBOOK / name).read_text(encoding=encoding)


@pytest.fixture(scope="module")
def while_page() -> str:
    return html_to_text(demo_text("while.html"))


@pytest.mark.parametrize(
    "furniture", ["Home", "Teams", "Skip to content", "cookies", "Copyright", "Terms of use", "In this section"]
)
def test_html_navigation_is_dropped(while_page, furniture):
    assert furniture not in while_page


def test_html_main_content_is_kept(while_page):
    assert "This repeatedly tests the expression" in while_page


def test_html_headings_survive_as_markdown(while_page):
    assert while_page.startswith('# The "while" statement')


def test_html_without_main_content_falls_back_to_tag_strip():
    assert html_to_text("<p>short</p><script>var tracking = 1;</script>") == "short"


def test_markup_without_elements_gives_empty_text():
    assert html_to_text("<!-- only a comment -->") == ""


def test_mojibake_is_repaired():
    text = normalize_text(demo_text("objects.txt"))
    assert "Python's abstraction" in text and "â€" not in text


def test_windows_and_old_mac_newlines_become_unix_newlines():
    assert normalize_text("one\r\ntwo\rthree") == "one\ntwo\nthree"


def test_runs_of_spaces_collapse_inside_lines():
    assert normalize_text("a   b \t c\td") == "a b c d"


def test_leading_indentation_is_kept():
    assert normalize_text("code:\n\n    if x:\n        y()") == "code:\n\n    if x:\n        y()"


def test_blank_line_runs_are_capped_at_two():
    assert normalize_text("a\n\n\n\n\n\nb") == "a\n\n\nb"


def test_trailing_spaces_are_stripped():
    assert normalize_text("a   \nb\t\n") == "a\nb"


@pytest.mark.parametrize(
    "line",
    [
        "Copyright 2024 Acme Corp.",
        "© 2023 Example Ltd",
        "Acme Corp. All rights reserved.",
        "Skip to content",
        "We use cookies to improve your experience.",
        "Accept all cookies",
        "Cookie policy",
    ],
)
def test_boilerplate_line_is_removed(line):
    assert normalize_text(f"Real content.\n{line}\nMore content.") == "Real content.\nMore content."


def test_prose_mentioning_copyright_is_kept():
    text = (
        "The copyright of this text belongs to its authors, who licensed it under the terms described below in detail, "
        * 2
    )
    assert normalize_text(text) == text.strip()


def test_line_repeated_many_times_is_removed():
    text = "\n".join(f"Paragraph number {i} has content.\nBack to top" for i in range(6))
    assert "Back to top" not in normalize_text(text)


def test_repeated_indented_code_line_is_kept():
    text = "\n".join(f"Step {i}:\n    return result" for i in range(6))
    assert normalize_text(text).count("    return result") == 6


def test_documentation_prose_scores_high():
    assert quality_score(topics["comparisons"]) > 0.9


def test_very_short_text_scores_low():
    assert quality_score("ok") < 0.1


def test_symbol_soup_scores_low():
    assert quality_score(" ".join(["{}()[]<>=+-*/"] * 100)) < 0.1


def test_text_of_repeated_lines_scores_low():
    assert quality_score("\n".join(["Buy cheap watches online now today"] * 50)) < 0.1


def test_empty_text_scores_zero():
    assert quality_score("   ") == 0.0


def test_quality_stays_within_unit_interval():
    assert all(0.0 <= quality_score(text) <= 1.0 for text in topics.values())


def test_clean_document_redacts_pii_and_counts_it():
    cleaned = clean_document(demo_text("oncall-contacts.md"), fmt="md", title="On-call contacts")
    assert "jane.doe@example.com" not in cleaned.text and "[REDACTED_EMAIL]" in cleaned.text
    assert cleaned.pii_counts == {"email": 2, "phone": 2, "ip_address": 2, "credit_card": 1, "api_key": 1}


def test_clean_document_redacts_pii_in_title():
    cleaned = clean_document("Body text.", fmt="txt", title="Notes from jane@example.com")
    assert cleaned.title == "Notes from [REDACTED_EMAIL]" and cleaned.pii_counts == {"email": 1}


def test_clean_document_converts_html_to_main_text():
    cleaned = clean_document(demo_text("while.html"), fmt="html", title=None)
    assert "<p>" not in cleaned.text and "Accept all cookies" not in cleaned.text


def test_boilerplate_only_file_is_nearly_empty_after_cleaning():
    cleaned = clean_document(demo_text("status.md"), fmt="md", title=None)
    assert cleaned.text == "ok"


README = Path(__file__).parent / "readmes" / "quickparse.md"
LINK_HEAVY_README = "\n".join(
    f"- [Setup {i}](https://docs.example.org/en/latest/reference/configuration/section-{i}.html) and "
    f"[API {i}](https://docs.example.org/en/latest/api/module-{i}.html#module-{i}) cover step {i} of the guide."
    for i in range(12)
)


def test_link_heavy_readme_scores_on_its_prose_not_its_urls():
    assert quality_score(LINK_HEAVY_README) < 0.35  # the raw markup: long URLs push mean word length over 10
    assert clean_document(LINK_HEAVY_README, fmt="md", title=None).quality >= 0.8


def test_markdown_is_cleaned_as_prose():
    cleaned = clean_document(README.read_text(encoding="utf-8"), fmt="md", title=None)
    assert (
        cleaned.text.startswith("# quickparse\n\nquickparse reads configuration files") and "<img" not in cleaned.text
    )


def test_readme_opening_with_html_heading_gets_its_title():
    assert clean_document(README.read_text(encoding="utf-8"), fmt="md", title=None).title == "quickparse"


def test_short_record_is_not_held_to_the_page_length_rule():
    answer = "Open Settings, choose Account and press Reset password; a link arrives by email within a minute."
    assert quality_score(answer, fmt="jsonl") == 1.0
    assert quality_score(answer, fmt="txt") < 0.35


def test_cleaning_version_names_renderer_cleaner_and_pii_detector(monkeypatch):
    from llm_platform.documents import pii

    before = cleaning_version()
    monkeypatch.setattr(pii, "DETECTOR_VERSION", "test-next")
    assert cleaning_version() != before and "pii-test-next" in cleaning_version()

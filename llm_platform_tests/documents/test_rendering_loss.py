"""Rendering never cuts a document silently: deep nesting renders whole, and prose that lost the text is reported."""

from pathlib import Path

import pytest

from llm_platform.documents import rendering
from llm_platform.documents.render_loss import MIN_KEPT_SHARE, loss_reason, visible_chars
from llm_platform.documents.rendering import MARKDOWN_MAX_NESTING, render_document

READMES = Path(__file__).parent / "readmes"
AFTER_THE_LIST = "\n\nA closing paragraph after the list.\n\n## Section\n\nText of the section.\n"


def nested_list(levels: int) -> str:
    return "".join("  " * depth + f"- item at level {depth}\n" for depth in range(levels))


def test_markdown_list_nested_ten_levels_keeps_the_paragraph_and_section_after_it():
    rendered = render_document(nested_list(10) + AFTER_THE_LIST, "md")
    assert "item at level 9" in rendered.prose
    assert rendered.prose.endswith("A closing paragraph after the list.\n\n## Section\n\nText of the section.")
    assert rendered.lost is None


def test_markdown_nested_past_the_parser_limit_is_reported_lost_not_cut_silently():
    rendered = render_document(nested_list(MARKDOWN_MAX_NESTING) + AFTER_THE_LIST, "md")
    assert "Text of the section." not in rendered.prose  # the parser does drop it, which is why it is reported
    assert rendered.lost is not None and f"{MARKDOWN_MAX_NESTING // 2} levels" in rendered.lost


def test_rst_nested_too_deep_for_docutils_is_reported_lost_not_raised():
    deep = "".join("  " * depth + f"- item at level {depth}\n\n" for depth in range(400)) + "After the list.\n"
    rendered = render_document(deep, "rst")
    assert rendered.lost is not None and "nested too deeply" in rendered.lost


def test_renderer_that_drops_most_of_the_text_is_reported_lost(monkeypatch):
    text = (READMES / "quickparse.md").read_text(encoding="utf-8")
    monkeypatch.setattr(rendering._MarkdownProse, "text", lambda prose: prose.blocks[0])  # a renderer that stops early
    rendered = render_document(text, "md")
    assert rendered.lost is not None and "Markdown" in rendered.lost and f"under {MIN_KEPT_SHARE:.0%}" in rendered.lost


@pytest.mark.parametrize("name, fmt", [("quickparse.md", "md"), ("signals.rst", "rst")])
def test_real_readmes_with_badges_and_links_render_without_loss(name, fmt):
    assert render_document((READMES / name).read_text(encoding="utf-8"), fmt).lost is None


def test_visible_text_leaves_out_urls_tags_badges_and_directive_lines():
    markup = (
        "[![build](https://ci.example.org/badge.svg)](https://ci.example.org)\n"
        '<p align="center">Hi</p>\n'
        ".. |docs| image:: https://example.org/docs.svg\n"
        "   :target: https://example.org/docs\n"
        "[guide]: https://example.org/guide\n"
    )
    assert visible_chars(markup) == len("Hi")


@pytest.mark.parametrize("fmt", ["txt", "html", "jsonl"])
def test_formats_without_a_source_text_measure_are_not_judged(fmt):
    # HTML loses navigation and footers by design; txt and JSONL are not rendered.
    assert render_document("<nav>" + "menu entry " * 50 + "</nav><p>Short.</p>", fmt).lost is None


def test_letters_and_digits_are_counted_as_str_isalnum_counts_them_for_every_code_point():
    from llm_platform.documents.render_loss import _letters_and_digits

    every_code_point = "".join(chr(point) for point in range(0x110000) if not 0xD800 <= point <= 0xDFFF)
    assert _letters_and_digits(every_code_point) == sum(1 for char in every_code_point if char.isalnum())


def letters_and_digits(text: str) -> int:
    return sum(char.isalnum() for char in text)


URL_HEAVY = "See " + " ".join(f"https://example.org/{'x' * 200}/{n}" for n in range(10)) + " for the words here."
KEPT_SHARE_CASES = {
    "prose keeps everything": ("Some words and more words.", "Some words and more words."),
    "prose keeps under half": ("word " * 100, "word " * 40),
    "prose keeps half of the visible text but little of the URLs' letters": (URL_HEAVY, "See for the words here."),
    "prose keeps under half of the visible text among URLs": (URL_HEAVY, "See"),
    "markup with no letters": ("<br> ![](x.png)", ""),
}


@pytest.mark.parametrize("name", sorted(KEPT_SHARE_CASES))
def test_loss_verdict_is_the_share_of_visible_letters_kept(name):
    markup, prose = KEPT_SHARE_CASES[name]
    visible = visible_chars(markup)
    lost = visible > 0 and letters_and_digits(prose) < MIN_KEPT_SHARE * visible
    assert (loss_reason(markup, prose, "Markdown") is not None) == lost

"""Each format rendered to prose: real READMEs (HTML openings, badge rows, references) and what comes out."""

from pathlib import Path

import pytest

from llm_platform.documents.chunking import find_headings
from llm_platform.documents.html_text import html_fragment_to_text, html_to_text
from llm_platform.documents.rendering import markdown_to_text, render_document, render_prose
from llm_platform.documents.rst_text import rst_to_text

READMES = Path(__file__).parent / "readmes"

QUICKPARSE_PROSE = """\
# quickparse

quickparse reads configuration files into typed Python objects. See the documentation or the changelog.

## Installation

Install it from PyPI:

```console
$ pip install quickparse
```

## Usage

1. Declare a class.
2. Call quickparse.load() with the path.

Questions go to the discussion board."""

SIGNALS_PROSE = """\
signals
=======

Introduction
------------

A project to manage callbacks in asyncio projects. Read the user guide and the aiohttp documentation for \
examples; signals.freeze stops changes.

Installation
~~~~~~~~~~~~

    $ pip install signals

- Python 3.9 or newer.

- No other dependency."""


def readme(name: str) -> str:
    return (READMES / name).read_text(encoding="utf-8")


def test_markdown_readme_opening_with_html_and_badges_renders_to_its_prose():
    assert markdown_to_text(readme("quickparse.md")) == QUICKPARSE_PROSE


def test_rst_readme_with_badges_and_substitutions_renders_to_its_prose():
    assert rst_to_text(readme("signals.rst")) == SIGNALS_PROSE


@pytest.mark.parametrize(
    "markup",
    ["<h1", "<p", "<img", "](", "https://", "[license]:", "badge", "![", "**", ".. image::", "|docs|", ":func:"],
)
@pytest.mark.parametrize("name, fmt", [("quickparse.md", "md"), ("signals.rst", "rst")])
def test_no_markup_survives_rendering(name, fmt, markup):
    assert markup not in render_prose(readme(name), fmt)


def test_html_heading_inside_markdown_is_a_section_heading_for_chunking():
    headings = find_headings(markdown_to_text(readme("quickparse.md")), "md")
    assert [(h.level, h.title) for h in headings] == [(1, "quickparse"), (2, "Installation"), (2, "Usage")]


def test_rst_section_titles_stay_headings_for_chunking():
    headings = find_headings(rst_to_text(readme("signals.rst")), "rst")
    assert [(h.level, h.title) for h in headings] == [(1, "signals"), (2, "Introduction"), (3, "Installation")]


def test_comment_inside_fenced_code_is_not_a_heading():
    prose = markdown_to_text("# Title\n\n```python\n# not a heading\nx = 1\n```\n")
    assert [h.title for h in find_headings(prose, "md")] == ["Title"]


def test_markdown_link_keeps_its_text_and_drops_its_target():
    assert markdown_to_text("Read [the guide](https://example.org/guide) today.") == "Read the guide today."


def test_markdown_table_becomes_rows_of_cells():
    assert markdown_to_text("| name | role |\n|---|---|\n| Ada | author |\n") == "name | role\nAda | author"


def test_unknown_sphinx_directive_keeps_its_body():
    text = "Title\n=====\n\n.. versionadded:: 2.0\n   The freeze method.\n"
    assert "The freeze method." in rst_to_text(text)


def test_rst_never_reads_files_it_names(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not include me", encoding="utf-8")
    assert "do not include me" not in rst_to_text(f".. include:: {secret}\n\nBody text.\n")


def test_broken_rst_still_renders_its_text():
    assert "Some text" in rst_to_text("Title\n===\n\nSome text with `unclosed markup\n")


def test_html_fragment_drops_images_and_keeps_link_text():
    html = (
        '<p align="center"><a href="https://x.org"><img src="b.svg" alt="build"></a> '
        'Read <a href="https://x.org/docs">the docs</a>.</p>'
    )
    assert html_fragment_to_text(html) == "Read the docs."


def test_deeply_nested_html_cleans_to_its_text():
    page = (
        "<html><body>"
        + "<div>" * 100_000
        + "<p>The text at the bottom of a very deep page.</p>"
        + "</div>" * 100_000
        + "</body></html>"
    )
    assert html_to_text(page) == "The text at the bottom of a very deep page."


def test_html_page_text_keeps_underscores_unescaped():
    page = (
        "<html><body><article><p>"
        + "Set the value of max_retries in the client settings before calling it. " * 4
        + "</p></article></body></html>"
    )
    assert "max_retries" in html_to_text(page) and "max\\_retries" not in html_to_text(page)


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "pdf"])
def test_formats_without_markup_are_unchanged(fmt):
    assert render_prose("Plain *text* with [brackets](x).", fmt) == "Plain *text* with [brackets](x)."


DEPLOY_GUIDE_PROSE = """\
# Deploying the service

The service runs as one container behind a load balancer. Build the image with
`make image`, push it to your registry and apply the manifest in
the k8s folder.

## Configuration

Every setting is read from the environment at start-up; a missing required setting stops the container with \
a message naming it. The defaults suit a single replica.

- Set `SERVICE_PORT` to the port the load balancer targets.
- Set `SERVICE_WORKERS` to the number of CPU cores."""


def test_html_docs_page_renders_to_its_main_content():
    # Header, nav, cookie banner, image and footer go; the line breaks inside a <p> stay, unindented.
    assert html_to_text(readme("deploy-guide.html")) == DEPLOY_GUIDE_PROSE


def test_markdown_inline_script_and_style_contents_are_dropped():
    text = "Text <script>steal(document.cookie)</script> more <STYLE>p {color: red}</STYLE> and <span>kept</span>."
    assert " ".join(markdown_to_text(text).split()) == "Text more and kept."  # spaces are tidied by cleaning


def test_markdown_self_closed_inline_script_keeps_the_text_after_it():
    assert " ".join(markdown_to_text('Load <script src="app.js"/> then read on.').split()) == "Load then read on."


def test_dunder_identifiers_in_markdown_prose_keep_their_underscores():
    text = markdown_to_text(
        "A container defines __contains__() for `in`; __init__ sets it up and __init__.py marks the package."
    )
    assert text == "A container defines __contains__() for in; __init__ sets it up and __init__.py marks the package."


def test_markdown_emphasis_around_words_still_renders_as_plain_text():
    assert (
        markdown_to_text("This is **important**, __very much__ so, and _not_ optional.")
        == "This is important, very much so, and not optional."
    )


@pytest.mark.parametrize("language", ["python", "no-such-language"])
def test_rst_code_blocks_keep_their_code_verbatim_whatever_the_language(language):
    code = "def area(r):\n\n    return 3.14 * r ** 2  # circle\n"
    text = f"Compute it:\n\n.. code:: {language}\n\n" + "".join(
        f"   {line}\n" if line else "\n" for line in code.splitlines()
    )
    assert rst_to_text(text) == "Compute it:\n\n    def area(r):\n\n        return 3.14 * r ** 2  # circle"


def test_a_reference_defined_in_one_markdown_document_does_not_resolve_in_the_next():
    # The parser is built once per process; each parse must still start from nothing.
    render_document("See [the guide][g].\n\n[g]: https://example.com/guide\n", "md")
    assert render_document("See [the guide][g].\n", "md").prose == "See [the guide][g]."

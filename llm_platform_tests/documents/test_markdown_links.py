"""Link targets are normalized only where markdown-it could refuse them; the prose is what full normalization gives."""

from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.common.normalize_url import normalizeLink, validateLink

from llm_platform.documents.rendering import MARKDOWN_MAX_NESTING, _link_target_to_validate, _prose_of, markdown_to_text
from llm_platform_tests.conftest import installed_readmes

READMES = Path(__file__).parent / "readmes"

TARGETS = [
    "https://example.org/a b?q=1#x",
    "https://例え.jp/パス",
    "http://[::1]:8080/",
    "mailto:someone@example.org",
    "//javascript:alert(1)",
    "#anchor",
    "/relative/path",
    "",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "\u00a0javascript:alert(1)",
    "\x00javascript:alert(1)",
    "java%73cript:alert(1)",
    "x.javascript:alert(1)",
    "ｊａｖａｓｃｒｉｐｔ:alert(1)",
    "vbscript:msgbox",
    "file:///etc/passwd",
    "FILE:///etc/passwd",
    "data:text/html,<b>x</b>",
    "data:image/png;base64,AAAA",
    "DATA:IMAGE/PNG;base64,AAAA",
    "data:image@x/png;base64,AAAA",
    "data:image/svg+xml;base64,AAAA",
]

TRICKY_PARAGRAPHS = [
    "[run](javascript:alert(1)) and [file](file:///etc/passwd) and [ok](https://example.org)",
    "[Caps](JAVASCRIPT:x) [spaced](< javascript:x>) [img ref][pic] [bad ref][bad]",
    "![badge](data:image/png;base64,AAAA) ![svg](data:image/svg+xml;base64,AAAA) [html](data:text/html,x)",
    "<javascript:alert(1)> <https://example.org/auto> <mailto:a@example.org> <someone@example.org>",
    "[pic]: data:image/gif;base64,AAAA\n[bad]: vbscript:msgbox\n[good]: https://例え.jp",
    "[good] and [bad] and [pic]",
]
TRICKY_MARKDOWN = "\n\n".join(TRICKY_PARAGRAPHS)


def installed_markdown_readmes() -> dict[str, str]:
    return installed_readmes("text/markdown")


def fully_normalized_prose(text: str) -> str:
    parser = MarkdownIt("commonmark", {"maxNesting": MARKDOWN_MAX_NESTING}).enable(["table", "strikethrough"])
    return _prose_of(parser.parse(text))


@pytest.mark.parametrize("target", TARGETS)
def test_link_target_gets_the_verdict_its_normalized_form_gets(target):
    assert validateLink(_link_target_to_validate(normalizeLink, target)) == validateLink(normalizeLink(target))


def test_markdown_with_refused_and_odd_link_targets_renders_as_with_full_normalization():
    assert markdown_to_text(TRICKY_MARKDOWN) == fully_normalized_prose(TRICKY_MARKDOWN)


def test_markdown_readme_fixture_renders_as_with_full_normalization():
    text = (READMES / "quickparse.md").read_text(encoding="utf-8")
    assert markdown_to_text(text) == fully_normalized_prose(text)


def test_every_installed_markdown_readme_renders_as_with_full_normalization():
    readmes = installed_markdown_readmes()
    assert readmes, "no installed package describes itself in Markdown; this test would prove nothing"
    assert [name for name, text in readmes.items() if markdown_to_text(text) != fully_normalized_prose(text)] == []


def test_refused_target_leaves_the_link_as_text():
    # The verdict matters: a refused inline link is not a link, so its brackets and target stay as text.
    assert markdown_to_text("[run](javascript:alert(1))") == "[run](javascript:alert(1))"

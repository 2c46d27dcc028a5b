"""HTML to prose: a page's main content (trafilatura), or any fragment's text.

Both paths give Markdown-style prose: `#` headings (chunking cuts sections by
them), paragraphs separated by blank lines, link text without its target,
images dropped. The fragment path is the stdlib's streaming `HTMLParser`, which
keeps no tree, so nesting depth costs nothing (libxml2 stops at 256 levels and
a 10^5-deep page would come out empty).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Tags whose content is never prose: code, styling, page furniture, forms.
_SKIPPED = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "head",
        "nav",
        "header",
        "footer",
        "aside",
        "form",
        "svg",
        "button",
        "select",
    }
)
_BLOCKS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "main",
        "blockquote",
        "table",
        "thead",
        "tbody",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "figure",
        "figcaption",
        "details",
        "summary",
        "center",
        "hr",
        "address",
        "fieldset",
        "body",
        "html",
    }
)
_LINE_BREAKS = frozenset({"br", "tr"})
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
)
_HEADING = re.compile(r"h([1-6])")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_RUNS = re.compile(r"\n{3,}")
_ONE_LEADING_SPACE = re.compile(r"^ (?=\S)")
_HEADING_SPACES = re.compile(r"^(#{1,6})  +")
# trafilatura escapes Markdown characters in text (`ghp_x` becomes `ghp\_x`);
# prose wants the characters themselves, and PII patterns must see them.
_MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")


def html_to_text(html: str) -> str:
    """Return the main content of an HTML page as Markdown-style prose (nav, footer, sidebars dropped).

    trafilatura does the extraction; its Markdown output keeps headings. The
    fragment converter is the fallback when trafilatura finds no main content
    (short pages, or nesting too deep for libxml2).
    """
    import trafilatura

    extracted = trafilatura.extract(html, output_format="markdown", include_comments=False, include_tables=True)
    return _unindented(_MARKDOWN_ESCAPE.sub(r"\1", extracted)) if extracted else html_fragment_to_text(html)


def _unindented(markdown: str) -> str:
    # trafilatura keeps the source's line breaks and indentation inside a <p>;
    # outside fenced code (where it puts <pre>) indentation is only layout, and
    # would read as a code block.
    lines, in_fence = [], False
    for line in markdown.split("\n"):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        lines.append(line if in_fence else line.lstrip())
    return "\n".join(lines)


def html_fragment_to_text(html: str) -> str:
    """Return the text of any HTML (a page or a block inside Markdown): headings as `#`, images and scripts dropped."""
    parser = _ProseParser()
    parser.feed(html)
    parser.close()
    return parser.prose()


class _ProseParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skipping: list[str] = []
        self._pre = 0
        self._heading = False

    def handle_starttag(self, tag: str, attrs) -> None:
        if self._skipping or tag in _SKIPPED:
            if tag in _SKIPPED and tag not in _VOID:
                self._skipping.append(tag)
            return
        heading = _HEADING.fullmatch(tag)
        if heading:
            self._heading = True
            self._parts.append("\n\n" + "#" * int(heading.group(1)) + " ")
        elif self._heading and (tag in _BLOCKS or tag in _LINE_BREAKS):
            self._parts.append(" ")  # a heading stays one line
        elif tag == "li":
            self._parts.append("\n- ")
        elif tag == "pre":
            self._pre += 1
            self._parts.append("\n\n")
        elif tag in _BLOCKS:
            self._parts.append("\n\n")
        elif tag in _LINE_BREAKS:
            self._parts.append("\n")
        elif tag in ("td", "th"):
            self._parts.append(" | ")

    def handle_endtag(self, tag: str) -> None:
        if self._skipping:
            if tag == self._skipping[-1]:
                self._skipping.pop()
            return
        if _HEADING.fullmatch(tag):
            self._heading = False
            self._parts.append("\n\n")
        elif tag in _BLOCKS and not self._heading:
            self._parts.append("\n\n")
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
            self._parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        self._parts.append(data if self._pre else _SPACES.sub(" ", data.replace("\n", " ")))

    def prose(self) -> str:
        # Collapsed whitespace leaves at most one space at a line start outside
        # <pre>; deeper indentation is code and is kept.
        lines = [_tidy(line) for line in "".join(self._parts).split("\n")]
        return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")


def _tidy(line: str) -> str:
    line = _ONE_LEADING_SPACE.sub("", line).removeprefix("| ").rstrip()
    return _HEADING_SPACES.sub(r"\1 ", line)

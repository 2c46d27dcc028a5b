"""Each format rendered to prose before cleaning, so markup never reaches the index.

Markdown is parsed by markdown-it-py (CommonMark), reStructuredText by docutils,
HTML by trafilatura or the fragment converter in `html_text`. What comes out
is prose: headings kept as section titles (`#` lines for Markdown and HTML,
underlined titles for reStructuredText, the forms `chunking.find_headings`
reads), link text without its target, code kept, badges, images, raw HTML tags
and reference definitions gone.
"""

from __future__ import annotations

import re

from llm_platform.documents.html_text import html_fragment_to_text, html_to_text

# Bump when rendering changes what any document becomes; part of the cleaning version.
RENDERER_VERSION = "2"
_BLANK_RUNS = re.compile(r"\n{3,}")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]+$")


def render_prose(text: str, fmt: str) -> str:
    """Return `text` of format `fmt` as prose; formats without markup come back unchanged."""
    if fmt == "html":
        return html_to_text(text)
    if fmt == "md":
        return markdown_to_text(text)
    if fmt == "rst":
        from llm_platform.documents.rst_text import rst_to_text

        return rst_to_text(text)
    return text


def markdown_to_text(text: str) -> str:
    """Return Markdown as prose: `#` headings, paragraphs, `- ` list items, fenced code, HTML blocks as text."""
    from markdown_it import MarkdownIt

    prose = _MarkdownProse()
    for token in MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(text):
        handler = getattr(prose, f"on_{token.type}", None)
        if handler is not None:
            handler(token)
    return prose.text()


class _MarkdownProse:
    """Collects blocks from markdown-it tokens; a list or table is one block of lines."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.prefix = ""
        self.lists: list[str] = []
        self.row: list[str] | None = None
        self.in_table = False

    def add(self, text: str) -> None:
        if not text.strip():
            return
        if (self.lists or self.in_table) and self.blocks and self.blocks[-1]:
            self.blocks[-1] += "\n" + text
        else:
            self.blocks.append(text)

    def on_bullet_list_open(self, token) -> None:
        self.start_group()
        self.lists.append("- ")

    def on_ordered_list_open(self, token) -> None:
        self.start_group()
        self.lists.append("1. ")

    def start_group(self) -> None:
        if not self.lists and not self.in_table:
            self.blocks.append("")

    def on_bullet_list_close(self, token) -> None:
        self.lists.pop()

    on_ordered_list_close = on_bullet_list_close

    def on_list_item_open(self, token) -> None:
        marker = f"{token.info}. " if token.info else self.lists[-1]
        self.prefix = "  " * (len(self.lists) - 1) + marker

    def on_heading_open(self, token) -> None:
        self.prefix = "#" * int(token.tag[1]) + " "

    def on_table_open(self, token) -> None:
        self.start_group()
        self.in_table = True

    def on_table_close(self, token) -> None:
        self.in_table = False

    def on_tr_open(self, token) -> None:
        self.row = []

    def on_tr_close(self, token) -> None:
        self.add(" | ".join(self.row or []))
        self.row = None

    def on_inline(self, token) -> None:
        line = _inline_text(token.children or [])
        if self.row is not None:
            self.row.append(line)
            return
        if line:
            self.add(self.prefix + line)
        self.prefix = ""

    def on_fence(self, token) -> None:
        self.add(f"```{token.info.strip()}\n{token.content.rstrip()}\n```")

    on_code_block = on_fence

    def on_html_block(self, token) -> None:
        self.add(html_fragment_to_text(token.content))

    def text(self) -> str:
        return _BLANK_RUNS.sub("\n\n", "\n\n".join(block for block in self.blocks if block.strip())).strip()


def _dunder_identifier(children, at: int) -> str | None:
    """`__init__` when children[at:at + 3] is markdown-it's strong emphasis `__` around one identifier.

    CommonMark reads `__contains__()` as bold "contains"; in technical prose a single
    word between double underscores is a Python name far more often than bold (which
    writers spell `**word**`), so the underscores are kept.
    """
    if len(children) < at + 3:
        return None
    opening, inner, closing = children[at : at + 3]
    if opening.type == "strong_open" and opening.markup == "__" and inner.type == "text" and _IDENTIFIER.match(inner.content) and closing.type == "strong_close":
        return f"__{inner.content}__"
    return None


def _inline_text(children) -> str:
    parts: list[str] = []
    skip = 0
    for at, child in enumerate(children):
        if skip:
            skip -= 1
            continue
        identifier = _dunder_identifier(children, at)
        if identifier is not None:
            parts.append(identifier)
            skip = 2
            continue
        # image (badges, screenshots: alt text is not prose), html_inline (<br>,
        # <img>, <a href>: the tag goes, text around it stays), link_open and
        # link_close (the target goes, the link text stays) add nothing.
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
    return "".join(parts).strip()

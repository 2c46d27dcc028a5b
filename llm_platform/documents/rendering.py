"""Each format rendered to prose before cleaning, so markup never reaches the index.

Markdown is parsed by markdown-it-py (CommonMark), reStructuredText by docutils,
HTML by trafilatura or the fragment converter in `html_text`. What comes out
is prose: headings kept as section titles (`#` lines for Markdown and HTML,
underlined titles for reStructuredText, the forms `chunking.find_headings`
reads), link text without its target, code kept, badges, images, raw HTML tags
and reference definitions gone.

`render_document` also says when the prose lost text: Markdown nested past
the parser's limit, reStructuredText too deep for docutils, or prose that keeps
too little of the source's visible text (`render_loss`). The caller sets such a
document aside with that reason instead of indexing a cut.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from llm_platform.documents.html_text import html_fragment_to_text, html_to_text
from llm_platform.documents.render_loss import loss_reason

# Bump when rendering changes what any document becomes; part of the cleaning version.
RENDERER_VERSION = "3"
# markdown-it stops at this block depth and drops the rest of the document
# (its CommonMark preset says 20: a list 10 levels deep). A list level takes
# two (list, item); at 200 a 100-level list renders whole, far from Python's
# recursion limit (a 300-level list still parses, in 40 ms). Deeper is reported.
MARKDOWN_MAX_NESTING = 200
# Blocks whose content markdown-it parses one level deeper: opened at the limit, their content is gone.
_MARKDOWN_CONTAINERS = frozenset({"blockquote_open", "list_item_open"})
_BLANK_RUNS = re.compile(r"\n{3,}")
_SCRIPT_OR_STYLE_TAG = re.compile(r"<(/?)(script|style)\b", re.IGNORECASE)
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]+$")
# markdown-it's BAD_PROTO_RE, which validateLink applies after stripping whitespace and lowering case.
_REFUSABLE_SCHEME = re.compile(r"\s*(?:vbscript|javascript|file|data):", re.IGNORECASE)


@dataclass(frozen=True)
class Rendering:
    """A document's prose and, when the renderer lost text, what happened (for a person)."""

    prose: str
    lost: str | None = None


def render_prose(text: str, fmt: str) -> str:
    """Return `text` of format `fmt` as prose; formats without markup come back unchanged."""
    return render_document(text, fmt).prose


def render_document(text: str, fmt: str) -> Rendering:
    """Render `text` of format `fmt` to prose, saying what was lost if the prose is not the whole document.

    HTML is not judged by its visible text: dropping navigation and footers is
    the point of main-content extraction.
    """
    if fmt == "html":
        return Rendering(html_to_text(text))
    name = _MARKUP_NAMES.get(fmt)
    if name is None:
        return Rendering(text)
    try:
        rendering = _markdown_rendering(text) if fmt == "md" else Rendering(_rst_to_text(text))
    except RecursionError:
        # docutils recurses once per nesting level and gives up near 160 levels of lists.
        return Rendering("", f"{name} nested too deeply for the parser to read; flatten the nesting")
    return rendering if rendering.lost else Rendering(rendering.prose, loss_reason(text, rendering.prose, name))


_MARKUP_NAMES = {"md": "Markdown", "rst": "reStructuredText"}


def _rst_to_text(text: str) -> str:
    from llm_platform.documents.rst_text import rst_to_text

    return rst_to_text(text)


def _markdown_rendering(text: str) -> Rendering:
    tokens = _markdown_tokens(text)
    prose = _prose_of(tokens)
    if any(token.type in _MARKDOWN_CONTAINERS and token.level >= MARKDOWN_MAX_NESTING - 1 for token in tokens):
        lost = (
            f"Markdown nested deeper than {MARKDOWN_MAX_NESTING // 2} levels of "
            f"lists (or {MARKDOWN_MAX_NESTING} of quotes); "
            "the parser drops what lies deeper and everything after it; flatten the nesting"
        )
        return Rendering(prose, lost)
    return Rendering(prose)


def markdown_to_text(text: str) -> str:
    """Return Markdown as prose: `#` headings, paragraphs, `- ` list items, fenced code, HTML blocks as text."""
    return _prose_of(_markdown_tokens(text))


def _markdown_tokens(text: str) -> list:
    return _markdown_parser().parse(text)


@functools.lru_cache(maxsize=1)
def _markdown_parser():
    # Built once: each parse makes its own state and env, the parser only holds options and rules.
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"maxNesting": MARKDOWN_MAX_NESTING}).enable(["table", "strikethrough"])
    parser.normalizeLink = functools.partial(_link_target_to_validate, parser.normalizeLink)  # type: ignore[method-assign]
    return parser


def _link_target_to_validate(normalize, target: str) -> str:
    """What markdown-it's validateLink judges a link target by: normalized only where the verdict can be "refused".

    markdown-it normalizes every link target (URL parsing, punycode, percent
    escapes: a fifth of the parse) for a renderer to print; the prose drops
    targets, and all markdown-it decides from one is validateLink's verdict (a
    refused target leaves the link as text). It refuses only targets starting
    with the schemes in `_REFUSABLE_SCHEME`; normalizing keeps a target's scheme
    or lack of one, so any other target is valid before and after it.
    """
    return normalize(target) if _REFUSABLE_SCHEME.match(target) else target


def _prose_of(tokens: list) -> str:
    prose = _MarkdownProse()
    for token in tokens:
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
    if (
        opening.type == "strong_open"
        and opening.markup == "__"
        and inner.type == "text"
        and _IDENTIFIER.match(inner.content)
        and closing.type == "strong_close"
    ):
        return f"__{inner.content}__"
    return None


def _inline_text(children) -> str:
    parts: list[str] = []
    skipping: str | None = None
    skip = 0
    for at, child in enumerate(children):
        if skip:
            skip -= 1
            continue
        # Inside an inline <script> or <style> the text is code, never prose.
        if child.type == "html_inline":
            skipping = _skipped_html_element(child.content, skipping)
        if skipping is not None:
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


def _skipped_html_element(tag: str, skipping: str | None) -> str | None:
    """The script or style element an inline tag opens (or still is inside of), None once it closes."""
    match = _SCRIPT_OR_STYLE_TAG.match(tag)
    if match is None or tag.rstrip().endswith("/>"):
        return skipping
    closing, name = bool(match.group(1)), match.group(2).lower()
    if skipping is None:
        return None if closing else name
    return None if closing and name == skipping else skipping

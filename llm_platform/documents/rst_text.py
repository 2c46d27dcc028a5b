"""reStructuredText to prose through docutils' parser.

Section titles come out underlined (`=`, `-`, `~`, ... by depth), which
`chunking.find_headings` reads as reStructuredText headings. Substitutions,
images, comments, targets and link URIs go; Sphinx roles docutils does not
know (`:func:`, `:ref:`) keep their text; unknown directives keep their body.
Raw content (`.. raw::`, roles derived from `raw`) is never kept as markup:
raw HTML becomes its text through the HTML fragment converter (script and
style contents dropped), other raw formats (LaTeX, ...) are dropped.
"""

from __future__ import annotations

import re
import textwrap

from llm_platform.documents.html_text import html_fragment_to_text

_UNDERLINES = "=-~^\"'+`"
_BLANK_RUNS = re.compile(r"\n{3,}")
_ROLE = re.compile(r"^:[\w:.+-]+:`(?P<text>.*)`$", re.DOTALL)
_ROLE_TARGET = re.compile(r"\s*<[^<>]*>$")
_DIRECTIVE_OPTION = re.compile(r"^\s*:[\w-]+:.*$")
_DIRECTIVE_START = re.compile(r"^(?P<indent>[ \t]*)\.\.[ \t]+(?P<name>[\w:.+-]+)::[ \t]*(?P<arguments>.*)$")
# docutils' warning for a role derived from `raw` while raw content is disabled.
_RAW_ROLE_DISABLED = "raw (and derived) roles disabled"
_SETTINGS = {
    "report_level": 5,  # silence: a document with errors still renders
    "halt_level": 5,
    "warning_stream": False,
    "file_insertion_enabled": False,  # never read other files named in a document
    "raw_enabled": False,
    "doctitle_xform": False,  # keep the first title a section title
    "sectsubtitle_xform": False,
    "input_encoding": "unicode",
    # Pygments would split code into styled tokens whose text is the same code:
    # a quarter of the parse time for nothing the prose keeps.
    "syntax_highlight": "none",
}
# Nodes whose content is never prose.
_DROPPED = (
    "image",
    "substitution_definition",
    "comment",
    "target",
    "raw",
    "pending",
    "footnote_reference",
    "citation_reference",
)
_LINE_ELEMENTS = ("paragraph", "term", "line", "attribution", "rubric", "field_name", "caption")


def rst_to_text(text: str) -> str:
    """Return reStructuredText as prose, section titles underlined by depth."""
    from llm_platform.documents.rst_parser import parse_rst

    tree = parse_rst(text, _SETTINGS)
    blocks: list[str] = []
    _render(tree, blocks, depth=0)
    return _BLANK_RUNS.sub("\n\n", "\n\n".join(block for block in blocks if block.strip())).strip()


def _render(node, blocks: list[str], depth: int) -> None:
    name = node.tagname
    if name in _DROPPED:
        return
    if name == "system_message":
        _unknown_directive_body(node, blocks)
        return
    if name == "section":
        for child in node.children:
            _render(child, blocks, depth + 1)
        return
    if name in ("title", "subtitle"):
        title = _inline(node)
        blocks.append(
            f"{title}\n{_UNDERLINES[min(depth, len(_UNDERLINES)) - 1] * max(len(title), 3)}" if depth else title
        )
        return
    if name in ("literal_block", "doctest_block"):
        blocks.append(textwrap.indent(node.astext(), "    "))
        return
    if name in _LINE_ELEMENTS:
        blocks.append(_inline(node))
        return
    if name == "list_item":
        before = len(blocks)
        for child in node.children:
            _render(child, blocks, depth)
        if len(blocks) > before:
            blocks[before] = "- " + blocks[before]
        return
    if name == "row":
        blocks.append(" | ".join(_inline(entry) for entry in node.children))
        return
    if hasattr(node, "children") and node.children and not _is_text(node):
        for child in node.children:
            _render(child, blocks, depth)
    elif node.astext().strip():
        blocks.append(_inline(node))


def _is_text(node) -> bool:
    return node.tagname == "#text"


def _inline(node) -> str:
    """The text of an inline element: link text without URIs, roles as their text, images dropped."""
    if _is_text(node):
        return node.astext()
    if node.tagname in _DROPPED or node.tagname == "system_message":
        return ""
    if node.tagname == "problematic":
        if _is_raw_role(node):
            return html_fragment_to_text(_role_text(node.astext()))
        return _role_text(node.astext())
    text = "".join(_inline(child) for child in node.children)
    return " ".join(text.split()) if node.tagname in _LINE_ELEMENTS else text


def _role_text(raw: str) -> str:
    # An unknown role (Sphinx's :func:`len`, :ref:`Title <label>`) keeps its text.
    match = _ROLE.match(raw)
    if not match:
        return raw
    return _ROLE_TARGET.sub("", match.group("text")).lstrip("~!")


def _is_raw_role(node) -> bool:
    message = node.document.ids.get(node.get("refid", "")) if node.document is not None else None
    return message is not None and _RAW_ROLE_DISABLED in message.astext()


def _unknown_directive_body(node, blocks: list[str]) -> None:
    # docutils replaces a directive it does not know (Sphinx's versionadded,
    # code-block options, ...) or has disabled (raw, include) by an error
    # holding the directive's source: keep its body, raw content as text only.
    literal = next((child for child in node.children if child.tagname == "literal_block"), None)
    if literal is None:
        return
    first, *lines = literal.astext().split("\n")
    body = textwrap.dedent("\n".join(line for line in lines if not _DIRECTIVE_OPTION.match(line))).strip()
    start = _DIRECTIVE_START.match(first)
    if start is not None and start["name"] == "raw":
        body = _raw_text(start["arguments"], body)
    else:
        body = _raw_blocks_as_text(body)
    if body.strip():
        blocks.append(body.strip())


def _raw_text(formats: str, body: str) -> str:
    """The prose of a raw block: HTML as its text (never script or style), any other format nothing."""
    return html_fragment_to_text(body) if "html" in formats.split() else ""


def _raw_blocks_as_text(body: str) -> str:
    # A raw block nested in an unknown directive (Sphinx's `.. only:: html`)
    # reaches us as source text, so it is found by its indentation.
    lines, kept, at = body.split("\n"), [], 0
    while at < len(lines):
        start = _DIRECTIVE_START.match(lines[at])
        at += 1
        if start is None or start["name"] != "raw":
            kept.append(lines[at - 1])
            continue
        block_start = at
        while at < len(lines) and (not lines[at].strip() or _indent(lines[at]) > len(start["indent"])):
            at += 1
        block = [line for line in lines[block_start:at] if not _DIRECTIVE_OPTION.match(line)]
        kept += [textwrap.indent(_raw_text(start["arguments"], textwrap.dedent("\n".join(block))), start["indent"]), ""]
    return "\n".join(kept)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())

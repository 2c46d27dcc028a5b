"""Whether rendered prose kept a plausible share of a markup document's visible text.

A parser that stops early (a nesting limit, a bug) returns a prefix of the
document without an error. The rule: count the letters and digits a reader
sees in the source (what is left after removing URLs, HTML tags with script
and style contents, images, explicit markup lines such as reStructuredText
directives, options, targets and Markdown reference definitions, and
`|substitution|` references) and in the prose. Prose that keeps under
`MIN_KEPT_SHARE` of them has lost text. Over the 200 Markdown and
reStructuredText READMEs of the packages installed here (the corpus of
`benchmarks/document_prose.py`) the lowest share kept is 0.89, so the rule
leaves ordinary documents alone.
"""

from __future__ import annotations

import re

MIN_KEPT_SHARE = 0.5
_URL = re.compile(r"[A-Za-z][\w+.-]*://\S*")
_TAG = re.compile(r"<!--.*?-->|<(script|style)\b.*?</\1\s*>|<[^>]*>", re.DOTALL | re.IGNORECASE)
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_EXPLICIT_MARKUP_LINE = re.compile(r"^[ \t]*(?:\.\. .*|:[\w-]+:(?:[ \t].*)?|\[[^\]]+\]:[ \t]+\S.*)$", re.MULTILINE)
_SUBSTITUTION = re.compile(r"\|[^|\n]+\|_{0,2}")
# re's \w is str.isalnum() or "_", for every code point: what is left after removing these is what isalnum() counts.
_NOT_LETTER_OR_DIGIT = re.compile(r"[\W_]+")


def visible_chars(markup: str) -> int:
    """Letters and digits of `markup` a reader sees: URLs, tags, images, directive lines and substitutions left out."""
    for pattern in (_IMAGE, _EXPLICIT_MARKUP_LINE, _SUBSTITUTION, _TAG, _URL):
        markup = pattern.sub(" ", markup)
    return _letters_and_digits(markup)


def loss_reason(markup: str, prose: str, format_name: str) -> str | None:
    """What was lost when `prose` keeps under `MIN_KEPT_SHARE` of the visible text of `markup`, else None."""
    kept = _letters_and_digits(prose)
    # visible_chars only removes text, so it is at most the markup's letters and
    # digits: prose keeping that share of all of them is judged without the
    # costlier count (85 % of the installed READMEs).
    if kept >= MIN_KEPT_SHARE * _letters_and_digits(markup):
        return None
    visible = visible_chars(markup)
    if visible == 0 or kept >= MIN_KEPT_SHARE * visible:
        return None
    return (
        f"rendering {format_name} kept {kept:,} of {visible:,} visible letters "
        f"and digits (under {MIN_KEPT_SHARE:.0%}), "
        "so the parser dropped text; simplify the markup, or save the file as .txt to index it as plain text"
    )


def _letters_and_digits(text: str) -> int:
    return len(_NOT_LETTER_OR_DIGIT.sub("", text))

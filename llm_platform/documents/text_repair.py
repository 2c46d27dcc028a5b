"""ftfy's `fix_text`, exactly, paying for ftfy only on the lines it could change.

`ftfy.fix_text` fixes a text one line at a time (a segment ends after each
newline) and was a tenth of cleaning's CPU, nearly all of it spent on lines of
plain ASCII it leaves as they are. Every fix ftfy applies needs a character
outside printable ASCII, a control character or an HTML entity (`&`): mojibake
and width, quote and ligature fixes need non-ASCII, line-break fixes `\\r` or
non-ASCII breaks, terminal escapes `\\x1b`, control-character removal a control
character, NFC normalization non-ASCII. So a line of printable ASCII, tabs and
no `&` is passed through, and every other line goes to ftfy as its own segment.

The one thing ftfy carries from line to line is its "auto" HTML rule: once a
line holds `<`, entities are no longer unescaped in that or any later line.
That state is carried here the same way, over every line, passed through or not.
"""

from __future__ import annotations

import re

# Printable ASCII without "&", tab and newline: text ftfy returns unchanged.
_UNCHANGED_BY_FTFY = re.compile(r"[\t\n\x20-\x25\x27-\x7e]*")


def repaired_text(text: str) -> str:
    """`ftfy.fix_text(text)` with ftfy's default settings, the same string, at the cost of its lines that need ftfy."""
    if _UNCHANGED_BY_FTFY.fullmatch(text):
        return text
    import ftfy

    config = ftfy.TextFixerConfig(explain=False)
    pieces = []
    for line in _segments(text):
        if _UNCHANGED_BY_FTFY.fullmatch(line):
            pieces.append(line)
        else:
            pieces.append(ftfy.fix_text(line, config))
        if config.unescape_html == "auto" and "<" in line:
            config = config._replace(unescape_html=False)
    return "".join(pieces)


def _segments(text: str) -> list[str]:
    """`text` cut after each newline, as ftfy cuts it (a line longer than
    ftfy's segment limit is cut again by ftfy itself).
    """
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])

"""`repaired_text` is `ftfy.fix_text`, character for character, while ftfy reads only the lines it could change."""

from pathlib import Path

import ftfy
import pytest

from llm_platform.documents.text_repair import repaired_text

READMES = Path(__file__).parent / "readmes"
TEXTS_FTFY_CHANGES = {
    "mojibake": "The cafÃ© opened in 2019.\nplain line\n",
    "curly quotes": "He said \u201chello\u201d and \u2018bye\u2019\n",
    "html entity": "Fish &amp; chips &lt;3\n",
    "windows line ends": "first\r\nsecond\rthird\n",
    "terminal escape": "\x1b[31mred\x1b[0m text\n",
    "control characters": "a\x00b\x07c\x7fd\n",
    "full width": "\uff2c\uff2f\uff35\uff24 noises\n",
    "ligature": "\ufb02ubberi\ufb01c\n",
    "decomposed accent": "cafe\u0301 au lait\n",
    "no final newline": "plain\nlast line with &amp;",
    "line separator": "one\u2028two\n",
    "byte order mark": "\ufeffTitle\n",
}


@pytest.mark.parametrize("text", TEXTS_FTFY_CHANGES.values(), ids=TEXTS_FTFY_CHANGES.keys())
def test_repaired_text_is_what_ftfy_makes_of_a_text_it_changes(text):
    assert ftfy.fix_text(text) != text
    assert repaired_text(text) == ftfy.fix_text(text)


def test_entities_after_a_line_with_a_tag_stay_escaped_as_ftfy_leaves_them():
    # ftfy stops unescaping at the first line holding "<", even when that line needed no fix itself.
    text = "Tom &amp; Jerry\n<b>bold</b> plain\nSalt &amp; pepper\n"
    assert ftfy.fix_text(text) == "Tom & Jerry\n<b>bold</b> plain\nSalt &amp; pepper\n"
    assert repaired_text(text) == ftfy.fix_text(text)


def test_a_text_of_plain_lines_comes_back_without_calling_ftfy(monkeypatch):
    monkeypatch.setattr(ftfy, "fix_text", lambda *args, **kwargs: pytest.fail("ftfy was called on plain ASCII"))
    text = "# Title\n\n\tcode(x) < 3 and y > 4\n- item: 'quoted' \"twice\"\n"
    assert repaired_text(text) == text


def test_only_the_lines_that_need_ftfy_reach_it(monkeypatch):
    seen = []
    fix_text = ftfy.fix_text
    monkeypatch.setattr(ftfy, "fix_text", lambda line, config: seen.append(line) or fix_text(line, config))
    repaired_text("plain one\ncaf\u00e9\nplain two\n")
    assert seen == ["caf\u00e9\n"]


@pytest.mark.parametrize("path", sorted(READMES.glob("*.*")), ids=lambda path: path.name)
def test_repaired_text_is_what_ftfy_makes_of_each_bundled_document(path):
    text = path.read_text(encoding="utf-8")
    assert repaired_text(text) == ftfy.fix_text(text)

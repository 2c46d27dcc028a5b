"""reST raw content (`.. raw::`, raw-derived roles) never reaches the index as markup or script."""

from llm_platform.documents.rst_text import rst_to_text

SCRIPT = "<script>steal(document.cookie)</script><style>p {color: red}</style>"


def test_raw_html_directive_keeps_its_text_and_drops_tags_and_script():
    prose = rst_to_text(f"Before.\n\n.. raw:: html\n\n   {SCRIPT}<p>Visible <b>words</b>.</p>\n\nAfter.\n")
    assert prose == "Before.\n\nVisible words.\n\nAfter."


def test_raw_directive_of_another_format_is_dropped():
    prose = rst_to_text("Before.\n\n.. raw:: latex\n\n   \\textbf{bold} \\newpage\n\nAfter.\n")
    assert prose == "Before.\n\nAfter."


def test_raw_html_inside_an_unknown_directive_is_not_kept_verbatim():
    text = (
        "Title\n=====\n\n.. only:: html\n\n   Only in the web build.\n\n   .. raw:: "
        f"html\n\n      {SCRIPT}<p>Raw words.</p>\n\nAfter.\n"
    )
    prose = rst_to_text(text)
    assert "steal" not in prose and "color" not in prose and "<" not in prose and ".. raw::" not in prose
    assert "Only in the web build." in prose and "Raw words." in prose


def test_role_derived_from_raw_keeps_its_text_without_tags_or_script():
    text = f".. role:: raw-html(raw)\n   :format: html\n\nInline :raw-html:`{SCRIPT}<b>bold words</b>` here.\n"
    assert rst_to_text(text) == "Inline bold words here."


def test_raw_directive_naming_a_file_reads_nothing(tmp_path):
    secret = tmp_path / "secret.html"
    secret.write_text("<p>do not include me</p>", encoding="utf-8")
    assert rst_to_text(f"Body text.\n\n.. raw:: html\n   :file: {secret}\n") == "Body text."

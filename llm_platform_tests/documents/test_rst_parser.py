"""The reStructuredText parser set up once per process builds the tree docutils' own `publish_doctree` builds."""

from pathlib import Path
from pydoc_data.topics import topics

import pytest
from docutils.core import publish_doctree

from llm_platform.documents.rst_parser import parse_rst
from llm_platform.documents.rst_text import _SETTINGS
from llm_platform_tests.conftest import installed_readmes

READMES = Path(__file__).parent / "readmes"

TRICKY = {
    "nested lists": "- one\n\n  - two\n\n    #. three\n    #. four\n\n       * five\n\n         - six\n- seven\n",
    "definitions, fields, options": (
        ":Author: Ada\n:Version: 1\n\nterm : classifier\n   Definition.\n\n-a, --all  Everything.\n"
        "--out=FILE  Where.\n\n:field: value\n   continued\n"
    ),
    "line block and quote": "| first line\n|    indented line\n\n    Quoted text.\n\n    -- Someone\n",
    "tables": (
        "+-----+----------+\n| a   | - item   |\n|     | - item 2 |\n+=====+==========+\n| ``x`` | y      |\n"
        "+-----+----------+\n\n=====  =====\nA      B\n=====  =====\n1      *two*\n=====  =====\n\n"
        ".. list-table::\n   :header-rows: 1\n\n   * - h\n     - i\n   * - 1\n     - 2\n\n"
        '.. csv-table::\n\n   a, "b, c"\n'
    ),
    "substitutions, footnotes, targets": (
        "|logo| |name| see [#]_ and [1]_ and [*]_ and [CIT2002]_ and `link`_ and `anon <http://x>`__.\n\n"
        ".. |logo| image:: logo.png\n.. |name| replace:: *Name*\n.. [#] Auto.\n.. [1] One.\n.. [*] Star.\n"
        ".. [CIT2002] Citation.\n.. _link: http://example.org\n.. _indirect: link_\n__ http://anon\n"
    ),
    "sections and errors": (
        "=====\nTitle\n=====\n\nSub\n---\n\nDeep\n~~~~\n\nBack\n====\n\nJump\n^^^^\n\nText with `unclosed and "
        ":unknown:`role` and |undefined|.\n\n----------\n\nAfter a transition.\n"
    ),
    "directives": (
        ".. contents::\n\n.. sectnum::\n\nA\n=\n\n.. note:: Careful.\n\n   .. warning:: Nested.\n\n"
        ".. code-block:: python\n   :linenos:\n\n   x = 1\n\n.. versionadded:: 2.0\n   Something new.\n\n"
        ".. only:: html\n\n   .. raw:: html\n\n      <b>x</b>\n\n.. include:: /etc/passwd\n\n.. math:: a^2\n\n"
        ".. topic:: Topic\n\n   Body.\n\n.. container:: box\n\n   Inside.\n\n.. compound::\n\n   Part.\n\n"
        ".. role:: raw-html(raw)\n   :format: html\n\n:raw-html:`<i>x</i>` and :func:`len` and :ref:`T <t>`.\n"
    ),
    "literal and doctest blocks": (
        "Code::\n\n    def f():\n        return 1\n\n::\n\n> quoted literal\n> block\n\n>>> 1 + 1\n2\n\n"
        ".. code:: unknown-language\n\n   whatever\n"
    ),
    "comments and empty": ".. a comment\n   continued\n\n..\n\n   not a comment? quoted.\n",
}


def docutils_tree(text: str) -> str:
    return publish_doctree(text, settings_overrides=_SETTINGS).pformat()


def parsed_tree(text: str) -> str:
    return parse_rst(text, _SETTINGS).pformat()


def installed_rst_readmes() -> dict[str, str]:
    return installed_readmes("text/x-rst")


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tricky_rst_parses_to_the_tree_docutils_builds(name):
    assert parsed_tree(TRICKY[name]) == docutils_tree(TRICKY[name])


def test_rst_readme_fixture_parses_to_the_tree_docutils_builds():
    text = (READMES / "signals.rst").read_text(encoding="utf-8")
    assert parsed_tree(text) == docutils_tree(text)


def test_every_python_help_topic_parses_to_the_tree_docutils_builds():
    assert [name for name, text in topics.items() if parsed_tree(text) != docutils_tree(text)] == []


def test_every_installed_rst_readme_parses_to_the_tree_docutils_builds():
    readmes = installed_rst_readmes()
    assert readmes, "no installed package describes itself in reStructuredText; this test would prove nothing"
    assert [name for name, text in readmes.items() if parsed_tree(text) != docutils_tree(text)] == []


def test_tree_comparison_sees_a_different_parse():
    # The check above can fail: a setting that changes the tree changes what is compared.
    text = "Title\n=====\n\nBody.\n"
    assert parse_rst(text, {**_SETTINGS, "doctitle_xform": True}).pformat() != docutils_tree(text)


def test_parser_settings_are_the_ones_publish_doctree_uses():
    # A DependencyList compares by identity; each document gets a new, empty one.
    def comparable(settings):
        return {name: repr(value) if name == "record_dependencies" else value for name, value in vars(settings).items()}

    text = "Body.\n"
    expected = publish_doctree(text, settings_overrides=_SETTINGS).settings
    assert comparable(parse_rst(text, _SETTINGS).settings) == comparable(expected)


def test_each_document_gets_its_own_dependency_list():
    first, second = (parse_rst("Body.\n", _SETTINGS).settings for _ in range(2))
    assert first.record_dependencies is not second.record_dependencies

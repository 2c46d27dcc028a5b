"""`llm-platform search` and `index` with bad input: clear messages and exit code 2, never a traceback."""

from __future__ import annotations

import pyarrow as pa
import pytest

from llm_platform.cli import main
from llm_platform.config import CONFIG_ENV, DEFAULT_EMBEDDING_MODEL, HOME_ENV
from llm_platform.datasets import DatasetStore
from llm_platform.index.datasets import RETRIEVAL_EVAL_DATA
from llm_platform.index.publishing import Score, publish_version
from llm_platform.index.table import SearchInputError, connect, open_table, search, sync_source, table_name
from llm_platform_tests.index.tables import DIMENSION, SETTINGS, TAG, rows

CONFIG = "sources:\n  - name: docs\n    location: corpus/docs\n  - name: notes\n    location: corpus/notes\n"
NAME = table_name("chunks", DEFAULT_EMBEDDING_MODEL)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A config with sources docs and notes, and a served table holding both."""
    (tmp_path / "platform.yaml").write_text(CONFIG, encoding="utf-8")
    for source in ("docs", "notes"):
        (tmp_path / "corpus" / source).mkdir(parents=True)
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "platform.yaml"))
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    db = connect(str(tmp_path / "home" / "lancedb"))
    table = open_table(db, NAME, DIMENSION)
    sync_source(table, "docs", rows("docs", ["with", "for", "while"]), settings=SETTINGS)
    sync_source(table, "notes", rows("notes", ["class", "global"]), settings=SETTINGS)
    publish_version(
        db,
        DatasetStore(str(tmp_path / "home")),
        NAME,
        tag=TAG,
        version=table.version,
        score=Score(hit_rate=0.9, mrr=0.7, k=5, questions=12),
        keep=5,
        run_id="test",
    )
    return table


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("source", ["nope", "x'", "x' OR source != '"])
def test_an_unknown_source_is_named_with_the_configured_ones(home, capsys, source):
    code, _out, err = run(capsys, "search", "loop", "--mode", "fts", "--source", source)
    assert code == 2 and "is not a configured source; configured: docs, notes" in err and "Traceback" not in err


@pytest.mark.parametrize("query", ["", "   "])
def test_an_empty_query_is_refused(home, capsys, query):
    code, _, err = run(capsys, "search", query, "--mode", "fts")
    assert code == 2 and "the query is empty" in err


@pytest.mark.parametrize("k", ["0", "-1"])
def test_k_below_one_is_refused(home, capsys, k):
    code, _, err = run(capsys, "search", "loop", "--mode", "fts", "-k", k)
    assert code == 2 and "at least 1" in err


def test_a_known_source_limits_the_results(home, capsys):
    code, out, _ = run(capsys, "search", "statement", "--mode", "fts", "--source", "notes", "-k", "5")
    assert code == 0 and "notes:" in out and "docs:" not in out


def test_the_with_statement_is_found_by_full_text_search(home, capsys):
    code, out, _ = run(capsys, "search", "with statement", "--mode", "fts", "-k", "1")
    assert code == 0 and "with.md" in out


def test_a_source_filter_cannot_be_widened_by_quotes(home):
    with pytest.raises(SearchInputError, match="not a source name"):
        search(home, "statement", None, mode="fts", k=5, source="x' OR source != '")


def test_status_lists_published_versions_with_their_hit_rate(home, capsys):
    code, out, _ = run(capsys, "index", "status")
    assert code == 0 and f"version {home.version:>4}" in out and "hit_rate@5 0.900" in out and TAG in out


def test_rollback_to_an_unpublished_version_is_refused_with_what_to_do(home, capsys):
    code, _, err = run(capsys, "index", "rollback", "--version", "1")
    assert code == 2 and "never published" in err and "--force" in err and "Traceback" not in err


def test_forced_rollback_to_an_empty_version_is_still_refused(home, capsys):
    code, _, err = run(capsys, "index", "rollback", "--version", "1", "--force")
    assert code == 2 and "has no rows" in err


def test_status_shows_an_evaluated_version_that_was_not_published(home, capsys, tmp_path):
    record = {
        "table": NAME,
        "version": 2,
        "hit_rate": 0.25,
        "mrr": 0.1,
        "k": 5,
        "questions": 12,
        "published_version": None,
        "published_hit_rate": None,
        "compared_with": None,
    }
    DatasetStore(str(tmp_path / "home")).write(
        RETRIEVAL_EVAL_DATA, None, [pa.Table.from_pylist([record])], pa.Table.from_pylist([record]).schema
    )
    code, out, _ = run(capsys, "index", "status")
    assert code == 0 and "version    2  evaluated, not published  hit_rate@5 0.250" in out


def test_a_search_that_fails_on_the_table_names_the_table_and_version(home, capsys):
    home.add(rows("notes", ["assert"]))
    home.drop_index(next(i.name for i in home.list_indices()))  # the latest version has rows and no full-text index
    code, _, err = run(capsys, "search", "assert", "--mode", "fts", "--latest")
    assert code == 2 and f"fts search of {NAME} version {home.version} failed" in err and "Traceback" not in err


def test_publish_with_nothing_indexed_says_it_did_not_publish_and_why(tmp_path, monkeypatch, capsys):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "platform.yaml").write_text("sources:\n  - name: docs\n    location: corpus\n", encoding="utf-8")
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "platform.yaml"))
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    code, out, err = run(capsys, "index", "publish")
    assert (
        code == 1
        and "step retrieval_eval failed" in out
        and "does not exist yet: materialize vector_index first" in out
    )
    assert "not published" in err and "Traceback" not in out + err


def test_every_index_command_the_help_promises_exists(capsys):
    with pytest.raises(SystemExit):
        main(["index", "--help"])
    out = capsys.readouterr().out
    assert all(command in out for command in ("status", "publish", "rollback"))


@pytest.fixture
def hr_notes(home):
    """The notes of `home` readable by group hr alone (in the latest version)."""
    sync_source(home, "notes", rows("notes", ["class", "global"], ["hr"]), settings=SETTINGS)
    return home


def test_search_without_as_reads_every_row_and_says_so(hr_notes, capsys):
    code, out, _ = run(capsys, "search", "statement", "--mode", "fts", "-k", "10", "--latest")
    assert code == 0 and "notes:" in out and "as operator (every reader group" in out


def test_search_as_a_group_reads_only_its_rows_and_public_ones(hr_notes, capsys):
    code, out, _ = run(capsys, "search", "statement", "--mode", "fts", "-k", "10", "--latest", "--as", "eng")
    assert code == 0 and "notes:" not in out and "docs:" in out and "as groups eng and public rows" in out
    code, out, _ = run(
        capsys, "search", "statement", "--mode", "fts", "-k", "10", "--latest", "--as", "eng", "--as", "hr"
    )
    assert code == 0 and "notes:" in out


@pytest.mark.parametrize("group", ["HR", "hr' OR true OR '"])
def test_search_as_a_malformed_group_is_refused(home, capsys, group):
    code, _, err = run(capsys, "search", "statement", "--mode", "fts", "--as", group)
    assert code == 2 and "--as:" in err and "not a group name" in err and "Traceback" not in err

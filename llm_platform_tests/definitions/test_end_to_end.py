"""The spec: a small real corpus indexed, re-indexed unchanged, after an edit and after a removal, then served.

One module-scoped history runs the pipeline once through index_job and
publish_index_job with the real embedding model; each test reads one fact from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from llm_platform.automation.jobs import PUBLISH_INDEX_JOB
from llm_platform.cli import main
from llm_platform.config import CONFIG_ENV, HOME_ENV
from llm_platform.datasets import DatasetStore
from llm_platform.documents.datasets import CHUNKS_DATA, CLEANED_QUARANTINE_DATA, RAW_QUARANTINE_DATA
from llm_platform.home_layout import lancedb_uri
from llm_platform.identity import doc_id_for
from llm_platform.index.embedding import load_embedder
from llm_platform.index.table import connect, open_published, open_table, published_version, search, table_name
from llm_platform_tests.conftest import BAD_FILES, DOCS_HTML, DOCS_MARKDOWN, DOCS_TEXT, Platform, materialization

SOURCE = "docs"
EDITED, REMOVED = "for.md", "while.md"
ORIGINAL_SENTENCE = 'The "for" statement is used to iterate over the elements of a sequence'
EDITED_SENTENCE = 'The "for" statement runs its suite once for every item that an iterable object produces'
GOOD_FILES = sorted(
    [f"{n}.md" for n in DOCS_MARKDOWN] + [f"{n}.txt" for n in DOCS_TEXT] + [f"{n}.html" for n in DOCS_HTML]
)


@dataclass
class History:
    """Runs of the docs source in order, with the table rows and chunks after each, and published versions."""

    platform: Platform
    runs: dict[str, dg.ExecuteInProcessResult] = field(default_factory=dict)
    rows: dict[str, pa.Table] = field(default_factory=dict)
    chunks: dict[str, pa.Table] = field(default_factory=dict)
    version_before: dict[str, int] = field(default_factory=dict)
    published: dict[str, int] = field(default_factory=dict)

    def table(self):
        config = self.platform.config
        return open_table(
            connect(lancedb_uri(str(self.platform.home))), table_name(config.index.table, config.embedding.model)
        )

    def index_docs(self, label: str) -> None:
        if label != "first":
            self.version_before[label] = self.table().version
        result = self.platform.run(partition=SOURCE)
        assert result.success, f"index_job for {SOURCE} failed in step {label}"
        self.runs[label] = result
        self.rows[label] = (
            self.table().search().where(f"source = '{SOURCE}'").limit(None).to_arrow().sort_by("chunk_id")
        )
        self.chunks[label] = DatasetStore(str(self.platform.home)).read(CHUNKS_DATA, SOURCE)

    def publish(self, label: str) -> None:
        result = self.platform.run(PUBLISH_INDEX_JOB)
        assert result.success, f"publish_index_job failed after step {label}"
        self.published[label] = materialization(result, "published_index")["published_version"]

    def meta(self, label: str, asset: str) -> dict:
        return materialization(self.runs[label], asset)


@pytest.fixture(scope="module")
def history(new_platform) -> History:
    history = History(new_platform("end_to_end"))
    history.index_docs("first")
    assert history.platform.run(partition="notes").success
    history.publish("first")
    history.index_docs("unchanged")
    edited = history.platform.corpus(SOURCE) / EDITED
    edited.write_text(edited.read_text(encoding="utf-8").replace(ORIGINAL_SENTENCE, EDITED_SENTENCE), encoding="utf-8")
    history.index_docs("changed")
    (history.platform.corpus(SOURCE) / REMOVED).unlink()
    history.index_docs("removed")
    history.publish("removed")
    return history


def doc_rows(rows: pa.Table, locator: str) -> pa.Table:
    return rows.filter(pc.equal(rows["doc_id"], doc_id_for(SOURCE, locator)))


def other_rows(rows: pa.Table, locator: str) -> pa.Table:
    return rows.filter(pc.not_equal(rows["doc_id"], doc_id_for(SOURCE, locator)))


def test_first_run_indexes_every_good_document(history):
    assert sorted(set(history.rows["first"]["locator"].to_pylist())) == GOOD_FILES


def test_first_run_indexes_one_row_per_chunk(history):
    assert sorted(history.rows["first"]["chunk_id"].to_pylist()) == sorted(
        history.chunks["first"]["chunk_id"].to_pylist()
    )


def test_first_run_embeds_each_distinct_chunk_text_once(history):
    meta = history.meta("first", "embeddings")
    assert meta["computed"] == len(set(history.chunks["first"]["text_hash"].to_pylist())) > 0
    assert meta["computed"] + meta["reused"] == history.chunks["first"].num_rows


def test_unchanged_rerun_embeds_nothing(history):
    meta = history.meta("unchanged", "embeddings")
    assert (meta["computed"], meta["reused"]) == (0, history.chunks["first"].num_rows)


def test_unchanged_rerun_reports_every_document_unchanged(history):
    meta = history.meta("unchanged", "raw_documents")
    assert (meta["added"], meta["changed"], meta["removed"]) == (0, 0, 0)
    assert meta["unchanged"] == history.meta("first", "raw_documents")["documents"]


def test_unchanged_rerun_reads_again_only_the_files_that_gave_no_document(history):
    unreadable = sum(stage == "raw_documents" for stage, _ in BAD_FILES.values())
    assert history.meta("unchanged", "raw_documents")["files_read"] == unreadable


def test_unchanged_rerun_writes_no_table_version(history):
    again = history.meta("unchanged", "vector_index")
    assert (again["upserted"], again["deleted"], again["lance_version"]) == (0, 0, history.version_before["unchanged"])


def test_unchanged_rerun_leaves_the_rows_identical(history):
    assert history.rows["unchanged"].equals(history.rows["first"])


def test_changed_document_is_the_only_one_chunked_again(history):
    meta = history.meta("changed", "chunks")
    assert (meta["documents_chunked"], meta["documents_reused"]) == (1, len(GOOD_FILES) - 1)


def test_changed_document_reembeds_only_its_new_chunk_texts(history):
    before = set(history.chunks["unchanged"]["text_hash"].to_pylist())
    now = history.chunks["changed"]
    new_texts = {
        h
        for h, loc in zip(now["text_hash"].to_pylist(), now["locator"].to_pylist(), strict=False)
        if h not in before and loc == EDITED
    }
    meta = history.meta("changed", "embeddings")
    assert meta["computed"] == len(new_texts) > 0
    assert meta["reused"] == now.num_rows - meta["computed"]


def test_changed_document_rows_hold_its_new_text(history):
    texts = " ".join(doc_rows(history.rows["changed"], EDITED)["text"].to_pylist())
    assert EDITED_SENTENCE in texts and ORIGINAL_SENTENCE not in texts


def test_changed_document_leaves_other_documents_rows_untouched(history):
    assert other_rows(history.rows["changed"], EDITED).equals(other_rows(history.rows["unchanged"], EDITED))


def test_changed_document_replaces_only_its_changed_chunks(history):
    before, after = doc_rows(history.rows["unchanged"], EDITED), doc_rows(history.rows["changed"], EDITED)
    gone = set(before["chunk_id"].to_pylist()) - set(after["chunk_id"].to_pylist())
    added = set(after["chunk_id"].to_pylist()) - set(before["chunk_id"].to_pylist())
    meta = history.meta("changed", "vector_index")
    assert (meta["upserted"], meta["deleted"]) == (len(added), len(gone)) and meta["upserted"] > 0


def test_removed_document_is_reported_removed(history):
    assert history.meta("removed", "raw_documents")["removed"] == 1


def test_removed_document_rows_are_gone_from_the_table(history):
    assert doc_rows(history.rows["removed"], REMOVED).num_rows == 0
    assert history.meta("removed", "vector_index")["deleted"] == doc_rows(history.rows["changed"], REMOVED).num_rows > 0


def test_removing_a_document_leaves_the_others_rows(history):
    assert history.rows["removed"].equals(other_rows(history.rows["changed"], REMOVED))


def test_bad_files_are_quarantined_with_reasons_naming_them(history):
    store = DatasetStore(str(history.platform.home))
    records = (
        store.read(RAW_QUARANTINE_DATA, SOURCE).to_pylist() + store.read(CLEANED_QUARANTINE_DATA, SOURCE).to_pylist()
    )
    assert {r["locator"]: (r["stage"], r["kind"]) for r in records} == BAD_FILES
    assert all(r["reason"].startswith(f"{r['locator']}: ") for r in records)


def test_bad_files_stay_out_of_the_table(history):
    assert set(BAD_FILES).isdisjoint(history.rows["first"]["locator"].to_pylist())


def embedder(history):
    settings = history.platform.config.embedding
    return load_embedder(
        settings.model, device=settings.device, allow_download=settings.allow_download, batch_size=settings.batch_size
    )


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("anonymous function expressions", "lambda.md"),
        ("delete a key from a dictionary", "dict.md"),
        ("iterate over the items of a list", "for.md"),
    ],
)
def test_vector_search_finds_the_right_document(history, question, expected):
    vector = embedder(history).encode([question])[0]
    assert search(history.table(), question, vector, mode="vector", k=1)[0]["locator"] == expected


def test_publish_moves_the_tag_to_the_latest_evaluated_version(history):
    assert history.published["removed"] == history.meta("removed", "vector_index")["lance_version"]
    assert history.published["removed"] > history.published["first"]


@pytest.fixture
def cli_env(history, monkeypatch):
    monkeypatch.setenv(HOME_ENV, str(history.platform.home))
    monkeypatch.setenv(CONFIG_ENV, str(history.platform.config_path))
    return history


def served(history):
    config = history.platform.config
    return open_published(
        connect(lancedb_uri(str(history.platform.home))),
        table_name(config.index.table, config.embedding.model),
        config.index.published_tag,
    )


def test_cli_rollback_moves_the_served_tag_back_and_forward(cli_env, capsys):
    history = cli_env
    assert main(["index", "rollback", "--version", str(history.published["first"])]) == 0
    rolled_back = served(history)
    assert main(["index", "rollback", "--version", str(history.published["removed"])]) == 0
    assert rolled_back.version == history.published["first"]
    assert doc_rows(rolled_back.search().where(f"source = '{SOURCE}'").limit(None).to_arrow(), REMOVED).num_rows > 0
    assert served(history).version == history.published["removed"]
    assert f"-> {history.published['first']}" in capsys.readouterr().out


def test_cli_rollback_to_an_unknown_version_fails_naming_it(cli_env, capsys):
    assert main(["index", "rollback", "--version", "9999"]) == 2
    assert "version 9999" in capsys.readouterr().err
    assert (
        published_version(cli_env.table(), cli_env.platform.config.index.published_tag) == cli_env.published["removed"]
    )


def test_cli_search_prints_source_title_and_score(cli_env, capsys):
    assert main(["search", "anonymous function expressions", "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"^ 1\. \[fused \d\.\d{3} \| similarity (-?\d\.\d{3}|-) \| keyword \(BM25\) (\d+\.\d{2}|-)\] docs: Lambdas\b",
        out,
        re.MULTILINE,
    ), out

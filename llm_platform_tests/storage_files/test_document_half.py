"""The document half with its storage home on an S3-compatible server: every
dataset, the quarantine, the LanceDB table and its tag.
"""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest

from llm_platform.automation.jobs import PUBLISH_INDEX_JOB
from llm_platform.cli import main
from llm_platform.config import CONFIG_ENV, HOME_ENV, load_config
from llm_platform.datasets import DatasetStore
from llm_platform.definitions import build_definitions
from llm_platform.documents.datasets import (
    CHUNKS_DATA,
    CLEANED_CORPUS_DATA,
    CLEANED_QUARANTINE_DATA,
    RAW_DOCUMENTS_DATA,
    RAW_QUARANTINE_DATA,
)
from llm_platform.index.datasets import EMBEDDINGS_DATA, RETRIEVAL_EVAL_DATA
from llm_platform.index.table import connect, open_published, table_name
from llm_platform_tests.conftest import BAD_FILES, CONFIG, NOTES_MARKDOWN, Platform, _write_corpus, materialization

DATASETS = (
    RAW_DOCUMENTS_DATA,
    CLEANED_CORPUS_DATA,
    CHUNKS_DATA,
    EMBEDDINGS_DATA,
    RAW_QUARANTINE_DATA,
    CLEANED_QUARANTINE_DATA,
    RETRIEVAL_EVAL_DATA,
)


NOTES_URL = "s3://documents/landing/notes"  # one source's landing folder in the bucket too


@pytest.fixture(scope="module")
def on_s3(tmp_path_factory, s3_endpoint) -> Platform:
    """The docs and notes sources indexed and published with the home in a bucket (local corpus, remote home)."""
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("s3_documents")
        from llm_platform.storage_files import CACHE_ENV, ENDPOINT_ENV
        from llm_platform_tests.storage_files.s3_server import CREDENTIALS

        for name, value in {**CREDENTIALS, ENDPOINT_ENV: s3_endpoint, CACHE_ENV: str(root / "cache")}.items():
            patch.setenv(name, value)
        fs = fsspec.filesystem("s3")
        fs.mkdir("documents")
        _write_corpus(root / "corpus")
        fs.put(str(root / "corpus" / "notes"), "documents/landing/notes", recursive=True)
        (root / "platform.yaml").write_text(
            CONFIG.replace("location: corpus/notes", f"location: {NOTES_URL}"), encoding="utf-8"
        )
        config = load_config(root / "platform.yaml")
        home = "s3://documents/home"
        platform = Platform(root, config, home, build_definitions(config, home=home, executor="in_process"))
        runs = [platform.run(partition=source) for source in config.source_names] + [platform.run(PUBLISH_INDEX_JOB)]
        assert all(r.success for r in runs), "a document job failed with the home on S3"
        platform.published = materialization(runs[-1], "published_index")  # type: ignore[attr-defined]
        yield platform


def test_every_dataset_is_written_to_the_bucket(on_s3, s3_env):
    store = DatasetStore(on_s3.home)
    for dataset in DATASETS:
        partitions = on_s3.config.source_names if dataset.partitioned else [None]
        for partition in partitions:
            assert store.current_version(dataset, partition), (
                f"{dataset.name}/{partition or ''} has no current version in the bucket"
            )
    assert fsspec.filesystem("s3").exists("documents/home/datasets/chunks/docs/CURRENT")


def test_quarantine_records_are_readable_from_the_bucket(on_s3, s3_env):
    store = DatasetStore(on_s3.home)
    quarantined = {
        row["locator"]: row["kind"]
        for quarantine in (RAW_QUARANTINE_DATA, CLEANED_QUARANTINE_DATA)
        for row in store.read(quarantine, "docs").to_pylist()
    }
    assert quarantined == {name: kind for name, (_, kind) in BAD_FILES.items()}


def test_lancedb_table_and_its_tag_live_in_the_bucket(on_s3, s3_env):
    name = table_name(on_s3.config.index.table, on_s3.config.embedding.model)
    table = open_published(connect(f"{on_s3.home}/lancedb"), name, on_s3.config.index.published_tag)
    assert table.version == on_s3.published["published_version"]
    assert set(table.to_arrow().column("source").to_pylist()) == {"docs", "notes"}
    assert fsspec.filesystem("s3").glob(f"documents/home/lancedb/{name}.lance/_versions/*")


def test_a_source_in_the_bucket_is_listed_and_read(on_s3, s3_env):
    assert on_s3.config.source("notes").location == NOTES_URL
    rows = DatasetStore(on_s3.home).read(RAW_DOCUMENTS_DATA, "notes").to_pylist()
    assert sorted(r["locator"] for r in rows) == sorted(f"{name}.md" for name in NOTES_MARKDOWN)


def test_nothing_is_written_to_a_local_folder_named_like_the_url(on_s3, s3_env):
    assert not Path("s3:").exists() and not (on_s3.root / "s3:").exists()


def test_search_cli_reads_the_published_index_from_the_bucket(on_s3, s3_env, monkeypatch, capsys):
    monkeypatch.setenv(HOME_ENV, on_s3.home)
    monkeypatch.setenv(CONFIG_ENV, str(on_s3.config_path))
    assert main(["search", "iterate over the elements of a sequence", "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert f"version {on_s3.published['published_version']} (production)" in out
    assert "for" in out.lower()

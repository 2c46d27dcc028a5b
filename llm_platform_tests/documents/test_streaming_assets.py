"""The document assets with a tiny batch budget: several row groups per dataset,
checks over all of them, same rows, same versions on a re-run.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from llm_platform.datasets import Dataset, DatasetStore
from llm_platform.documents import batching
from llm_platform.documents.datasets import CHUNKS_DATA, CLEANED_CORPUS_DATA, RAW_DOCUMENTS_DATA
from llm_platform_tests.conftest import DOCUMENT_STAGES, materialization, run_document_stages

STAGE_DATA = (RAW_DOCUMENTS_DATA, CLEANED_CORPUS_DATA, CHUNKS_DATA)


@pytest.fixture(scope="module")
def small_batches(new_platform):
    """The docs source through the three stages twice with batches of 2,000 characters of text."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batching, "BATCH_TEXT_BYTES", 2_000)
        platform = new_platform("small_batches")
        yield platform, run_document_stages(platform), run_document_stages(platform)


def row_groups(platform, dataset: Dataset) -> int:
    store = DatasetStore(str(platform.home))
    path = f"{platform.home}/datasets/{dataset.name}/docs/{store.current_version(dataset, 'docs')}"
    return pq.ParquetFile(path).num_row_groups


def test_each_stage_writes_its_dataset_in_several_batches(small_batches):
    platform, _, _ = small_batches
    assert all(row_groups(platform, dataset) > 2 for dataset in STAGE_DATA)


def test_every_check_passes_over_all_batches(small_batches):
    _, first, _ = small_batches
    evaluations = first.get_asset_check_evaluations()
    assert len(evaluations) >= 13 and all(e.passed for e in evaluations if e.check_name != "source_not_empty")


def test_unchanged_rerun_in_small_batches_keeps_every_dataset_version(small_batches):
    _, first, second = small_batches
    for stage in DOCUMENT_STAGES:
        assert materialization(second, stage)["dataset_version"] == materialization(first, stage)["dataset_version"]
    assert (
        materialization(second, "chunks")["documents_reused"] == materialization(first, "chunks")["documents_chunked"]
    )


def test_small_batches_write_the_same_rows_as_one_batch(small_batches, new_platform, monkeypatch):
    streamed, _, _ = small_batches
    monkeypatch.setattr(batching, "BATCH_TEXT_BYTES", 10**9)
    whole = new_platform("one_batch")
    run_document_stages(whole)
    for dataset in (CLEANED_CORPUS_DATA, CHUNKS_DATA):
        assert (
            DatasetStore(str(streamed.home))
            .read(dataset, "docs")
            .equals(DatasetStore(str(whole.home)).read(dataset, "docs"))
        )
    assert row_groups(whole, CHUNKS_DATA) == 1

"""The document assets re-run after a change: only the changed document is cleaned and chunked
again, documents set aside are reused too, and every dataset equals a cold run's over the
same final files.
"""

from __future__ import annotations

import pytest

from llm_platform.datasets import DatasetStore
from llm_platform.documents.datasets import (
    CHUNKS_DATA,
    CLEANED_CORPUS_DATA,
    CLEANED_QUARANTINE_DATA,
    CLEANED_SET_ASIDE_DATA,
)
from llm_platform_tests.conftest import materialization, run_document_stages

CHANGED = "while.md"


@pytest.fixture(scope="module")
def incremental_and_cold(new_platform):
    """The docs source run, one page changed and run again; and a cold run over the changed files in a fresh home."""
    incremental = new_platform("incremental")
    run_document_stages(incremental)
    with (incremental.corpus("docs") / CHANGED).open("a", encoding="utf-8") as page:
        page.write("\n\nRevised: one paragraph was added at the end of this page.\n")
    rerun = run_document_stages(incremental)
    cold = new_platform("cold_over_changed")
    (cold.corpus("docs") / CHANGED).write_text(
        (incremental.corpus("docs") / CHANGED).read_text(encoding="utf-8"), encoding="utf-8"
    )
    run_document_stages(cold)
    return incremental, rerun, cold


def test_rerun_cleans_and_chunks_only_the_changed_page(incremental_and_cold):
    _, rerun, _ = incremental_and_cold
    assert materialization(rerun, "cleaned_corpus")["cleaned"] == 1
    assert materialization(rerun, "chunks")["documents_chunked"] == 1


def test_rerun_reuses_the_page_set_aside_as_too_short(incremental_and_cold):
    incremental, _, _ = incremental_and_cold
    aside = DatasetStore(str(incremental.home)).read(CLEANED_SET_ASIDE_DATA, "docs")
    assert aside.column("locator").to_pylist() == ["todo.md"]


@pytest.mark.parametrize(
    "dataset", [CLEANED_CORPUS_DATA, CLEANED_SET_ASIDE_DATA, CLEANED_QUARANTINE_DATA, CHUNKS_DATA], ids=lambda d: d.name
)
def test_rerun_writes_what_a_cold_run_over_the_same_files_writes(incremental_and_cold, dataset):
    incremental, _, cold = incremental_and_cold
    after_rerun = DatasetStore(str(incremental.home)).read(dataset, "docs")
    assert after_rerun.num_rows and after_rerun.equals(DatasetStore(str(cold.home)).read(dataset, "docs"))

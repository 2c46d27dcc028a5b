"""A source's readers through the Dagster assets: a readers-only change reaches
the index without re-embedding, and eval scores each group.
"""

from __future__ import annotations

import dagster as dg
import pytest

from llm_platform.automation.jobs import DOCUMENT_ASSETS
from llm_platform.config import load_config
from llm_platform.definitions import build_definitions
from llm_platform.index.access import ReaderGroups
from llm_platform.index.table import configured_table_name, connect, open_table, search
from llm_platform_tests.conftest import CONFIG, materialization

HR_CONFIG = CONFIG.replace('glob: "*.md"\n    public: true', 'glob: "*.md"\n    readers: [hr]')
assert HR_CONFIG != CONFIG, "the notes source of the test config must be public for this test to change it"


def materialize(defs: dg.Definitions, selection, partition=None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        list(defs.assets),
        selection=selection,
        partition_key=partition,
        resources=defs.resources,
        instance=dg.DagsterInstance.ephemeral(),
    )


@pytest.fixture(scope="module")
def regranted(new_platform):
    """Both sources indexed as public, then notes again after its config
    gives it to group hr alone; then the index evaluated.
    """
    platform = new_platform("access")
    materialize(platform.defs, DOCUMENT_ASSETS, "docs")
    first = materialize(platform.defs, DOCUMENT_ASSETS, "notes")
    path = platform.root / "hr.yaml"
    path.write_text(HR_CONFIG, encoding="utf-8")
    config = load_config(path)
    defs = build_definitions(config, home=str(platform.home), executor="in_process")
    second = materialize(defs, DOCUMENT_ASSETS, "notes")
    evaluated = materialize(defs, ["retrieval_eval"])
    table = open_table(connect(f"{platform.home}/lancedb"), configured_table_name(config))
    return first, second, evaluated, table


def test_a_readers_only_change_counts_as_changed_and_updates_rows_without_embedding(regranted):
    first, second, _, _ = regranted
    chunks = materialization(first, "chunks")["chunks"]
    assert materialization(second, "raw_documents")["changed"] == materialization(first, "raw_documents")["documents"]
    assert materialization(second, "embeddings")["computed"] == 0
    index = materialization(second, "vector_index")
    assert (index["readers_updated"], index["upserted"], index["deleted"]) == (chunks, 0, 0)


def test_after_the_change_only_hr_finds_the_notes(regranted):
    *_, table = regranted
    as_hr = search(table, "identifiers", None, mode="fts", k=5, source="notes", readers=ReaderGroups.of({"hr"}))
    as_public = search(table, "identifiers", None, mode="fts", k=5, source="notes", readers=ReaderGroups.public_only())
    assert as_hr and as_public == []


def test_retrieval_eval_scores_the_hr_group_on_the_questions_it_may_read(regranted):
    _, _, evaluated, _ = regranted
    meta = materialization(evaluated, "retrieval_eval")
    by_group = meta["hit_rate_at_5_by_reader_group"]
    assert set(by_group) == {"*", "hr"}, "notes are hr's; docs stay public"
    # hr may read the notes and the public docs; a caller in no group, the docs alone.
    assert 0 < by_group["*"]["questions"] < by_group["hr"]["questions"] == meta["questions"]

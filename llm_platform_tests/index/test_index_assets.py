"""The index assets through Dagster: unchanged re-runs keep their data
versions, and a new model's table must beat the served one.
"""

from __future__ import annotations

import dagster as dg
import numpy as np
import pyarrow as pa
import pytest

from llm_platform.automation.jobs import DOCUMENT_ASSETS, PUBLISH_ASSETS
from llm_platform.index.assets import INDEX_UPKEEP, RETRIEVAL_NO_REGRESSION
from llm_platform.index.table import connect, open_table, table_name
from llm_platform_tests.conftest import materialize as materialize_in_process


def materialize(platform, selection, partition=None) -> dg.ExecuteInProcessResult:
    return materialize_in_process(platform, selection, partition, raise_on_error=False)


def data_versions(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    return {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.tags["dagster/data_version"]
        for e in result.get_asset_materialization_events()
    }


@pytest.fixture(scope="module")
def published(new_platform):
    platform = new_platform("index_assets")
    runs = [materialize(platform, DOCUMENT_ASSETS, source) for source in ("docs", "notes")]
    runs.append(materialize(platform, PUBLISH_ASSETS))
    assert all(run.success for run in runs)
    return platform, runs


def test_an_unchanged_rerun_reports_the_same_data_versions(published):
    platform, runs = published
    again = materialize(platform, DOCUMENT_ASSETS, "notes")
    assert data_versions(again) == data_versions(runs[1])


def test_vector_index_reports_its_upkeep_as_a_check(published):
    _, runs = published
    [upkeep] = [e for e in runs[0].get_asset_check_evaluations() if e.check_name == INDEX_UPKEEP]
    assert upkeep.passed and "text_fts_" in upkeep.description


def test_a_new_models_table_is_gated_against_the_served_table_of_the_old_model(published):
    platform, _ = published
    db = connect(f"{platform.home}/lancedb")
    name = table_name(platform.config.index.table, platform.config.embedding.model)
    current = open_table(db, name)
    tag = platform.config.index.published_tag
    served = current.tags.list()[tag]["version"]
    current.checkout(served)
    older = db.create_table(f"{platform.config.index.table}__older_model", current.to_arrow())
    older.tags.create(tag, older.version)
    current = open_table(db, name)  # the "new model": no served tag yet, and vectors that retrieve nothing useful
    current.tags.delete(tag)
    rows = current.to_arrow()
    noise = np.random.default_rng(0).normal(size=(rows.num_rows, 384)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    scrambled = rows.set_column(
        rows.schema.get_field_index("vector"),
        "vector",
        pa.FixedSizeListArray.from_arrays(pa.array(noise.reshape(-1)), 384),
    )
    current.merge_insert("chunk_id").when_matched_update_all().execute(scrambled)
    result = materialize(platform, ["retrieval_eval"])
    [gate] = [e for e in result.get_asset_check_evaluations() if e.check_name == RETRIEVAL_NO_REGRESSION]
    assert not gate.passed and "vs published" in gate.description
    assert not materialize(platform, ["published_index"]).success
    assert tag not in open_table(db, name).tags.list()

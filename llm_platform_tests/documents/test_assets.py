"""The document assets through Dagster on an ephemeral instance: materializations, metadata, checks, sensor, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from llm_platform.automation.jobs import DOCUMENT_ASSETS, PUBLISH_ASSETS
from llm_platform.automation.sensors import SOURCE_SENSOR
from llm_platform.config import CONFIG_ENV, HOME_ENV
from llm_platform.definitions import EXECUTOR_ENV
from llm_platform.documents.pii_rule import no_pii_left
from llm_platform.home_layout import lancedb_uri
from llm_platform.index.table import connect, open_table, table_name
from llm_platform.metadata import check_result, frame, rate_check
from llm_platform.rules import tokens_at_most, validate_rule
from llm_platform_tests.conftest import BAD_FILES, DOCS_HTML, DOCS_MARKDOWN, DOCS_TEXT, materialization, materialize

# Names as the CLI and events print them.
DOCUMENT_NAMES = [key.to_user_string() for key in DOCUMENT_ASSETS]
INDEX_NAMES = [key.to_user_string() for key in PUBLISH_ASSETS]
GOOD_DOCS = len(DOCS_MARKDOWN) + len(DOCS_TEXT) + len(DOCS_HTML)


def checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


@pytest.fixture(scope="module")
def indexed(new_platform):
    """Both sources materialized through vector_index, then the index evaluated and published."""
    platform = new_platform("assets")
    runs = {source: materialize(platform, DOCUMENT_ASSETS, source) for source in ("docs", "notes")}
    runs["publish"] = materialize(platform, PUBLISH_ASSETS)
    return platform, runs


def test_every_document_asset_materializes_for_a_source_partition(indexed):
    _, runs = indexed
    events = runs["docs"].get_asset_materialization_events()
    assert sorted(e.asset_key.to_user_string() for e in events) == sorted(DOCUMENT_NAMES)
    assert {e.partition for e in events} == {"docs"}


def test_retrieval_eval_and_published_index_materialize_over_the_whole_table(indexed):
    _, runs = indexed
    assert sorted(e.asset_key.to_user_string() for e in runs["publish"].get_asset_materialization_events()) == sorted(
        INDEX_NAMES
    )


def test_all_checks_pass_on_good_data(indexed):
    _, runs = indexed
    failed = {key: e.description for run in runs.values() for key, e in checks(run).items() if not e.passed}
    assert failed == {}


def test_every_declared_check_is_evaluated(indexed):
    platform, runs = indexed
    declared = {
        (key.asset_key.to_user_string(), key.name) for key in platform.defs.resolve_asset_graph().asset_check_keys
    }
    evaluated = set(checks(runs["docs"])) | set(checks(runs["publish"]))
    assert {key for key in declared if key[0] in DOCUMENT_NAMES + INDEX_NAMES} <= evaluated


def test_raw_documents_metadata_counts_the_diff(indexed):
    _, runs = indexed
    meta = materialization(runs["docs"], "raw_documents")
    expected_documents = GOOD_DOCS + sum(stage == "cleaned_corpus" for stage, _ in BAD_FILES.values())
    assert (meta["added"], meta["changed"], meta["removed"], meta["unchanged"]) == (expected_documents, 0, 0, 0)


def test_raw_documents_metadata_counts_quarantine_by_reason(indexed):
    _, runs = indexed
    expected = {kind: 1 for stage, kind in BAD_FILES.values() if stage == "raw_documents"}
    assert materialization(runs["docs"], "raw_documents")["quarantined_by_reason"] == expected


def test_cleaned_corpus_metadata_counts_pii_redactions_by_kind(indexed):
    _, runs = indexed
    assert materialization(runs["docs"], "cleaned_corpus")["pii_redactions_by_kind"] == {"email": 1}
    assert materialization(runs["notes"], "cleaned_corpus")["pii_redactions_by_kind"] == {}


def test_cleaned_corpus_metadata_counts_documents_set_aside(indexed):
    _, runs = indexed
    meta = materialization(runs["docs"], "cleaned_corpus")
    assert (meta["documents"], meta["set_aside"], meta["cleaned"], meta["reused"]) == (GOOD_DOCS, 1, GOOD_DOCS + 1, 0)


def test_embeddings_metadata_counts_computed_and_reused(indexed):
    _, runs = indexed
    chunks = materialization(runs["notes"], "chunks")["chunks"]
    meta = materialization(runs["notes"], "embeddings")
    assert (meta["computed"] + meta["reused"], meta["vectors"]) == (chunks, chunks) and meta["computed"] > 0


def test_vector_index_metadata_records_the_lance_version_it_wrote(indexed):
    platform, runs = indexed
    table = open_table(
        connect(lancedb_uri(str(platform.home))),
        table_name(platform.config.index.table, platform.config.embedding.model),
    )
    versions = {v["version"] for v in table.list_versions()}
    meta = materialization(runs["notes"], "vector_index")
    assert (
        meta["lance_version"] in versions
        and meta["rows_for_source"] == materialization(runs["notes"], "chunks")["chunks"]
    )


def test_published_index_metadata_names_the_published_version_and_rollback(indexed):
    _, runs = indexed
    meta = materialization(runs["publish"], "published_index")
    assert meta["published_version"] == materialization(runs["notes"], "vector_index")["lance_version"]
    assert meta["rollback"] == "nothing to roll back to"


def test_pii_left_in_the_text_fails_the_blocking_check_and_stops_downstream(new_platform, monkeypatch):
    platform = new_platform("pii_left")
    monkeypatch.setattr("llm_platform.documents.cleaning.redact_pii", lambda text: (text, {}))
    result = materialize(platform, ["raw_documents", "cleaned_corpus", "chunks"], "docs", raise_on_error=False)
    assert checks(result)[("cleaned_corpus", "no_pii_left")].passed is False
    assert "chunks" not in {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_check_result_fails_when_its_rule_is_broken():
    outcome = validate_rule(tokens_at_most(128), frame([{"token_count": 12}, {"token_count": 300}], ["token_count"]))
    result = check_result("token_count_within_limit", outcome)
    assert (result.passed, result.metadata["failures"].value, result.metadata["examples"].value) == (False, 1, ["300"])


def test_check_result_passes_when_its_rule_holds():
    assert check_result(
        "no_pii_left", validate_rule(no_pii_left(), frame([{"text": "no contact data"}], ["text"]))
    ).passed


def test_rate_check_fails_above_its_maximum():
    result = rate_check("quarantine_rate", 4, 10, 0.3, what="files quarantined")
    assert result.passed is False and "4 of 10 files quarantined (40.0%)" in result.description


def test_rate_check_passes_at_its_maximum():
    assert rate_check("quarantine_rate", 3, 10, 0.3, what="files quarantined").passed


@pytest.fixture
def sensor_platform(new_platform):
    """A platform whose sources have been seen once by the sensor; returns it with the sensor's cursor."""
    platform = new_platform("sensor")
    result = evaluate_sensor(platform, None)
    return platform, result.cursor


def evaluate_sensor(platform, cursor: str | None) -> dg.SensorResult:
    sensor = platform.defs.resolve_sensor_def(SOURCE_SENSOR)
    return sensor(dg.build_sensor_context(cursor=cursor, instance=dg.DagsterInstance.ephemeral()))


def test_sensor_targets_the_index_job(new_platform):
    assert new_platform("sensor_job").defs.resolve_sensor_def(SOURCE_SENSOR).job_name == "index_job"


def test_sensor_requests_every_source_on_first_sight(new_platform):
    result = evaluate_sensor(new_platform("sensor_first"), None)
    assert sorted(r.partition_key for r in result.run_requests) == ["docs", "notes"]


def test_sensor_requests_nothing_when_no_file_changed(sensor_platform):
    platform, cursor = sensor_platform
    result = evaluate_sensor(platform, cursor)
    assert result.run_requests == [] and json.loads(result.cursor) == json.loads(cursor)


def test_sensor_requests_a_run_only_for_the_changed_source(sensor_platform):
    platform, cursor = sensor_platform
    (platform.corpus("notes") / "typesmodules.md").write_text("# Modules\n\nRewritten.\n", encoding="utf-8")
    result = evaluate_sensor(platform, cursor)
    assert [r.partition_key for r in result.run_requests] == ["notes"]


def test_sensor_requests_a_run_when_a_file_is_removed(sensor_platform):
    platform, cursor = sensor_platform
    (platform.corpus("docs") / "while.md").unlink()
    assert [r.partition_key for r in evaluate_sensor(platform, cursor).run_requests] == ["docs"]


def dagster_cli(platform, tmp_path, *args: str) -> subprocess.CompletedProcess:
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir(exist_ok=True)
    # in_process: the multiprocess default would import the code location a second time, in a child process.
    env = {
        **os.environ,
        CONFIG_ENV: str(platform.config_path),
        HOME_ENV: str(platform.home),
        "DAGSTER_HOME": str(dagster_home),
        EXECUTOR_ENV: "in_process",
    }
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    return subprocess.run(
        [dagster, *args, "-m", "llm_platform.definitions"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_dagster_asset_list_shows_the_document_assets(new_platform, tmp_path):
    done = dagster_cli(new_platform("cli_list"), tmp_path, "asset", "list")
    assert done.returncode == 0, done.stderr[-2000:]
    assert set(DOCUMENT_NAMES + INDEX_NAMES) <= set(done.stdout.split())


def test_dagster_asset_materialize_runs_one_source_partition(new_platform, tmp_path):
    platform = new_platform("cli_materialize")
    done = dagster_cli(platform, tmp_path, "asset", "materialize", "--select", "raw_documents", "--partition", "notes")
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in (platform.home / "datasets" / "raw_documents").iterdir()) == ["notes"]

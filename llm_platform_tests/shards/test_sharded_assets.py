"""A sharded source through Dagster: same index as unsharded, shards
isolated, re-sharding embeds nothing, sensor per shard.
"""

from __future__ import annotations

import json
from pathlib import Path
from pydoc_data.topics import topics

import dagster as dg
import numpy as np
import pytest
import yaml

from llm_platform.automation.jobs import DOCUMENT_ASSETS, INDEX_JOB
from llm_platform.automation.sensors import SOURCE_SENSOR
from llm_platform.config import load_config
from llm_platform.home_layout import lancedb_uri
from llm_platform.identity import doc_id_for
from llm_platform.index import embedding_assets
from llm_platform.index.embedding import query_embedder
from llm_platform.index.table import (
    configured_table_name,
    connect,
    open_published,
    open_table,
    search,
    source_chunk_ids,
)
from llm_platform.shards import Shard
from llm_platform_tests.conftest import materialization, materialize

SOURCE = "wiki"
NAMES = ("for", "while", "if", "with", "raise", "assert", "return", "del", "lambda", "dict", "global", "class")
RECORDS = 6
QUERIES = ("how does a for loop iterate", "raising an exception", "anonymous functions", "dictionary displays")
PUBLISH = ["retrieval_eval", "published_index"]


def write_corpus(folder: Path) -> None:
    folder.mkdir(parents=True)
    for name in NAMES:
        title, _, body = topics[name].partition("\n")
        (folder / f"{name}.md").write_text(f"# {title}\n\n{body.lstrip('*').lstrip()[:2500]}", encoding="utf-8")
    records = [
        {"title": f"{name} in one paragraph", "text": topics[name][:700]}
        for name in ("break", "continue", "pass", "import", "yield", "try")[:RECORDS]
    ]
    (folder / "faq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


class ShardedPlatform:
    """One corpus and storage home; `configure(shards)` rewrites the config
    and rebuilds the Definitions over the same home.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        write_corpus(root / SOURCE)
        self.configure(1)

    def configure(self, shards: int) -> None:
        from llm_platform.definitions import build_definitions

        raw = {
            "sources": [{"name": SOURCE, "location": SOURCE, "shards": shards}],
            "chunking": {"max_tokens": 128, "overlap": 16},
            "index": {"min_retrieval_hit_rate": 0.3, "max_retrieval_regression": 0.2},
        }
        (self.root / "platform.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
        self.config = load_config(self.root / "platform.yaml")
        self.defs = build_definitions(self.config, home=str(self.root / "home"), executor="in_process")

    def materialize(self, selection, partition: str | None = None) -> dg.ExecuteInProcessResult:
        return materialize(self, selection, partition, raise_on_error=False)

    def build_all(self) -> dict[str, dg.ExecuteInProcessResult]:
        return {key: self.materialize(DOCUMENT_ASSETS, key) for key in self.config.partition_keys}

    def table(self):
        return open_table(connect(lancedb_uri(str(self.root / "home"))), configured_table_name(self.config))

    def rows(self) -> list[tuple]:
        found = (
            self.table()
            .search()
            .select(["chunk_id", "doc_id", "source", "locator", "position", "text"])
            .limit(None)
            .to_list()
        )
        return sorted((r["chunk_id"], r["doc_id"], r["source"], r["locator"], r["position"], r["text"]) for r in found)

    def vectors(self) -> dict[str, np.ndarray]:
        found = self.table().search().select(["chunk_id", "vector"]).limit(None).to_list()
        return {r["chunk_id"]: np.asarray(r["vector"]) for r in found}

    def answers(self, table=None) -> list[list[str]]:
        encode = query_embedder(self.config.embedding).encode
        vectors = encode(list(QUERIES))
        return [
            [hit["chunk_id"] for hit in search(table or self.table(), q, v, mode="vector", k=5)]
            for q, v in zip(QUERIES, vectors, strict=True)
        ]


def failed(runs: dict[str, dg.ExecuteInProcessResult]) -> dict[str, list[str]]:
    """The error messages of each failed run's failed steps, by partition."""
    return {
        key: [e.step_failure_data.error.message for e in run.all_events if e.is_step_failure]
        for key, run in runs.items()
        if not run.success
    }


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory) -> ShardedPlatform:
    platform = ShardedPlatform(tmp_path_factory.mktemp("unsharded"))
    assert failed(platform.build_all()) == {}
    return platform


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> tuple[ShardedPlatform, dict[str, dg.ExecuteInProcessResult]]:
    platform = ShardedPlatform(tmp_path_factory.mktemp("sharded"))
    platform.configure(3)
    runs = platform.build_all()
    assert failed(runs) == {}
    return platform, runs


def test_each_shard_is_its_own_partition_of_every_document_asset(sharded):
    _, runs = sharded
    assert sorted(runs) == ["wiki.0-of-3", "wiki.1-of-3", "wiki.2-of-3"]
    for key, run in runs.items():
        assert {e.partition for e in run.get_asset_materialization_events()} == {key}


def test_every_shard_holds_some_of_the_source(sharded):
    _, runs = sharded
    assert all(materialization(run, "vector_index")["rows_for_source"] > 0 for run in runs.values())


def test_a_sharded_source_indexes_the_same_rows_as_the_same_source_unsharded(unsharded, sharded):
    platform, _ = sharded
    assert platform.rows() == unsharded.rows()
    mine, theirs = platform.vectors(), unsharded.vectors()
    # The same text in another batch differs in the last float digits (padding), never more.
    assert all(np.allclose(mine[chunk_id], theirs[chunk_id], atol=1e-4) for chunk_id in theirs)


def test_a_sharded_source_answers_searches_with_the_same_chunks_as_unsharded(unsharded, sharded):
    platform, _ = sharded
    assert platform.answers() == unsharded.answers()


def test_every_shards_checks_pass(sharded):
    _, runs = sharded
    assert {
        (key, e.check_name): e.description
        for key, run in runs.items()
        for e in run.get_asset_check_evaluations()
        if not e.passed
    } == {}


def test_resharding_two_to_three_embeds_nothing_and_moves_no_row(tmp_path, monkeypatch):
    platform = ShardedPlatform(tmp_path)
    platform.configure(2)
    assert failed(platform.build_all()) == {}
    before = platform.rows()
    loads = []
    original = embedding_assets.configured_embedder
    monkeypatch.setattr(
        embedding_assets, "configured_embedder", lambda settings: loads.append(settings) or original(settings)
    )
    platform.configure(3)
    runs = platform.build_all()
    assert failed(runs) == {}
    assert [materialization(run, "embeddings")["computed"] for run in runs.values()] == [0, 0, 0]
    assert loads == [], "re-sharding loaded the embedding model: some text was embedded again"
    assert [
        (materialization(run, "vector_index")["upserted"], materialization(run, "vector_index")["deleted"])
        for run in runs.values()
    ] == [(0, 0)] * 3
    assert platform.rows() == before


@pytest.fixture
def published_shards(tmp_path) -> ShardedPlatform:
    platform = ShardedPlatform(tmp_path)
    platform.configure(3)
    assert failed(platform.build_all()) == {}
    assert platform.materialize(PUBLISH).success
    return platform


def owned_files(shard: Shard) -> list[str]:
    return [f"{name}.md" for name in NAMES if shard.owns(doc_id_for(SOURCE, f"{name}.md"))]


def test_a_failed_shard_leaves_its_rows_the_other_shards_and_the_served_index_intact(published_shards):
    platform = published_shards
    failing, growing, untouched = Shard(SOURCE, 1, 3), Shard(SOURCE, 0, 3), Shard(SOURCE, 2, 3)
    table = platform.table()
    failing_rows, untouched_rows = source_chunk_ids(table, failing), source_chunk_ids(table, untouched)
    served_before = platform.answers(
        open_published(connect(lancedb_uri(str(platform.root / "home"))), table.name, "production")
    )
    for name in owned_files(failing):  # shard 1 loses every file: its mass-deletion guard refuses
        (platform.root / SOURCE / name).unlink()
    new_file = next(f"page{n}.md" for n in range(1000) if growing.owns(doc_id_for(SOURCE, f"page{n}.md")))
    (platform.root / SOURCE / new_file).write_text("# Yield expressions\n\n" + topics["yield"][:2000], encoding="utf-8")
    runs = platform.build_all()
    assert sorted(failed(runs)) == [failing.key]
    assert "allow_mass_deletion" in " ".join(failed(runs)[failing.key])
    table = platform.table()
    assert source_chunk_ids(table, failing) == failing_rows
    assert source_chunk_ids(table, untouched) == untouched_rows
    assert doc_id_for(SOURCE, new_file) in {row[1] for row in platform.rows()}
    served = open_published(connect(lancedb_uri(str(platform.root / "home"))), table.name, "production")
    assert platform.answers(served) == served_before


def evaluate_sensor(platform: ShardedPlatform, cursor: str | None) -> dg.SensorResult:
    sensor = platform.defs.resolve_sensor_def(SOURCE_SENSOR)
    return sensor(dg.build_sensor_context(cursor=cursor, instance=dg.DagsterInstance.ephemeral()))


def test_sensor_requests_every_shard_of_a_source_on_first_sight(tmp_path):
    platform = ShardedPlatform(tmp_path)
    platform.configure(3)
    assert (
        sorted(r.partition_key for r in evaluate_sensor(platform, None).run_requests) == platform.config.partition_keys
    )


def test_sensor_requests_only_the_shard_whose_file_changed(tmp_path):
    platform = ShardedPlatform(tmp_path)
    platform.configure(3)
    cursor = evaluate_sensor(platform, None).cursor
    shard = Shard(SOURCE, 2, 3)
    (platform.root / SOURCE / owned_files(shard)[0]).write_text("# Changed\n\n" + topics["pass"], encoding="utf-8")
    assert [r.partition_key for r in evaluate_sensor(platform, cursor).run_requests] == [shard.key]


def test_sensor_requests_every_shard_when_a_record_file_changed(tmp_path):
    platform = ShardedPlatform(tmp_path)
    platform.configure(3)
    cursor = evaluate_sensor(platform, None).cursor
    with (platform.root / SOURCE / "faq.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"title": "A new record", "text": topics["nonlocal"][:600]}) + "\n")
    assert (
        sorted(r.partition_key for r in evaluate_sensor(platform, cursor).run_requests)
        == platform.config.partition_keys
    )


def test_sensor_keeps_the_cursor_of_an_unsharded_source_as_before(tmp_path):
    platform = ShardedPlatform(tmp_path)
    assert list(json.loads(evaluate_sensor(platform, None).cursor)) == [SOURCE]


def test_index_job_runs_every_shard_as_its_own_partition(sharded):
    platform, _ = sharded
    job = platform.defs.resolve_job_def(INDEX_JOB)
    assert job.partitions_def is not None
    assert job.partitions_def.get_partition_keys() == ["wiki.0-of-3", "wiki.1-of-3", "wiki.2-of-3"]


def test_a_shard_that_owns_no_document_builds_empty_and_passes_its_checks(tmp_path):
    platform = ShardedPlatform(tmp_path)
    platform.configure(3)
    empty = Shard(SOURCE, 1, 3)
    for name in [*owned_files(empty), "faq.jsonl"]:
        (platform.root / SOURCE / name).unlink()
    run = platform.materialize(DOCUMENT_ASSETS, empty.key)
    assert failed({empty.key: run}) == {}
    assert materialization(run, "vector_index")["rows_for_source"] == 0
    assert [e.check_name for e in run.get_asset_check_evaluations() if not e.passed] == []

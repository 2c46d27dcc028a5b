"""A tiny platform on Python's help topics: documents indexed once, model assets run through Dagster.

The document half (index_job, publish_index_job) runs once per module; each test
that changes model state gets its own copy of that storage root and a fresh
ephemeral instance, so no test depends on another's promotions.
"""

from __future__ import annotations

import copy
import pydoc_data.topics
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from llm_platform.automation.jobs import INDEX_JOB, PUBLISH_INDEX_JOB, TRAINING_JOB
from llm_platform.config import PlatformConfig, load_config
from llm_platform.definitions import build_definitions
from llm_platform.resources.mlflow import MlflowResource

CURATED = Path(__file__).resolve().parents[2] / "llm_platform" / "demo" / "sft" / "curated.jsonl"
TOPICS = ("augassign", "booleans", "class", "context-managers", "dict", "exceptions", "for", "with")
SOURCE = "topics"
_UNDERLINE = re.compile(r"^[*=\-]{3,}$")
# Small enough for 2 CPU cores; dropout 0 keeps the loss curve a pure function of the seed.
BASE_SETTINGS: dict[str, Any] = {
    "index": {"min_retrieval_hit_rate": 0.0, "eval_questions": 16},
    "sft": {"curated_location": str(CURATED), "eval_fraction": 0.25, "max_corpus_pairs": 24},
    "base_model": {
        "tiny": {"vocab_size": 320, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "pretrain_steps": 20}
    },
    "training": {
        "rank": 4,
        "alpha": 8,
        "dropout": 0.0,
        "epochs": 4,
        "batch_size": 8,
        "max_length": 64,
        "learning_rate": 0.05,
        "checkpoint_every_steps": 2,
        "min_new_examples": 0,
        "device": "cpu",
    },
    "evaluation": {"max_examples": 6, "max_new_tokens": 8},
    "gates": {"minimums": {"perplexity": 100000.0, "rouge_l": 0.0}, "max_regression": 0.02},
    "mlflow": {"experiment": "model_assets_test", "registered_model": "model_assets_lora"},
}


def sectioned_topic(topic: str) -> str:
    """One help topic as Markdown: its title as `#`, its body split under
    two `##` headings (corpus pairs need a heading).
    """
    lines = pydoc_data.topics.topics[topic].strip().splitlines()
    title = lines[0].strip()
    paragraphs = [
        p.strip() for p in "\n".join(l for l in lines[1:] if not _UNDERLINE.match(l.strip())).split("\n\n") if p.strip()
    ]
    half = max(1, len(paragraphs) // 2)
    return (
        "\n\n".join(
            [f"# {title}", f"## How {title} work", *paragraphs[:half], f"## More about {title}", *paragraphs[half:]]
        )
        + "\n"
    )


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for topic in TOPICS:
        (folder / f"{topic}.md").write_text(sectioned_topic(topic), encoding="utf-8")
    return folder


def merged(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` applied key by key, nested mappings merged."""
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        result[key] = (
            merged(result[key], value) if isinstance(value, dict) and isinstance(result.get(key), dict) else value
        )
    return result


@dataclass
class Platform:
    """A config folder, a storage root and a Dagster instance, with shortcuts the tests share."""

    folder: Path
    corpus: Path
    home: str
    instance: dg.DagsterInstance

    def config(self, name: str = "config", **overrides: dict) -> PlatformConfig:
        """Write `<name>.yaml` (BASE_SETTINGS with `overrides`) next to the others and load it."""
        mapping = merged(
            {
                "sources": [{"name": SOURCE, "location": str(self.corpus), "glob": "*.md", "public": True}],
                **BASE_SETTINGS,
            },
            overrides,
        )
        path = self.folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(mapping), encoding="utf-8")
        return load_config(path)

    def definitions(self, config: PlatformConfig) -> dg.Definitions:
        return build_definitions(config, home=self.home, executor="in_process")

    def run(
        self, job: str, config: PlatformConfig, *, assets: Sequence[str] | None = None, partition: str | None = None
    ) -> dg.ExecuteInProcessResult:
        """Execute `job` (or the `assets` subset of it) in process on this platform's instance."""
        selection = [dg.AssetKey(a) for a in assets] if assets else None
        return (
            self.definitions(config)
            .resolve_job_def(job)
            .execute_in_process(
                instance=self.instance, asset_selection=selection, partition_key=partition, raise_on_error=False
            )
        )

    def train(self, config: PlatformConfig, assets: Sequence[str] | None = None) -> dg.ExecuteInProcessResult:
        return self.run(TRAINING_JOB, config, assets=assets)

    def latest(self, asset: str) -> dict[str, Any]:
        """The metadata values of `asset`'s latest materialization on this instance."""
        event = self.instance.get_latest_materialization_event(dg.AssetKey(asset))
        assert event is not None, f"{asset} has never materialized on this instance"
        return {key: value.value for key, value in event.asset_materialization.metadata.items()}

    def mlflow(self, config: PlatformConfig) -> MlflowResource:
        return MlflowResource(
            home=self.home, experiment=config.mlflow.experiment, registered_model=config.mlflow.registered_model
        )


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    """Keys of the assets `result`'s run materialized."""
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def check_evaluations(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, dg.AssetCheckEvaluation]:
    """`asset`'s check evaluations in `result`'s run, by check name."""
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == dg.AssetKey(asset)}


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> Path:
    """A folder holding the corpus and a storage root whose index is built and published."""
    folder = tmp_path_factory.mktemp("indexed")
    platform = Platform(folder, write_corpus(folder / "corpus"), str(folder / "home"), dg.DagsterInstance.ephemeral())
    config = platform.config()
    for result in (platform.run(INDEX_JOB, config, partition=SOURCE), platform.run(PUBLISH_INDEX_JOB, config)):
        assert result.success, f"{result.dagster_run.job_name} failed; the model tests need a published index"
    return folder


def platform_copy(indexed: Path, folder: Path) -> Platform:
    """A private copy of the indexed storage root with a fresh ephemeral instance."""
    shutil.copytree(indexed / "home", folder / "home")
    return Platform(folder, indexed / "corpus", str(folder / "home"), dg.DagsterInstance.ephemeral())


@pytest.fixture
def platform(indexed: Path, tmp_path: Path) -> Platform:
    """A platform of its own for a test that changes model state."""
    return platform_copy(indexed, tmp_path)

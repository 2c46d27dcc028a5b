"""A tiny real platform for any test folder: sources of a few Python help topics as Markdown, storage in a temp folder.

The root conftest registers this module as a plugin, so `tiny_platform` is a fixture everywhere.
"""

from __future__ import annotations

import pydoc_data.topics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml

from llm_platform.config import PlatformConfig, load_config
from llm_platform.definitions import build_definitions

# Short, varied help topics; the first 1,500 characters of each make one to three chunks.
TOPICS = {"alpha": ("assert", "break", "class"), "beta": ("booleans", "calls", "async")}
TOPIC_CHARS = 1500


def write_topics(folder: Path, topics: Sequence[str]) -> None:
    """One Markdown file per help topic, titled with the topic's name."""
    folder.mkdir(parents=True, exist_ok=True)
    for topic in topics:
        (folder / f"{topic}.md").write_text(
            f"# {topic}\n\n{pydoc_data.topics.topics[topic][:TOPIC_CHARS]}\n", encoding="utf-8"
        )


@dataclass(frozen=True)
class TinyPlatform:
    config: PlatformConfig
    defs: dg.Definitions
    root: Path

    def source_folder(self, name: str) -> Path:
        return self.root / name

    def materialize(
        self, instance: dg.DagsterInstance, selection: Sequence[str], partition: str | None = None
    ) -> dg.ExecuteInProcessResult:
        """Materialize only `selection`, in process, without raising on failure."""
        return dg.materialize(
            self.defs.assets,
            resources=self.defs.resources,
            selection=list(selection),
            partition_key=partition,
            instance=instance,
            raise_on_error=False,
        )


@pytest.fixture(scope="session")
def tiny_platform(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., TinyPlatform]:
    """Builds a platform over `sources` (name -> help topics; default TOPICS)
    plus config `settings`, each in a fresh temp folder.
    """

    def build(sources: Mapping[str, Sequence[str]] = TOPICS, settings: Mapping | None = None) -> TinyPlatform:
        root = tmp_path_factory.mktemp("platform")
        for name, topics in sources.items():
            write_topics(root / name, topics)
        raw = {"sources": [{"name": name, "location": name} for name in sources], **(settings or {})}
        (root / "config.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
        config = load_config(root / "config.yaml")
        return TinyPlatform(config, build_definitions(config, home=str(root / "home"), executor="in_process"), root)

    return build

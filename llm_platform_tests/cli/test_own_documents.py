"""docs/own-documents.md, command by command: a copied config pointed at a
folder of .md files, indexed, published and searched.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from pydoc_data.topics import topics

import pytest
import yaml

from llm_platform.config import CONFIG_ENV, DEMO_CONFIG, HOME_ENV, load_config
from llm_platform.definitions import EXECUTOR_ENV
from llm_platform.index.access import ReaderGroups
from llm_platform.local_instance import DAGSTER_HOME_ENV
from llm_platform.readers import source_readers
from llm_platform_tests.processes import free_port, running_server

REPO_ROOT = Path(__file__).resolve().parents[2]
OWN_DOCUMENTS = REPO_ROOT / "docs" / "own-documents.md"
TOPICS = ("with", "for", "while", "try", "class")
DOCUMENT_ASSETS = "raw_documents,cleaned_corpus,chunks,embeddings,vector_index"


def _recipe_sources() -> list[dict]:
    """The `sources:` block of docs/own-documents.md, as a reader pastes it into the copied config."""
    blocks = re.findall(r"```yaml\n(.*?)```", OWN_DOCUMENTS.read_text(encoding="utf-8"), re.DOTALL)
    return next(yaml.safe_load(block)["sources"] for block in blocks if block.lstrip().startswith("sources:"))


def _own_folder(root: Path) -> Path:
    """The recipe's first steps: a folder of documents, and the demo config
    copied and pointed at it with the page's `sources`.
    """
    (root / "docs").mkdir(parents=True)
    for topic in TOPICS:
        (root / "docs" / f"{topic}.md").write_text(f"# The {topic} statement\n\n{topics[topic]}", encoding="utf-8")
    config = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    config["sources"] = _recipe_sources()
    config["sft"] = {key: value for key, value in config["sft"].items() if not key.endswith("_location")}
    (root / "platform.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return root / "platform.yaml"


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("my-llm")
    env = {
        **os.environ,
        CONFIG_ENV: str(_own_folder(root)),
        HOME_ENV: str(root / "home"),
        "PYTHONPATH": str(REPO_ROOT),
        EXECUTOR_ENV: "in_process",
    }
    env.pop(DAGSTER_HOME_ENV, None)

    def llm_platform(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "llm_platform.cli", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    return root, llm_platform


@pytest.fixture(scope="module")
def indexed(recipe):
    _, llm_platform = recipe
    return llm_platform(
        "dagster",
        "asset",
        "materialize",
        "-m",
        "llm_platform.definitions",
        "--select",
        DOCUMENT_ASSETS,
        "--partition",
        "mydocs",
    )


@pytest.fixture(scope="module")
def published(recipe, indexed):
    _, llm_platform = recipe
    return llm_platform("index", "publish")


def test_the_recipes_source_is_read_by_callers_in_no_group(tmp_path):
    # The service answers a caller without an API key's groups from public rows only: a source with
    # neither `public` nor `readers` was indexed, published and then served to nobody.
    (source,) = load_config(_own_folder(tmp_path)).sources
    assert ReaderGroups.public_only().can_read(source_readers(source.readers, public=source.public))


@pytest.mark.slow
def test_indexing_your_folder_succeeds_without_debug_noise(indexed):
    assert indexed.returncode == 0, indexed.stderr[-3000:]
    assert " - DEBUG - " not in indexed.stderr and "superseded" not in indexed.stderr


@pytest.mark.slow
def test_publishing_your_index_names_the_version_served(published):
    assert published.returncode == 0, published.stdout[-2000:] + published.stderr[-2000:]
    assert "published: 'production' of chunks__" in published.stdout


@pytest.mark.slow
def test_searching_your_index_finds_your_document(recipe, published):
    _, llm_platform = recipe
    found = llm_platform("search", "with statement context manager", "-k", "3")
    assert found.returncode == 0, found.stderr[-2000:]
    assert "mydocs: The with statement" in found.stdout and "fused" in found.stdout


@pytest.mark.slow
def test_the_runs_are_in_the_instance_the_ui_shows(recipe, published):
    root, _ = recipe
    import dagster as dg

    with dg.DagsterInstance.from_config(str(root / "home" / "dagster")) as instance:
        assert {run.job_name for run in instance.get_runs()} >= {"__ASSET_JOB", "publish_index_job"}


def _search(url: str, query: str, seconds: float) -> dict:
    """POST /v1/search until the service has loaded the published index (503 until then)."""
    request = urllib.request.Request(
        url, data=json.dumps({"query": query, "k": 3}).encode(), headers={"content-type": "application/json"}
    )
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            if error.code != 503 or time.monotonic() > deadline:
                raise
        time.sleep(1)


@pytest.mark.slow
def test_the_service_answers_a_search_from_your_published_index(recipe, published, monkeypatch):
    root, _ = recipe
    for name, value in {
        CONFIG_ENV: str(root / "platform.yaml"),
        HOME_ENV: str(root / "home"),
        "PYTHONPATH": str(REPO_ROOT),
    }.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    with running_server(
        "serve",
        [sys.executable, "-m", "llm_platform.cli", "serve", "--port", str(port)],
        root / "serve",
        health_url=f"http://127.0.0.1:{port}/healthz",
        timeout=120,
    ):
        found = _search(f"http://127.0.0.1:{port}/v1/search", "with statement context manager", seconds=180)
    assert [hit["source"] for hit in found["data"]][:1] == ["mydocs"], found
    # The wait for the index is visible in the service's own output, not only by polling /readyz.
    assert f"now serving {{'index_version': {found['index_version']}," in (root / "serve" / "serve.log").read_text(
        errors="replace"
    )

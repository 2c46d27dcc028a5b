"""The real Dagster webserver serves this code location's asset graph and runs what it is asked to.

The webserver runs against a temporary instance: the repo's dagster.yaml with the
DefaultRunCoordinator swapped in, so a run launched through the API starts at once
instead of waiting in the queue for a daemon. The queue itself is exercised by the
backfill tests in `llm_platform_tests/cli`, which run the daemon.
"""

from __future__ import annotations

import json
import os
import pydoc_data.topics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from llm_platform.config import load_config
from llm_platform.definitions import EXECUTOR_ENV, build_definitions
from llm_platform.local_instance import INSTANCE_CONFIG
from llm_platform_tests.processes import free_port, stop_process_group

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SOURCE = "statements"
TOPICS = ("assert", "del", "return")
STARTUP_SECONDS = 240
RUN_SECONDS = 300

ASSET_GRAPH_QUERY = """
query {
  assetNodes {
    assetKey { path }
    assetChecksOrError { __typename ... on AssetChecks { checks { name } } }
    internalFreshnessPolicy { __typename ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds } }
  }
}
"""
LOCATIONS_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on Workspace { locationEntries { name loadStatus locationOrLoadError \
{ __typename ... on PythonError { message } } } }
  }
}
"""
LAUNCH_MUTATION = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
RUN_STATUS_QUERY = """
query Status($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status } } }
"""
MATERIALIZATIONS_QUERY = """
query Materializations($path: [String!]!, $partition: String!) {
  assetOrError(assetKey: {path: $path}) {
    __typename
    ... on Asset { assetMaterializations(partitions: [$partition], limit: 1) { runId partition } }
  }
}
"""
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass(frozen=True)
class Webserver:
    url: str
    log: Path
    location: str

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        assert not answer.get("errors"), f"GraphQL errors: {answer['errors']}"
        return answer["data"]

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _write_config(root: Path) -> Path:
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    for topic in TOPICS:
        (corpus / f"{topic}.md").write_text(
            f"# The {topic} statement\n\n{pydoc_data.topics.topics[topic]}", encoding="utf-8"
        )
    config = root / "config.yaml"
    config.write_text(
        yaml.safe_dump({"sources": [{"name": SOURCE, "location": "corpus", "glob": "*.md"}]}), encoding="utf-8"
    )
    return config


def _write_instance(dagster_home: Path) -> None:
    instance = yaml.safe_load(INSTANCE_CONFIG.read_text(encoding="utf-8"))
    instance["run_coordinator"] = {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"}
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(instance), encoding="utf-8")


def _wait_until_served(server: Webserver, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster-webserver exited with code {process.returncode}:\n{server.log_tail()}")
        try:
            entries = server.graphql(LOCATIONS_QUERY)["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, ConnectionError):
            entries = []
        loaded = [e for e in entries if e["name"] == server.location and e["loadStatus"] == "LOADED"]
        if loaded:
            error = loaded[0]["locationOrLoadError"]
            assert error["__typename"] == "RepositoryLocation", f"code location failed to load: {error}"
            return
        time.sleep(2)
    pytest.fail(f"dagster-webserver did not serve the code location within {STARTUP_SECONDS}s:\n{server.log_tail()}")


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_config(tmp_path_factory.mktemp("platform"))


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory, config_path: Path):
    root = tmp_path_factory.mktemp("webserver")
    _write_instance(root / "dagster_home")
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(root / "dagster_home"),
        "LLM_PLATFORM_CONFIG": str(config_path),
        "LLM_PLATFORM_HOME": str(root / "data"),
        EXECUTOR_ENV: "in_process",
    }
    server = Webserver(url=f"http://127.0.0.1:{port}", log=root / "webserver.log", location="llm_platform.definitions")
    with server.log.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "dagster-webserver"), "-m", "llm_platform.definitions", "-h", "127.0.0.1", "-p", str(port)],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_served(server, process)
        yield server
    finally:
        stop_process_group(process)


@pytest.fixture(scope="module")
def expected_graph(config_path: Path):
    return build_definitions(load_config(config_path)).resolve_asset_graph()


@pytest.fixture(scope="module")
def served_assets(webserver: Webserver) -> dict[str, dict[str, Any]]:
    nodes = webserver.graphql(ASSET_GRAPH_QUERY)["assetNodes"]
    return {"/".join(node["assetKey"]["path"]): node for node in nodes}


def _served_checks(node: dict[str, Any]) -> set[str]:
    checks = node["assetChecksOrError"]
    assert checks["__typename"] == "AssetChecks", f"checks not readable: {checks}"
    return {check["name"] for check in checks["checks"]}


def _served_freshness(node: dict[str, Any]) -> tuple[int, int | None] | None:
    policy = node["internalFreshnessPolicy"]
    return None if policy is None else (policy["failWindowSeconds"], policy["warnWindowSeconds"])


def _expected_freshness(node) -> tuple[int, int | None] | None:
    policy = node.freshness_policy
    if policy is None:
        return None
    warn = policy.warn_window.to_timedelta().total_seconds() if policy.warn_window else None
    return int(policy.fail_window.to_timedelta().total_seconds()), None if warn is None else int(warn)


def test_webserver_serves_every_asset_of_the_definitions(served_assets, expected_graph) -> None:
    assert set(served_assets) == {key.to_user_string() for key in expected_graph.get_all_asset_keys()}


def test_webserver_reports_each_assets_checks(served_assets, expected_graph) -> None:
    expected = {key.to_user_string(): set() for key in expected_graph.get_all_asset_keys()}
    for check in expected_graph.asset_check_keys:
        expected[check.asset_key.to_user_string()].add(check.name)
    assert {name: _served_checks(node) for name, node in served_assets.items()} == expected


def test_webserver_reports_the_freshness_policies_of_the_definitions(served_assets, expected_graph) -> None:
    expected = {
        key.to_user_string(): _expected_freshness(expected_graph.get(key))
        for key in expected_graph.get_all_asset_keys()
    }
    assert {name: _served_freshness(node) for name, node in served_assets.items()} == expected


def test_vector_index_has_a_freshness_policy_in_the_ui(served_assets) -> None:
    assert _served_freshness(served_assets["vector_index"]) is not None


@pytest.fixture(scope="module")
def launched_run(webserver: Webserver) -> tuple[str, str]:
    """raw_documents for the one source, launched as the UI's Materialize button does; (run id, final status)."""
    params = {
        "selector": {
            "repositoryLocationName": webserver.location,
            "repositoryName": "__repository__",
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": ["raw_documents"]}],
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": SOURCE}]},
    }
    launched = webserver.graphql(LAUNCH_MUTATION, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", f"launchRun failed: {launched}"
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + RUN_SECONDS
    status = "QUEUED"
    while status not in TERMINAL and time.monotonic() < deadline:
        time.sleep(2)
        status = webserver.graphql(RUN_STATUS_QUERY, {"runId": run_id})["runOrError"]["status"]
    return run_id, status


def test_materialization_launched_through_the_api_succeeds(launched_run, webserver: Webserver) -> None:
    _, status = launched_run
    assert status == "SUCCESS", f"run ended {status}; webserver log:\n{webserver.log_tail()}"


def test_launched_materialization_is_visible_on_the_asset(launched_run, webserver: Webserver) -> None:
    run_id, _ = launched_run
    asset = webserver.graphql(MATERIALIZATIONS_QUERY, {"path": ["raw_documents"], "partition": SOURCE})["assetOrError"]
    assert asset["__typename"] == "Asset"
    assert asset["assetMaterializations"] == [{"runId": run_id, "partition": SOURCE}]

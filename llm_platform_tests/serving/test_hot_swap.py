"""The service follows the two production pointers: an index rollback swaps in, a broken adapter never does."""

from __future__ import annotations

import time

import httpx

from llm_platform.index.table import connect, open_table, publish, table_name
from llm_platform_tests.serving.conftest import QUESTION
from llm_platform_tests.serving.test_api import ask, metric


def wait_for(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_index_rollback_swaps_the_served_version_and_the_cache_key(live):
    config = live.config
    table = open_table(connect(f"{live.platform.home}/lancedb"), table_name(config.index.table, config.embedding.model))
    served = live.service.state.current.index_version
    earlier = max(
        v["version"]
        for v in table.list_versions()
        if v["version"] < served and (table.checkout(v["version"]) or table.count_rows())
    )
    before = ask(live, QUESTION)
    assert ask(live, QUESTION).cached

    publish(table, config.index.published_tag, earlier)
    wait_for(lambda: live.service.state.current.index_version == earlier, "the rolled-back index version")

    after = ask(live, QUESTION)
    assert before.versions["index_version"] == served and after.versions["index_version"] == earlier
    assert not after.cached, "an answer cached under the old index version was served after the swap"
    assert metric(live, "llm_platform_served_index_version") == earlier


def test_failing_adapter_load_keeps_the_previous_version_serving(live):
    mlflow = live.platform.mlflow(live.config)
    production = mlflow.production()
    failures = metric(live, "llm_platform_load_failures_total")

    # A version registered from a run that logged no adapter: its artifacts cannot be loaded.
    client = mlflow.client()
    empty = client.create_run(client.get_run(production["run_id"]).info.experiment_id, run_name="no-adapter")
    client.set_terminated(empty.info.run_id)
    version = mlflow.promote(run_id=empty.info.run_id, artifact_path="adapter", tags=production["tags"])
    wait_for(lambda: metric(live, "llm_platform_load_failures_total") > failures, "a failed load")

    assert str(version) == "2"
    ready = httpx.get(f"{live.url}/readyz")
    assert ready.status_code == 200 and ready.json()["adapter_version"] == "1"
    assert "adapter version 2" in ready.json()["last_error"]
    assert ask(live, "Still answering with version one?").versions["adapter_version"] == "1"

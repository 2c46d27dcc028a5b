"""The model half as on a cluster: storage home on an S3-compatible server and a real MLflow tracking server whose
artifacts live in the same store. Base model, checkpoints, adapter, MLflow runs, registry and alias, and a killed
training resumed from the bucket."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import fsspec
import mlflow
import pytest

from llm_platform.automation.jobs import INDEX_JOB, PUBLISH_INDEX_JOB
from llm_platform.home_layout import PRODUCTION_ALIAS
from llm_platform.resources.mlflow import TRACKING_URI_ENV
from llm_platform.storage_files import CACHE_ENV, ENDPOINT_ENV, MARKER
from llm_platform_tests.mlflow_server import running_mlflow_server
from llm_platform_tests.model.topics_platform import SOURCE, Platform, materialized, write_corpus
from llm_platform_tests.storage_files.s3_server import CREDENTIALS

REPO = Path(__file__).resolve().parents[2]
KILL_AT = 3  # checkpoints every 2 steps: step-2 is the one to resume from
LONG = {"training": {"epochs": 3}}  # enough steps that step 3 is not the last
ARTIFACTS = "mlflow-artifacts"  # the tracking server's artifact store, in the bucket


@pytest.fixture(scope="module")
def indexed_on_s3(tmp_path_factory, s3_endpoint):
    """A bucket holding the indexed and published topics corpus, and an MLflow server storing its artifacts in it."""
    folder = tmp_path_factory.mktemp("s3_model")
    with pytest.MonkeyPatch.context() as patch:
        # The server process inherits the credentials and endpoint, as its pod would from a secret.
        for name, value in {
            **CREDENTIALS,
            ENDPOINT_ENV: s3_endpoint,
            "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
            CACHE_ENV: str(folder / "cache"),
        }.items():
            patch.setenv(name, value)
        fsspec.filesystem("s3").mkdir("models")
        with running_mlflow_server(folder / "mlflow_server", artifacts=f"s3://models/{ARTIFACTS}") as tracking_uri:
            patch.setenv(TRACKING_URI_ENV, tracking_uri)
            platform = Platform(
                folder, write_corpus(folder / "corpus"), "s3://models/home", dg.DagsterInstance.ephemeral()
            )
            config = platform.config()
            for result in (platform.run(INDEX_JOB, config, partition=SOURCE), platform.run(PUBLISH_INDEX_JOB, config)):
                assert result.success, f"{result.dagster_run.job_name} failed with the home on S3"
            yield platform


def _published(url: str) -> bool:
    fs, path = fsspec.core.url_to_fs(url)
    return fs.exists(f"{path}/{MARKER}")


def test_training_job_trains_evaluates_and_promotes_from_the_bucket(indexed_on_s3):
    platform = indexed_on_s3
    result = platform.train(platform.config())
    assert result.success and "production_model" in materialized(result)
    base, adapter = platform.latest("base_model"), platform.latest("lora_adapter")
    assert base["path"].startswith("s3://models/home/models/base/") and _published(base["path"])
    assert adapter["adapter_dir"].startswith("s3://models/home/models/adapters/") and _published(adapter["adapter_dir"])
    fs = fsspec.filesystem("s3")
    assert fs.glob(f"{adapter['adapter_dir'].removeprefix('s3://').rsplit('/', 1)[0]}/checkpoints/step-*/{MARKER}")
    assert fs.glob(f"models/{ARTIFACTS}/**/adapter/adapter_config.json"), (
        "the MLflow run's adapter artifact is not in the bucket"
    )
    assert not fs.exists("models/home/mlflow"), "a MLflow store was written under the storage home despite the server"

    tracking_uri = os.environ[TRACKING_URI_ENV]
    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    [run] = client.search_runs(
        [client.get_experiment_by_name(platform.config().mlflow.experiment).experiment_id],
        filter_string=f"tags.dagster_run_id = '{result.run_id}'",
    )
    assert run.info.status == "FINISHED" and "eval_perplexity" in run.data.metrics
    production = client.get_model_version_by_alias(platform.config().mlflow.registered_model, PRODUCTION_ALIAS)
    assert production.run_id == run.info.run_id and production.version == platform.latest("production_model")["version"]


def test_killed_training_resumes_from_checkpoints_in_the_bucket(indexed_on_s3, tmp_path):
    platform = indexed_on_s3
    fs = fsspec.filesystem("s3")
    fs.copy("models/home/datasets", "models/killed/datasets", recursive=True)
    killed = Platform(platform.folder, platform.corpus, "s3://models/killed", dg.DagsterInstance.ephemeral())
    config = killed.config("long", **LONG)
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "llm_platform_tests.storage_files.killed_training",
            config.config_path,
            killed.home,
            str(KILL_AT),
        ],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == -signal.SIGKILL, f"the training process was not killed:\n{process.stderr[-3000:]}"
    assert [Path(p).parent.name for p in fs.glob(f"models/killed/models/adapters/*/checkpoints/*/{MARKER}")] == [
        "step-2"
    ]
    shutil.rmtree(platform.folder / "cache")  # a fresh machine: nothing of the killed run on local disk

    result = killed.train(config, ["lora_adapter"])
    assert result.success
    adapter = killed.latest("lora_adapter")
    assert adapter["status"] == "resumed" and adapter["resumed_from_step"] == 2
    assert len(adapter["losses"]) == adapter["steps"] > KILL_AT

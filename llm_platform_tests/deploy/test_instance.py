"""The local dagster.yaml and the cluster's Postgres-backed instance config are valid Dagster instances."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._config import validate_config
from dagster._core.instance.config import PoolGranularity, dagster_instance_config
from dagster_k8s import K8sRunLauncher
from dagster_postgres import DagsterPostgresStorage

from llm_platform.local_instance import INSTANCE_CONFIG
from llm_platform_tests.deploy.conftest import CLUSTER_INSTANCE, NAMESPACE

LOCAL_INSTANCE = INSTANCE_CONFIG


@pytest.fixture(scope="module")
def dagster_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(LOCAL_INSTANCE, home / "dagster.yaml")
    return home


@pytest.fixture(scope="module")
def local_instance(dagster_home: Path):
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
        with dg.DagsterInstance.get() as instance:
            yield instance


def test_local_instance_stores_everything_in_sqlite_under_dagster_home(local_instance, dagster_home: Path) -> None:
    assert type(local_instance.run_storage).__name__ == "SqliteRunStorage"
    assert Path(local_instance.root_directory) == dagster_home
    assert (dagster_home / "history" / "runs.db").exists()


def test_local_instance_queues_runs_two_at_a_time(local_instance) -> None:
    assert type(local_instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert local_instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 2


def test_local_pools_limit_steps_to_one_slot_by_default(local_instance) -> None:
    pools = local_instance.get_concurrency_config().pool_config
    assert pools.default_pool_limit == 1
    assert pools.pool_granularity == PoolGranularity.OP


def test_local_instance_retries_crashed_runs_twice(local_instance) -> None:
    assert local_instance.run_retries_enabled
    assert local_instance.run_retries_max_retries == 2


def test_local_instance_monitors_runs_and_frees_the_slots_of_dead_ones(local_instance) -> None:
    from llm_platform.automation.run_launcher import LocalRunLauncher

    assert local_instance.run_monitoring_enabled
    assert local_instance.run_launcher.supports_check_run_worker_health
    assert isinstance(local_instance.run_launcher, LocalRunLauncher)
    assert local_instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0


def test_local_instance_sends_no_telemetry(local_instance) -> None:
    assert local_instance.telemetry_enabled is False


def _validated_cluster_config(tmp_path: Path) -> dict[str, Any]:
    shutil.copy(CLUSTER_INSTANCE, tmp_path / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    return dict(config)


def test_cluster_instance_matches_the_dagster_instance_schema(tmp_path: Path) -> None:
    config = _validated_cluster_config(tmp_path)
    assert set(config["storage"]) == {"postgres"}


def test_cluster_storage_is_valid_dagster_postgres_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "placeholder")
    postgres = _validated_cluster_config(tmp_path)["storage"]["postgres"]
    result = validate_config(DagsterPostgresStorage.config_type(), postgres)
    assert result.success, result.errors
    assert postgres["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}


def test_cluster_run_launcher_builds_from_its_config(k8s_run_launcher: K8sRunLauncher) -> None:
    assert k8s_run_launcher.job_namespace == NAMESPACE
    assert k8s_run_launcher.service_account_name == "llm-platform-runner"
    assert k8s_run_launcher.instance_config_map == "dagster-instance"


def test_cluster_instance_agrees_with_the_helm_values(
    cluster_instance: dict[str, Any], helm_values: dict[str, Any]
) -> None:
    postgres = cluster_instance["storage"]["postgres"]["postgres_db"]
    values_pg = helm_values["postgresql"]
    assert (postgres["hostname"], postgres["db_name"], postgres["username"], postgres["port"]) == (
        values_pg["postgresqlHost"],
        values_pg["postgresqlDatabase"],
        values_pg["postgresqlUsername"],
        values_pg["service"]["port"],
    )
    launcher = cluster_instance["run_launcher"]["config"]
    values_launcher = helm_values["runLauncher"]["config"]["k8sRunLauncher"]
    assert launcher["job_namespace"] == values_launcher["jobNamespace"]
    assert launcher["service_account_name"] == helm_values["global"]["serviceAccountName"]
    assert launcher["resources"] == values_launcher["resources"]
    assert launcher["security_context"] == values_launcher["securityContext"]
    concurrency = helm_values["concurrency"]
    assert cluster_instance["concurrency"]["pools"]["default_limit"] == concurrency["pools"]["defaultLimit"]
    assert cluster_instance["concurrency"]["runs"]["max_concurrent_runs"] == concurrency["runs"]["maxConcurrentRuns"]
    retries = helm_values["dagsterDaemon"]["runRetries"]
    assert cluster_instance["run_retries"]["max_retries"] == retries["maxRetries"]


def test_cluster_instance_frees_the_slots_of_ended_runs(
    cluster_instance: dict[str, Any], helm_values: dict[str, Any]
) -> None:
    freed_after = cluster_instance["run_monitoring"]["free_slots_after_run_end_seconds"]
    assert freed_after > 0
    # The chart renders dagsterDaemon.runMonitoring.freeSlotsAfterRunEndSeconds into that key.
    assert helm_values["dagsterDaemon"]["runMonitoring"]["freeSlotsAfterRunEndSeconds"] == freed_after

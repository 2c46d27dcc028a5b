"""The model assets against a real `mlflow server` on loopback: everything lands on the server, no secret leaks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import mlflow
import pytest
from dagster._serdes import serialize_value

from llm_platform.config import MlflowSettings
from llm_platform.home_layout import PRODUCTION_ALIAS
from llm_platform.resources.mlflow import TRACKING_URI_ENV, MlflowResource, mlflow_resource
from llm_platform_tests.mlflow_server import running_mlflow_server
from llm_platform_tests.model.topics_platform import Platform, materialized

PASSWORD = "s3cret-pw"


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_mlflow_server(tmp_path_factory.mktemp("mlflow_server")) as url:
        yield url


def _with_credentials(url: str) -> str:
    # The test server has no auth: it ignores the Basic credentials, which lets the
    # test check that they never surface in metadata or the event log.
    return url.replace("http://", f"http://ci:{PASSWORD}@")


def _event_log_text(platform: Platform, result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(serialize_value(entry) for entry in platform.instance.all_logs(result.run_id))


def test_training_lands_runs_metrics_artifacts_model_and_alias_on_the_server(
    platform: Platform, mlflow_server: str
) -> None:
    config = platform.config(mlflow={"tracking_uri": _with_credentials(mlflow_server)})
    global_uri = mlflow.get_tracking_uri()
    result = platform.train(config)
    assert result.success, "training_job failed against the MLflow server"
    assert {"lora_adapter", "model_eval", "production_model"} <= materialized(result)

    client = mlflow.MlflowClient(mlflow_server, registry_uri=mlflow_server)
    experiment = client.get_experiment_by_name(config.mlflow.experiment)
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["dagster_run_id"] == result.run_id
    assert {"final_loss", "tokens_per_second", "eval_perplexity"} <= run.data.metrics.keys()
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == platform.latest("lora_adapter")["steps"]
    assert "adapter/adapter_config.json" in {f.path for f in client.list_artifacts(run.info.run_id, "adapter")}
    production = client.get_model_version_by_alias(config.mlflow.registered_model, PRODUCTION_ALIAS)
    assert (production.run_id, production.version) == (run.info.run_id, platform.latest("production_model")["version"])

    assert not (Path(platform.home) / "mlflow").exists(), "a local MLflow store was written despite the server"
    assert mlflow.get_tracking_uri() == global_uri, "the assets changed MLflow's process-global tracking URI"
    assert platform.latest("production_model")["tracking_uri"] == _with_credentials(mlflow_server).replace(
        PASSWORD, "***"
    )
    assert PASSWORD not in _event_log_text(platform, result)


def test_tracking_uri_comes_from_the_environment_when_config_has_none(
    mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TRACKING_URI_ENV, mlflow_server)
    resource = mlflow_resource(
        MlflowSettings(experiment="from_env", registered_model="unused"), str(tmp_path), in_dagster=True
    )
    assert isinstance(resource.tracking_uri, dg.EnvVar)

    @dg.asset
    def tracked(mlflow: MlflowResource) -> dg.MaterializeResult:
        with mlflow.run(run_name="env", tags={"why": "env"}) as run:
            run.log_metric("answer", 42.0)
        return dg.MaterializeResult(metadata={"tracking_uri": mlflow.uri, "run_id": run.run_id})

    result = dg.materialize([tracked], resources={"mlflow": resource})
    metadata = result.asset_materializations_for_node("tracked")[0].metadata
    assert metadata["tracking_uri"].value == mlflow_server
    run = mlflow.MlflowClient(mlflow_server).get_run(metadata["run_id"].value)
    assert run.data.metrics == {"answer": 42.0}
    assert not (tmp_path / "mlflow").exists()


def test_config_uri_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRACKING_URI_ENV, "http://127.0.0.1:9")
    local = f"sqlite:///{tmp_path / 'chosen.db'}"
    assert MlflowResource(tracking_uri=local, home=str(tmp_path)).uri == local


def test_without_config_or_environment_the_store_is_sqlite_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TRACKING_URI_ENV, raising=False)
    resource = mlflow_resource(
        MlflowSettings(experiment="local", registered_model="unused"), str(tmp_path), in_dagster=True
    )
    assert resource.uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"


def test_outside_dagster_the_environment_uri_is_read_when_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The service builds its resource outside Dagster, where an unresolved dg.EnvVar cannot be read.
    chosen = f"sqlite:///{tmp_path / 'from_env.db'}"
    monkeypatch.setenv(TRACKING_URI_ENV, chosen)
    resource = mlflow_resource(MlflowSettings(), str(tmp_path), in_dagster=False)
    assert (resource.tracking_uri, resource.uri) == ("", chosen)


def test_production_is_none_before_any_adapter_was_promoted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRACKING_URI_ENV, raising=False)
    assert mlflow_resource(MlflowSettings(), str(tmp_path), in_dagster=False).production() is None


def test_a_failed_block_marks_the_run_failed(mlflow_server: str) -> None:
    resource = MlflowResource(tracking_uri=mlflow_server, experiment="failing")
    with pytest.raises(ZeroDivisionError), resource.run(run_name="boom", tags={}) as run:
        1 / 0  # noqa: B018
    assert mlflow.MlflowClient(mlflow_server).get_run(run.run_id).info.status == "FAILED"


def test_unreachable_server_error_masks_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_platform.resources.mlflow import MlflowError
    from llm_platform_tests.mlflow_server import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    uri = f"http://ci:{PASSWORD}@127.0.0.1:{free_port()}"
    with pytest.raises(MlflowError) as raised:
        MlflowResource(tracking_uri=uri, experiment="unreachable").experiment_id()
    text = str(raised.value)
    assert PASSWORD not in text and "ci:***@127.0.0.1" in text
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


FLUENT_CALLS = {
    "set_tracking_uri",
    "set_registry_uri",
    "set_experiment",
    "start_run",
    "end_run",
    "active_run",
    "log_param",
    "log_params",
    "log_metric",
    "log_metrics",
    "log_artifact",
    "log_artifacts",
    "set_tag",
    "set_tags",
    "log_dict",
    "log_text",
}


def _fluent_mlflow_calls(source: str) -> list[str]:
    """`mlflow.<fluent call>` through any name the mlflow module is imported as."""
    import ast

    tree = ast.parse(source)
    aliases = {
        a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names if a.name == "mlflow"
    }
    return [
        f"line {n.lineno}: {n.func.value.id}.{n.func.attr}"
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and isinstance(n.func.value, ast.Name)
        and n.func.value.id in aliases
        and n.func.attr in FLUENT_CALLS
    ]


def test_no_module_uses_mlflows_global_fluent_state() -> None:
    package = Path(__file__).resolve().parents[2] / "llm_platform"
    found = {
        str(p.relative_to(package)): calls
        for p in package.rglob("*.py")
        if (calls := _fluent_mlflow_calls(p.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_the_fluent_call_finder_sees_an_aliased_import() -> None:
    assert _fluent_mlflow_calls("import mlflow as api\napi.log_metric('x', 1.0)\n") == ["line 2: api.log_metric"]

"""A thin MLflow resource: one MLflow run per training, a registry alias for production.

dagster-mlflow's `mlflow_tracking` is a legacy function-style resource that opens
one MLflow run per Dagster run; we want one run per `lora_adapter` materialization
with explicit lineage tags, and the evaluation logged back into that same run.

Everything goes through an explicit `MlflowClient` bound to this resource's URI:
MLflow's fluent API (`mlflow.set_tracking_uri`, `mlflow.start_run`, `mlflow.log_*`)
keeps process-global state, so two resources (or a test and an asset) in one
process would write into each other's store.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from llm_platform.config import MlflowSettings, platform_home
from llm_platform.home_layout import MLFLOW, PRODUCTION_ALIAS, under
from llm_platform.resources.redaction import redact_text, redact_uri

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"


class MlflowError(RuntimeError):
    """An MLflow call failed; the message has any credential of the tracking URI masked."""


@dataclass(frozen=True)
class RunInfo:
    run_id: str


class TrackedRun:
    """One MLflow run, logged to through the resource's client (never MLflow's global active run)."""

    def __init__(self, client: Any, run_id: str):
        self._client = client
        self.info = RunInfo(run_id)

    @property
    def run_id(self) -> str:
        return self.info.run_id

    def set_tags(self, tags: dict[str, str]) -> None:
        self.log_batch(tags=tags)

    def log_params(self, params: dict[str, Any]) -> None:
        self.log_batch(params=params)

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        self._client.log_metric(self.run_id, key, float(value), step=step)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.log_batch(metrics=metrics, step=step)

    def log_batch(
        self,
        *,
        metrics: dict[str, float] | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        step: int | None = None,
    ) -> None:
        """Metrics, params and tags in one request."""
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.utils.time import get_current_time_millis

        now = get_current_time_millis()
        self._client.log_batch(
            self.run_id,
            metrics=[Metric(k, float(v), now, step or 0) for k, v in (metrics or {}).items()],
            params=[Param(k, str(v)) for k, v in (params or {}).items()],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )

    def log_dict(self, dictionary: dict, artifact_file: str) -> None:
        """`dictionary` as a JSON (or YAML, by extension) artifact at `artifact_file` of the run."""
        self._client.log_dict(self.run_id, dictionary, artifact_file)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        self._client.log_artifacts(self.run_id, local_dir, artifact_path)


class _RedactingClient:
    """An `MlflowClient` whose errors name the tracking URI with its credentials masked."""

    def __init__(self, client: Any, uri: str):
        self._client, self._uri = client, uri

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute
        return _redacting(attribute, self._uri)


def _redacting(call: Callable[..., Any], uri: str) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            if redact_text(str(exc), uri) == str(exc):
                raise
            # `from None`: the original exception, which quotes the secret, must not travel as the cause.
            # The message (with "not found" where MLflow says so) is kept, so callers can still tell a missing model.
            raise MlflowError(
                f"MLflow at {redact_uri(uri)}: {type(exc).__name__}: {redact_text(str(exc), uri)}"
            ) from None

    return wrapped


def version_by_alias(client: Any, registered_model: str, alias: str) -> Any:
    """The model version `alias` points at; None when the registered model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(registered_model, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") or "not found" in str(exc).lower():
            return None
        raise


def _is_missing(exc: Exception) -> bool:
    return "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in str(exc).lower()


class MlflowResource(dg.ConfigurableResource):
    """Tracking URI (empty: $MLFLOW_TRACKING_URI, else SQLite under the storage root), experiment and registered model.

    Credentials: in the URI (`https://user:password@host`, always masked in logs and
    metadata) or in MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN, which MLflow's client reads.
    """

    tracking_uri: str = ""
    home: str = ""
    experiment: str = "llm_platform"
    registered_model: str = "llm_platform_lora"

    def _connection_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        if os.environ.get(TRACKING_URI_ENV):
            return os.environ[TRACKING_URI_ENV]
        if "://" in (self.home or platform_home()):
            raise MlflowError(
                f"the storage home {redact_uri(self.home or platform_home())} is an "
                "object store, which cannot hold MLflow's "
                f"SQLite database: set mlflow.tracking_uri in the config or {TRACKING_URI_ENV} (e.g. http://mlflow:5000)"
            )
        folder = Path(self.home or platform_home()) / MLFLOW
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / 'mlflow.db'}"

    @property
    def uri(self) -> str:
        """The tracking URI with any credential masked: safe to log and to store in metadata."""
        return redact_uri(self._connection_uri())

    @property
    def is_local(self) -> bool:
        return self._connection_uri().startswith("sqlite:")

    def _artifact_location(self) -> str | None:
        if not self.is_local:
            return None
        home = self.home or platform_home()
        if "://" in home:  # a local tracking store with artifacts next to the data, in the bucket
            return under(home, f"{MLFLOW}/artifacts")
        return (Path(home) / MLFLOW / "artifacts").as_uri()

    def client(self):
        """An `MlflowClient` for this store (tracking and registry); errors never show credentials."""
        import mlflow

        uri = self._connection_uri()
        try:
            client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        # MLflow raises many types for a bad store (its own, ValueError, OSError, driver errors); every one
        # becomes one message without the original, whose text and traceback may hold credentials.
        except Exception as exc:  # noqa: BLE001
            raise MlflowError(f"cannot open the MLflow store {redact_uri(uri)}: {redact_text(str(exc), uri)}") from None
        return _RedactingClient(client, uri)

    def experiment_id(self) -> str:
        client = self.client()
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        return client.create_experiment(self.experiment, artifact_location=self._artifact_location())

    @contextmanager
    def run(self, *, run_name: str, tags: dict[str, str], run_id: str | None = None) -> Iterator[TrackedRun]:
        """A run (a new one, or `run_id` reopened) with `tags` set; ended FINISHED, or FAILED if the block raises."""
        client = self.client()
        if run_id is None:
            run_id = client.create_run(self.experiment_id(), run_name=run_name or None, tags=tags).info.run_id
        else:
            client.update_run(run_id, status="RUNNING")
        tracked = TrackedRun(client, run_id)
        if tags:
            tracked.set_tags(tags)
        try:
            yield tracked
        except BaseException:
            client.set_terminated(run_id, status="FAILED")
            raise
        client.set_terminated(run_id, status="FINISHED")

    def production(self) -> dict | None:
        """The registered version under the `production` alias: version, run id and tags; None if none."""
        version = version_by_alias(self.client(), self.registered_model, PRODUCTION_ALIAS)
        if version is None:
            return None
        return {
            "version": version.version,
            "run_id": version.run_id,
            "tags": dict(version.tags),
            "source": version.source,
        }

    def promote(self, *, run_id: str, artifact_path: str, tags: dict[str, str]) -> str:
        """Register the run's adapter as a new model version and point the alias at it."""
        client = self.client()
        try:
            client.get_registered_model(self.registered_model)
        except Exception as exc:  # first promotion: the registered model does not exist yet
            if not _is_missing(exc):
                raise
            client.create_registered_model(self.registered_model)
        version = client.create_model_version(
            self.registered_model, f"runs:/{run_id}/{artifact_path}", run_id=run_id, tags=tags
        )
        client.set_registered_model_alias(self.registered_model, PRODUCTION_ALIAS, version.version)
        return version.version


def mlflow_resource(settings: MlflowSettings, home: str, *, in_dagster: bool) -> MlflowResource:
    """The resource for the config's MLflow settings: their URI, else $MLFLOW_TRACKING_URI, else the SQLite store under
    `home`.

    In Dagster's definitions (`in_dagster`) the environment's URI is a `dg.EnvVar`:
    Dagster reads it in each process and shows it by name, never by value (it may hold
    a password), in the UI and the run's config. Outside Dagster (the service, its
    sidecars) an unresolved `dg.EnvVar` cannot be read, so the URI stays empty and the
    resource reads the environment when it connects: the same store either way.
    """
    from_environment = in_dagster and not settings.tracking_uri and os.environ.get(TRACKING_URI_ENV)
    uri: Any = dg.EnvVar(TRACKING_URI_ENV) if from_environment else settings.tracking_uri or ""
    return MlflowResource(
        tracking_uri=uri, home=home, experiment=settings.experiment, registered_model=settings.registered_model
    )

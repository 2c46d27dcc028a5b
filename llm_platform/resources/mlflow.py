"""A thin MLflow resource: one MLflow run per training, a registry alias for production.

dagster-mlflow's `mlflow_tracking` is a legacy function-style resource that opens
one MLflow run per Dagster run; we want one run per `lora_adapter` materialization
with explicit lineage tags, and the evaluation logged back into that same run.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from llm_platform.config import platform_home

PRODUCTION_ALIAS = "production"


class MlflowResource(dg.ConfigurableResource):
    """Tracking URI (empty: SQLite under the storage root), experiment and registered model name."""

    tracking_uri: str = ""
    home: str = ""
    experiment: str = "llm_platform"
    registered_model: str = "llm_platform_lora"

    @property
    def uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        folder = Path(self.home or platform_home()) / "mlflow"
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / 'mlflow.db'}"

    def _artifact_location(self) -> str | None:
        if self.tracking_uri:
            return None
        return (Path(self.home or platform_home()) / "mlflow" / "artifacts").as_uri()

    def client(self):
        import mlflow

        mlflow.set_tracking_uri(self.uri)
        return mlflow.MlflowClient(self.uri)

    def experiment_id(self) -> str:
        client = self.client()
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        return client.create_experiment(self.experiment, artifact_location=self._artifact_location())

    @contextmanager
    def run(self, *, run_name: str, tags: dict[str, str], run_id: str | None = None):
        """An active MLflow run (a new one, or `run_id` resumed) with `tags` set."""
        import mlflow

        self.client()
        with mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name, experiment_id=None if run_id else self.experiment_id()) as active:
            mlflow.set_tags(tags)
            yield active

    def production(self) -> dict | None:
        """The registered version under the `production` alias: version, run id and tags; None if none."""
        client = self.client()
        try:
            version = client.get_model_version_by_alias(self.registered_model, PRODUCTION_ALIAS)
        except Exception as exc:  # MlflowException when the model or alias does not exist yet
            if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in str(exc).lower():
                return None
            raise
        return {"version": version.version, "run_id": version.run_id, "tags": dict(version.tags), "source": version.source}

    def promote(self, *, run_id: str, artifact_path: str, tags: dict[str, str]) -> str:
        """Register the run's adapter as a new model version and point the alias at it."""
        client = self.client()
        try:
            client.get_registered_model(self.registered_model)
        except Exception:  # first promotion: the registered model does not exist yet
            client.create_registered_model(self.registered_model)
        version = client.create_model_version(self.registered_model, f"runs:/{run_id}/{artifact_path}", run_id=run_id, tags=tags)
        client.set_registered_model_alias(self.registered_model, PRODUCTION_ALIAS, version.version)
        return version.version

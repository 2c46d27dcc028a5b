"""Shared fixtures for the deployment tests: rendered manifests, Helm values, the cluster instance."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
OVERLAY = K8S / "overlays" / "example"
HELM_VALUES = K8S / "helm" / "values.yaml"
CLUSTER_INSTANCE = K8S / "helm" / "dagster-instance.yaml"
SECRETS_TEMPLATE = K8S / "secrets.example.yaml"
# Oldest Kubernetes minor the manifests promise to work on.
K8S_VERSION = "1.31.0"
NAMESPACE = "llm-platform"

_OFFLINE_KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "offline", "cluster": {"server": "https://127.0.0.1:6443"}}],
    "users": [{"name": "offline", "user": {"token": "offline"}}],
    "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline"}}],
    "current-context": "offline",
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def rendered() -> list[dict[str, Any]]:
    """The example overlay as `kubectl apply -k` would send it."""
    result = subprocess.run(
        ["kubectl", "kustomize", str(OVERLAY)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, f"kubectl kustomize {OVERLAY} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="session")
def helm_values() -> dict[str, Any]:
    return load_yaml(HELM_VALUES)


@pytest.fixture(scope="session")
def code_location(helm_values: dict[str, Any]) -> dict[str, Any]:
    """The one user-code deployment in the Helm values."""
    (deployment,) = helm_values["dagster-user-deployments"]["deployments"]
    return deployment


@pytest.fixture(scope="session")
def cluster_instance() -> dict[str, Any]:
    return load_yaml(CLUSTER_INSTANCE)


@pytest.fixture
def k8s_run_launcher(cluster_instance: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The cluster's K8sRunLauncher, built from its instance config with an offline kubeconfig.

    The environment variables are the ones the Dagster chart sets on its pods.
    """
    from dagster._serdes.config_class import ConfigurableClassData
    from dagster_k8s import K8sRunLauncher

    monkeypatch.setenv("DAGSTER_HOME", "/opt/dagster/dagster_home")
    monkeypatch.setenv("DAGSTER_K8S_INSTANCE_CONFIG_MAP", "dagster-instance")
    monkeypatch.setenv("DAGSTER_K8S_PG_PASSWORD_SECRET", "dagster-postgresql-secret")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(_OFFLINE_KUBECONFIG), encoding="utf-8")

    launcher = cluster_instance["run_launcher"]
    config = {**launcher["config"], "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
    data = ConfigurableClassData(launcher["module"], launcher["class"], yaml.safe_dump(config))
    return data.rehydrate(as_type=K8sRunLauncher)

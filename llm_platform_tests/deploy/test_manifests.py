"""The cluster manifests (kustomize overlay, Secret template, Helm values) are valid and locked down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from llm_platform.config import load_config
from llm_platform.pod_specs import DEFAULT_GPU_POD
from llm_platform_tests.deploy.conftest import K8S_VERSION, NAMESPACE, SECRETS_TEMPLATE, load_yaml

# What dagster-k8s's run launcher and k8s_job_executor call (dagster_k8s/client.py).
ALLOWED_RULES = {
    ("batch", "jobs"): {"create", "get", "list", "delete"},
    ("batch", "jobs/status"): {"get"},
    ("", "pods"): {"get", "list", "delete"},
    ("", "pods/log"): {"get"},
    ("", "events"): {"list"},
}
PLACEHOLDER = "<REPLACE_ME>"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def _workloads(rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [obj for obj in rendered if obj["kind"] in WORKLOAD_KINDS]


def _containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def _name(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _by_kind_and_name(rendered: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in rendered if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name} in the rendered overlay, found {len(matches)}"
    return matches[0]


def _assert_locked_down(pod_spec: dict[str, Any], container: dict[str, Any], where: str) -> None:
    limits = container.get("resources", {}).get("limits", {})
    requests = container.get("resources", {}).get("requests", {})
    assert {"cpu", "memory"} <= limits.keys(), f"{where}: cpu and memory limits are required"
    assert {"cpu", "memory"} <= requests.keys(), f"{where}: cpu and memory requests are required"
    pod_context = pod_spec.get("securityContext", {})
    context = container.get("securityContext", {})
    assert context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is True, f"{where}: must set runAsNonRoot"
    assert context.get("runAsUser", pod_context.get("runAsUser", 1)) != 0, f"{where}: must not run as uid 0"
    assert context.get("allowPrivilegeEscalation") is False, f"{where}: must forbid privilege escalation"
    assert not context.get("privileged", False), f"{where}: must not be privileged"
    assert context.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: must drop all capabilities"


def test_overlay_renders_the_platform_objects(rendered: list[dict[str, Any]]) -> None:
    kinds = {_name(obj) for obj in rendered}
    assert {
        "Namespace/llm-platform",
        "ServiceAccount/llm-platform-runner",
        "Role/llm-platform-runner",
        "RoleBinding/llm-platform-runner",
        "PersistentVolumeClaim/llm-platform-data",
        "ConfigMap/llm-platform-env",
        "ConfigMap/llm-platform-config",
        "Deployment/mlflow",
        "Service/mlflow",
    } <= kinds


def test_every_rendered_object_matches_the_kubernetes_schema(rendered: list[dict[str, Any]]) -> None:
    for obj in rendered:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{_name(obj)} is not valid Kubernetes {K8S_VERSION}: {error.message} at {list(error.path)}")


def test_every_namespaced_object_lands_in_the_platform_namespace(rendered: list[dict[str, Any]]) -> None:
    for obj in rendered:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == NAMESPACE, f"{_name(obj)} is outside {NAMESPACE}"


def test_every_container_has_limits_and_runs_as_non_root(rendered: list[dict[str, Any]]) -> None:
    workloads = _workloads(rendered)
    assert workloads, "the overlay renders no workloads to check"
    for obj in workloads:
        pod_spec = _pod_spec(obj)
        for container in _containers(pod_spec):
            _assert_locked_down(pod_spec, container, f"{_name(obj)} container {container['name']}")


def test_every_rendered_container_has_a_read_only_root(rendered: list[dict[str, Any]]) -> None:
    for obj in _workloads(rendered):
        for container in _containers(_pod_spec(obj)):
            context = container.get("securityContext", {})
            assert context.get("readOnlyRootFilesystem") is True, f"{_name(obj)} {container['name']}"


def test_rendering_contains_no_secret(rendered: list[dict[str, Any]]) -> None:
    # `kubectl apply -k` must never overwrite credentials created by hand.
    assert [_name(o) for o in rendered if o["kind"] == "Secret"] == []


def test_secret_template_is_valid_and_holds_only_placeholders() -> None:
    secrets = [doc for doc in yaml.safe_load_all(SECRETS_TEMPLATE.read_text(encoding="utf-8")) if doc]
    assert secrets
    for secret in secrets:
        kubernetes_validate.validate(secret, K8S_VERSION, strict=True)
        assert "data" not in secret, f"{_name(secret)}: base64 data would hide real values; use stringData"
        for key, value in secret["stringData"].items():
            assert PLACEHOLDER in value, f"{_name(secret)} key {key} holds {value!r}, not a placeholder"


def test_rbac_grants_only_the_verbs_dagster_k8s_uses(rendered: list[dict[str, Any]]) -> None:
    assert not [o for o in rendered if o["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    role = _by_kind_and_name(rendered, "Role", "llm-platform-runner")
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], f"wildcard in {rule}"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    assert granted == ALLOWED_RULES


def test_role_is_bound_to_the_runner_account(rendered: list[dict[str, Any]]) -> None:
    binding = _by_kind_and_name(rendered, "RoleBinding", "llm-platform-runner")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "llm-platform-runner",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "llm-platform-runner", "namespace": NAMESPACE}]


def test_data_volume_is_shared_across_nodes(rendered: list[dict[str, Any]]) -> None:
    pvc = _by_kind_and_name(rendered, "PersistentVolumeClaim", "llm-platform-data")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_overlay_gpu_pool_matches_the_default_gpu_pod(rendered: list[dict[str, Any]], tmp_path: Path) -> None:
    config_map = _by_kind_and_name(rendered, "ConfigMap", "llm-platform-config")
    config_file = tmp_path / "config.yaml"
    config_file.write_text(config_map["data"]["config.yaml"], encoding="utf-8")
    config = load_config(config_file, check_folders=False)  # the landing folders are on the cluster's volume
    assert config.gpu_pod == DEFAULT_GPU_POD


def test_env_config_map_points_the_platform_at_the_mounts(
    rendered: list[dict[str, Any]], code_location: dict[str, Any]
) -> None:
    env = _by_kind_and_name(rendered, "ConfigMap", "llm-platform-env")["data"]
    mounts = {m["mountPath"] for m in code_location["volumeMounts"]}
    assert Path(env["LLM_PLATFORM_CONFIG"]).parent.as_posix() in mounts
    assert any(env["LLM_PLATFORM_HOME"].startswith(m + "/") for m in mounts) or "://" in env["LLM_PLATFORM_HOME"]
    mlflow = _by_kind_and_name(rendered, "Service", "mlflow")
    port = mlflow["spec"]["ports"][0]["port"]
    assert env["MLFLOW_TRACKING_URI"] == f"http://mlflow.{NAMESPACE}.svc.cluster.local:{port}"


def test_cluster_runs_every_step_in_its_own_pod(rendered: list[dict[str, Any]]) -> None:
    from dagster_k8s import k8s_job_executor

    from llm_platform.automation.executors import platform_executor

    env = _by_kind_and_name(rendered, "ConfigMap", "llm-platform-env")["data"]
    executor = platform_executor(env["LLM_PLATFORM_EXECUTOR"])
    assert executor.executor_creation_fn is k8s_job_executor.executor_creation_fn


def test_helm_values_launch_runs_on_kubernetes(helm_values: dict[str, Any]) -> None:
    launcher = helm_values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    assert launcher["config"]["k8sRunLauncher"]["jobNamespace"] == NAMESPACE


def test_helm_values_use_external_postgres_with_a_secret(helm_values: dict[str, Any]) -> None:
    assert helm_values["postgresql"]["enabled"] is False
    assert helm_values["postgresql"]["postgresqlHost"]
    assert "postgresqlPassword" not in helm_values["postgresql"]
    assert helm_values["generatePostgresqlPasswordSecret"] is False
    template_names = {s["metadata"]["name"] for s in yaml.safe_load_all(SECRETS_TEMPLATE.read_text()) if s}
    assert helm_values["global"]["postgresqlSecretName"] in template_names


def test_helm_values_deploy_this_code_location(helm_values: dict[str, Any], code_location: dict[str, Any]) -> None:
    assert helm_values["dagster-user-deployments"]["enabled"] is True
    assert code_location["dagsterApiGrpcArgs"] == ["-m", "llm_platform.definitions"]
    assert code_location["includeConfigInLaunchedRuns"]["enabled"] is True


def test_helm_values_refer_only_to_objects_that_exist(
    rendered: list[dict[str, Any]], helm_values: dict[str, Any], code_location: dict[str, Any]
) -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in rendered}
    secrets = {s["metadata"]["name"] for s in yaml.safe_load_all(SECRETS_TEMPLATE.read_text()) if s}
    assert ("ServiceAccount", helm_values["global"]["serviceAccountName"]) in names
    for ref in code_location["envConfigMaps"]:
        assert ("ConfigMap", ref["name"]) in names
    for ref in code_location["envSecrets"]:
        assert ref["name"] in secrets
    for volume in code_location["volumes"]:
        if "persistentVolumeClaim" in volume:
            assert ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]) in names
        if "configMap" in volume:
            assert ("ConfigMap", volume["configMap"]["name"]) in names


def test_helm_values_replace_the_charts_broad_rbac(helm_values: dict[str, Any]) -> None:
    user_deployments = helm_values["dagster-user-deployments"]
    assert helm_values["rbacEnabled"] is False and user_deployments["rbacEnabled"] is False
    assert helm_values["serviceAccount"]["create"] is False
    assert user_deployments["serviceAccount"]["create"] is False


def test_helm_values_set_pool_and_run_limits(helm_values: dict[str, Any]) -> None:
    concurrency = helm_values["concurrency"]
    assert concurrency["enabled"] is True
    assert concurrency["pools"]["defaultLimit"] == 1
    assert concurrency["runs"]["maxConcurrentRuns"] >= 1
    # The chart refuses both places at once.
    queued = helm_values["dagsterDaemon"]["runCoordinator"].get("config", {}).get("queuedRunCoordinator", {})
    assert "maxConcurrentRuns" not in queued


@pytest.mark.parametrize("component", ["dagsterWebserver", "dagsterDaemon"])
def test_chart_pods_run_as_non_root_with_limits(helm_values: dict[str, Any], component: str) -> None:
    values = helm_values[component]
    container = {"resources": values["resources"], "securityContext": values["securityContext"]}
    _assert_locked_down({"securityContext": values["podSecurityContext"]}, container, component)


def test_code_location_pod_is_valid_and_locked_down(code_location: dict[str, Any]) -> None:
    """The pod the chart builds from the deployment's values, checked against the schema."""
    container = {
        "name": "dagster",
        "image": f"{code_location['image']['repository']}:{code_location['image']['tag']}",
        "resources": code_location["resources"],
        "securityContext": code_location["securityContext"],
        "volumeMounts": code_location["volumeMounts"],
    }
    pod_spec = {
        "securityContext": code_location["podSecurityContext"],
        "containers": [container],
        "volumes": code_location["volumes"],
    }
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "code-location"}, "spec": pod_spec}
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    _assert_locked_down(pod_spec, container, "user deployment")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    writable = {m["mountPath"] for m in code_location["volumeMounts"] if not m.get("readOnly")}
    assert {"/tmp", "/opt/dagster/dagster_home"} <= writable


def test_secret_template_is_not_loaded_by_any_kustomization() -> None:
    for kustomization in SECRETS_TEMPLATE.parent.rglob("kustomization.yaml"):
        listed = load_yaml(kustomization).get("resources", [])
        assert not any(str(r).endswith(SECRETS_TEMPLATE.name) for r in listed), kustomization

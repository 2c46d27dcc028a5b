"""Cluster hardening: the restricted Pod Security profile, least-privilege accounts, network policy, pinned images."""

from __future__ import annotations

import re
from typing import Any

import pytest

from llm_platform.automation.executors import STEP_SERVICE_ACCOUNT
from llm_platform_tests.deploy.conftest import NAMESPACE
from llm_platform_tests.deploy.network_policy import Peer, can_connect
from llm_platform_tests.deploy.pod_security import pod_spec_of, restricted_violations

DIGEST_REFERENCE = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
RELEASE = "dagster"

WEBSERVER = Peer({"component": "dagster-webserver", "app.kubernetes.io/name": "dagster"})
DAEMON = Peer({"component": "dagster-daemon", "app.kubernetes.io/name": "dagster"})
CODE_SERVER = Peer({"component": "user-deployments", "deployment": "llm-platform"})
RUN_POD = Peer({"app.kubernetes.io/component": "run_worker", "app.kubernetes.io/name": "dagster"})
STEP_POD = Peer({"app.kubernetes.io/component": "step_worker", "app.kubernetes.io/name": "dagster"})
MLFLOW = Peer({"app.kubernetes.io/name": "mlflow"})
OTHER_POD = Peer({"app": "something-else"})
OUTSIDE = Peer(external=True)
DAGSTER_PODS = [WEBSERVER, DAEMON, CODE_SERVER, RUN_POD, STEP_POD]


def _objects(rendered: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in rendered if o["kind"] == kind]


def _chart_pod(helm_values: dict[str, Any], component: str) -> dict[str, Any]:
    """The webserver's or daemon's pod spec as the chart's template renders it from the values (Dagster 1.13)."""
    values = helm_values[component]
    context = values["securityContext"]
    image = f"{values['image']['repository']}:{values['image']['tag']}"
    postgres = helm_values["postgresql"]["image"]
    busybox = helm_values["busybox"]["image"]
    init = [
        {"name": "check-db-ready", "image": f"{postgres['repository']}:{postgres['tag']}", "securityContext": context},
        {
            "name": "init-user-deployment-llm-platform",
            "image": f"{busybox['repository']}:{busybox['tag']}",
            "securityContext": context,
        },
    ]
    return {
        "serviceAccountName": helm_values["global"]["serviceAccountName"],
        "securityContext": values["podSecurityContext"],
        "initContainers": init,
        "containers": [
            {"name": "dagster", "image": image, "securityContext": context, "volumeMounts": values["volumeMounts"]}
        ],
        "volumes": [{"name": "dagster-instance", "configMap": {"name": f"{RELEASE}-instance"}}, *values["volumes"]],
    }


def _code_location_pod(code_location: dict[str, Any]) -> dict[str, Any]:
    image = f"{code_location['image']['repository']}:{code_location['image']['tag']}"
    return {
        "securityContext": code_location["podSecurityContext"],
        "containers": [{"name": "dagster", "image": image, "securityContext": code_location["securityContext"]}],
        "volumes": code_location["volumes"],
    }


# --- Pod Security ------------------------------------------------------------------------------


def test_namespace_enforces_the_restricted_profile(rendered: list[dict[str, Any]]) -> None:
    [namespace] = _objects(rendered, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_every_rendered_workload_meets_the_restricted_profile(rendered: list[dict[str, Any]]) -> None:
    pods = [(f"{o['kind']}/{o['metadata']['name']}", pod_spec_of(o)) for o in rendered]
    pods = [(name, pod) for name, pod in pods if pod is not None]
    assert pods, "the overlay renders no workloads to check"
    for name, pod in pods:
        assert restricted_violations(pod) == [], name


@pytest.mark.parametrize("component", ["dagsterWebserver", "dagsterDaemon"])
def test_chart_pods_meet_the_restricted_profile(helm_values: dict[str, Any], component: str) -> None:
    assert restricted_violations(_chart_pod(helm_values, component)) == []


def test_code_location_pod_meets_the_restricted_profile(code_location: dict[str, Any]) -> None:
    assert restricted_violations(_code_location_pod(code_location)) == []


@pytest.mark.parametrize("component", ["dagsterWebserver", "dagsterDaemon"])
def test_webserver_and_daemon_have_a_read_only_root_and_a_writable_tmp(
    helm_values: dict[str, Any], component: str
) -> None:
    values = helm_values[component]
    assert values["securityContext"]["readOnlyRootFilesystem"] is True
    assert "/tmp" in {m["mountPath"] for m in values["volumeMounts"]}
    assert {"emptyDir"} <= {k for v in values["volumes"] for k in v}


GOOD_POD = {
    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {"name": "c", "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}
    ],
    "volumes": [{"name": "scratch", "emptyDir": {}}],
}


def _broken(pod_change: dict[str, Any] | None = None, container_change: dict[str, Any] | None = None) -> dict[str, Any]:
    pod = {**GOOD_POD, **(pod_change or {})}
    container = GOOD_POD["containers"][0]
    pod["containers"] = [{**container, "securityContext": {**container["securityContext"], **(container_change or {})}}]
    return pod


@pytest.mark.parametrize(
    ("pod", "rule"),
    [
        (_broken({"hostNetwork": True}), "host namespaces"),
        (_broken(container_change={"privileged": True}), "privileged"),
        (_broken(container_change={"allowPrivilegeEscalation": True}), "privilege escalation"),
        (_broken(container_change={"capabilities": {"drop": ["NET_RAW"]}}), "capabilities"),
        (_broken(container_change={"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}), "capabilities"),
        (
            _broken({"securityContext": {"runAsNonRoot": False, "seccompProfile": {"type": "RuntimeDefault"}}}),
            "running as non-root",
        ),
        (_broken(container_change={"runAsUser": 0}), "running as non-root"),
        (_broken({"securityContext": {"runAsNonRoot": True}}), "seccomp"),
        (_broken(container_change={"seccompProfile": {"type": "Unconfined"}}), "seccomp"),
        (_broken({"volumes": [{"name": "host", "hostPath": {"path": "/"}}]}), "hostPath volumes"),
        (_broken({"volumes": [{"name": "nfs", "nfs": {"server": "x", "path": "/"}}]}), "volume types"),
        (_broken(container_change={"procMount": "Unmasked"}), "/proc mount"),
        (
            _broken(
                {
                    "securityContext": {
                        **GOOD_POD["securityContext"],
                        "sysctls": [{"name": "kernel.msgmax", "value": "1"}],
                    }
                }
            ),
            "sysctls",
        ),
        (_broken(container_change={"seLinuxOptions": {"type": "spc_t"}}), "SELinux"),
        (_broken(container_change={"appArmorProfile": {"type": "Unconfined"}}), "AppArmor"),
        (_broken(container_change={"windowsOptions": {"hostProcess": True}}), "host process"),
    ],
)
def test_restricted_checker_catches_each_rule(pod: dict[str, Any], rule: str) -> None:
    assert restricted_violations(GOOD_POD) == []
    violations = restricted_violations(pod)
    assert any(v.startswith(f"{rule}:") for v in violations), violations


def test_restricted_checker_catches_a_host_port() -> None:
    pod = {**GOOD_POD, "containers": [{**GOOD_POD["containers"][0], "ports": [{"containerPort": 80, "hostPort": 80}]}]}
    assert any(v.startswith("host ports:") for v in restricted_violations(pod))


# --- Accounts ------------------------------------------------------------------------------------


def test_step_account_has_no_token_and_no_role(rendered: list[dict[str, Any]]) -> None:
    [account] = [o for o in _objects(rendered, "ServiceAccount") if o["metadata"]["name"] == STEP_SERVICE_ACCOUNT]
    assert account["automountServiceAccountToken"] is False
    subjects = [
        s
        for binding in _objects(rendered, "RoleBinding") + _objects(rendered, "ClusterRoleBinding")
        for s in binding["subjects"]
    ]
    assert STEP_SERVICE_ACCOUNT not in {s["name"] for s in subjects}


# --- Network policy ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def policies(rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return _objects(rendered, "NetworkPolicy")


@pytest.mark.parametrize("source", [RUN_POD, STEP_POD])
def test_run_and_step_pods_reach_mlflow(policies, source: Peer) -> None:
    assert can_connect(policies, source, MLFLOW, 5000)


@pytest.mark.parametrize("source", [WEBSERVER, DAEMON, CODE_SERVER, OTHER_POD])
def test_mlflow_is_closed_to_every_other_pod(policies, source: Peer) -> None:
    assert not can_connect(policies, source, MLFLOW, 5000)


@pytest.mark.parametrize("source", [WEBSERVER, DAEMON])
def test_webserver_and_daemon_reach_the_code_server(policies, source: Peer) -> None:
    assert can_connect(policies, source, CODE_SERVER, 3030)


@pytest.mark.parametrize("source", [RUN_POD, STEP_POD, MLFLOW, OTHER_POD])
def test_code_server_is_closed_to_every_other_pod(policies, source: Peer) -> None:
    assert not can_connect(policies, source, CODE_SERVER, 3030)


@pytest.mark.parametrize("source", [DAEMON, CODE_SERVER, RUN_POD, STEP_POD, MLFLOW, OTHER_POD])
def test_webserver_is_closed_to_every_pod(policies, source: Peer) -> None:
    assert not can_connect(policies, source, WEBSERVER, 80)


@pytest.mark.parametrize("source", [*DAGSTER_PODS, MLFLOW])
def test_every_component_reaches_postgres(policies, source: Peer) -> None:
    assert can_connect(policies, source, OUTSIDE, 5432)


@pytest.mark.parametrize(
    ("source", "allowed"),
    [(WEBSERVER, True), (DAEMON, True), (RUN_POD, True), (STEP_POD, False), (CODE_SERVER, False), (MLFLOW, False)],
)
def test_only_orchestrating_pods_reach_the_kubernetes_api(policies, source: Peer, allowed: bool) -> None:
    assert can_connect(policies, source, OUTSIDE, 443) is allowed


def test_step_pods_reach_nothing_else_outside(policies) -> None:
    assert not any(can_connect(policies, STEP_POD, OUTSIDE, port) for port in (22, 80, 443, 8080))


def test_the_connectivity_checker_sees_an_open_namespace_as_open() -> None:
    assert can_connect([], OTHER_POD, MLFLOW, 5000)


# --- Images --------------------------------------------------------------------------------------


def _values_images(helm_values: dict[str, Any], code_location: dict[str, Any]) -> dict[str, str]:
    images = {
        "dagsterWebserver": helm_values["dagsterWebserver"]["image"],
        "dagsterDaemon": helm_values["dagsterDaemon"]["image"],
        "pipelineRun": helm_values["pipelineRun"]["image"],
        "postgresql (init)": helm_values["postgresql"]["image"],
        "busybox (init)": helm_values["busybox"]["image"],
        "user deployment": code_location["image"],
    }
    return {where: f"{image['repository']}:{image['tag']}" for where, image in images.items()}


def _rendered_images(rendered: list[dict[str, Any]]) -> dict[str, str]:
    images = {}
    for obj in rendered:
        pod = pod_spec_of(obj)
        for field in ("initContainers", "containers"):
            for container in (pod or {}).get(field) or []:
                images[f"{obj['kind']}/{obj['metadata']['name']} {container['name']}"] = container["image"]
    return images


def test_every_image_reference_is_pinned_by_digest(rendered, helm_values, code_location) -> None:
    images = {**_rendered_images(rendered), **_values_images(helm_values, code_location)}
    assert len(images) >= 7
    unpinned = {where: ref for where, ref in images.items() if not DIGEST_REFERENCE.match(ref)}
    assert unpinned == {}


def test_the_digest_check_rejects_a_tag_only_reference() -> None:
    assert not DIGEST_REFERENCE.match("registry.example.com/llm-platform:0.1.0")
    assert DIGEST_REFERENCE.match("registry.example.com/llm-platform@sha256:" + "a" * 64)


def test_overlay_and_helm_values_run_the_same_platform_image(rendered, helm_values) -> None:
    [mlflow] = [o for o in _objects(rendered, "Deployment") if o["metadata"]["name"] == "mlflow"]
    overlay_image = mlflow["spec"]["template"]["spec"]["containers"][0]["image"]
    values_image = helm_values["pipelineRun"]["image"]
    assert overlay_image == f"{values_image['repository']}@{values_image['tag'].split('@', 1)[1]}"


def test_namespace_of_every_policy(policies) -> None:
    assert {p["metadata"]["namespace"] for p in policies} == {NAMESPACE}

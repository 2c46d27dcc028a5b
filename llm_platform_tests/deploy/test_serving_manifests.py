"""The answer service's cluster objects: CPU and GPU Deployments, Service,
HPA, PDB, scraping, and vLLM with the production adapter.
"""

from __future__ import annotations

import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml

from llm_platform.pod_specs import DEFAULT_GPU_POD
from llm_platform_tests.deploy.conftest import K8S, K8S_VERSION, SECRETS_TEMPLATE, load_yaml
from llm_platform_tests.deploy.network_policy import Peer, can_connect
from llm_platform_tests.deploy.pod_security import pod_spec_of, restricted_violations
from llm_platform_tests.deploy.test_manifests import (
    _assert_locked_down,
    _by_kind_and_name,
    _containers,
    _name,
    _pod_spec,
    _workloads,
)

SERVE = "llm-platform-serve"
VLLM = Peer({"app.kubernetes.io/name": "vllm"})
VLLM_CLIENT = Peer({"app": "chat-frontend", "llm-platform/vllm-client": "true"})
SERVE_POD = Peer({"app.kubernetes.io/name": SERVE})
MLFLOW = Peer({"app.kubernetes.io/name": "mlflow"})
OTHER_POD = Peer({"app": "something-else"})
OUTSIDE = Peer(external=True)


def render(overlay: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=["gpu-serving", "vllm"])
def overlay(request) -> list[dict[str, Any]]:
    return render(request.param)


def test_overlay_renders_the_serving_objects(rendered):
    assert {
        f"{kind}/{SERVE}" for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget")
    } <= {_name(o) for o in rendered}


def test_serve_deployment_runs_the_service_on_all_interfaces_with_probes(rendered):
    (container,) = _pod_spec(_by_kind_and_name(rendered, "Deployment", SERVE))["containers"]
    assert container["command"][:2] == ["llm-platform", "serve"] and "0.0.0.0" in container["command"]
    port = container["ports"][0]["containerPort"]
    assert str(port) in container["command"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_service_hpa_and_pdb_point_at_the_serve_pods(rendered):
    deployment = _by_kind_and_name(rendered, "Deployment", SERVE)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = _by_kind_and_name(rendered, "Service", SERVE)
    hpa = _by_kind_and_name(rendered, "HorizontalPodAutoscaler", SERVE)
    pdb = _by_kind_and_name(rendered, "PodDisruptionBudget", SERVE)
    assert service["spec"]["selector"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": SERVE}
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], "the PDB must let a drain evict a pod"


def test_prometheus_scrapes_the_metrics_port(rendered):
    template = _by_kind_and_name(rendered, "Deployment", SERVE)["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    (container,) = template["spec"]["containers"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == container["ports"][0]["containerPort"]


def test_service_monitor_selects_the_service_port(rendered):
    monitor = load_yaml(K8S / "serving" / "servicemonitor.yaml")
    service = _by_kind_and_name(rendered, "Service", SERVE)
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_api_key_secret_is_optional_and_templated(rendered):
    (container,) = _pod_spec(_by_kind_and_name(rendered, "Deployment", SERVE))["containers"]
    (ref,) = [r["secretRef"] for r in container["envFrom"] if "secretRef" in r]
    templates = {s["metadata"]["name"]: s for s in yaml.safe_load_all(SECRETS_TEMPLATE.read_text()) if s}
    assert ref["optional"] is True and "LLM_PLATFORM_API_KEY" in templates[ref["name"]]["stringData"]


def test_overlay_objects_are_valid_kubernetes(overlay):
    for obj in overlay:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{_name(obj)} is not valid Kubernetes {K8S_VERSION}: {error.message} at {list(error.path)}")


def test_overlay_workloads_meet_the_restricted_profile(overlay):
    for obj in _workloads(overlay):
        assert restricted_violations(pod_spec_of(obj)) == [], _name(obj)


def test_overlay_containers_are_locked_down(overlay):
    for obj in _workloads(overlay):
        pod_spec = _pod_spec(obj)
        for container in _containers(pod_spec):
            _assert_locked_down(pod_spec, container, f"{_name(obj)} container {container['name']}")
            assert container["securityContext"].get("readOnlyRootFilesystem") is True, (
                f"{_name(obj)} {container['name']}"
            )


def test_gpu_serving_asks_for_a_gpu_on_the_gpu_pool():
    pod_spec = _pod_spec(_by_kind_and_name(render("gpu-serving"), "Deployment", SERVE))
    assert pod_spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == str(DEFAULT_GPU_POD.gpus)
    assert pod_spec["nodeSelector"] == DEFAULT_GPU_POD.node_selector
    assert [t["key"] for t in pod_spec["tolerations"]] == [t.key for t in DEFAULT_GPU_POD.tolerations]


@pytest.fixture(scope="module")
def vllm_objects() -> list[dict[str, Any]]:
    return render("vllm")


@pytest.fixture(scope="module")
def vllm_pod(vllm_objects) -> dict[str, Any]:
    return _pod_spec(_by_kind_and_name(vllm_objects, "Deployment", "vllm"))


def _container(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    (container,) = [c for c in _containers(pod_spec) if c["name"] == name]
    return container


def _option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def test_vllm_serves_the_adapter_the_init_container_fetches(vllm_pod):
    fetch, vllm = _container(vllm_pod, "fetch-adapter"), _container(vllm_pod, "vllm")
    dest = _option(fetch["command"], "--dest")
    assert fetch["command"][:3] == ["python", "-m", "llm_platform.serving.fetch_adapter"]
    assert "--enable-lora" in vllm["args"]
    assert _option(vllm["args"], "--lora-modules") == f"production={dest}/adapter"
    assert f"--model={dest}/base" in vllm["args"]
    shared = {m["name"] for m in fetch["volumeMounts"] if m["mountPath"] == dest} & {
        m["name"] for m in vllm["volumeMounts"] if m["mountPath"] == dest
    }
    assert shared, "the init container must write where vLLM reads"
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_vllm_loads_adapters_at_run_time_with_room_for_two(vllm_pod):
    vllm = _container(vllm_pod, "vllm")
    assert _env(vllm)["VLLM_ALLOW_RUNTIME_LORA_UPDATING"]["value"] == "True"
    assert "--max-loras=2" in vllm["args"], "the served adapter and the next one are loaded together during a switch"


def test_the_adapter_sync_sidecar_writes_where_vllm_reads(vllm_pod):
    fetch, vllm, sync = (
        _container(vllm_pod, "fetch-adapter"),
        _container(vllm_pod, "vllm"),
        _container(vllm_pod, "adapter-sync"),
    )
    dest = _option(fetch["command"], "--dest")
    assert sync["command"][:3] == ["python", "-m", "llm_platform.serving.vllm_sync"]
    assert _option(sync["command"], "--dest") == dest
    (writable,) = [m for m in sync["volumeMounts"] if m["mountPath"] == dest]
    assert not writable.get("readOnly") and writable["name"] in {
        m["name"] for m in vllm["volumeMounts"] if m["mountPath"] == dest
    }


def test_the_adapter_sync_sidecar_calls_vllm_over_loopback(vllm_pod):
    vllm, sync = _container(vllm_pod, "vllm"), _container(vllm_pod, "adapter-sync")
    assert _option(sync["command"], "--vllm-url") == f"http://127.0.0.1:{vllm['ports'][0]['containerPort']}"


def test_the_adapter_sync_liveness_probe_asks_whether_the_loop_still_polls(vllm_pod):
    sync = _container(vllm_pod, "adapter-sync")
    probe = sync["livenessProbe"]["exec"]["command"]
    assert probe[:3] == ["python", "-m", "llm_platform.serving.vllm_sync"] and "--probe" in probe
    assert _option(probe, "--dest") == _option(sync["command"], "--dest")
    assert float(_option(probe, "--max-age-seconds")) > 2 * float(_option(sync["command"], "--poll-seconds"))


@pytest.mark.parametrize("container", ["vllm", "adapter-sync"])
def test_vllm_and_its_sidecar_read_the_api_key_from_a_required_secret(vllm_pod, container: str):
    ref = _env(_container(vllm_pod, container))["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"]
    templates = {s["metadata"]["name"]: s for s in yaml.safe_load_all(SECRETS_TEMPLATE.read_text()) if s}
    assert not ref.get("optional"), "without the key the runtime LoRA API would be open to every client"
    assert ref["key"] in templates[ref["name"]]["stringData"]


@pytest.fixture(scope="module")
def vllm_policies(vllm_objects) -> list[dict[str, Any]]:
    return [o for o in vllm_objects if o["kind"] == "NetworkPolicy"]


def test_labelled_clients_reach_vllm(vllm_policies):
    assert can_connect(vllm_policies, VLLM_CLIENT, VLLM, 8000)


@pytest.mark.parametrize("source", [OTHER_POD, SERVE_POD, MLFLOW])
def test_vllm_is_closed_to_every_other_pod(vllm_policies, source: Peer):
    assert not can_connect(vllm_policies, source, VLLM, 8000)


def test_the_vllm_pod_reaches_the_registry(vllm_policies):
    assert can_connect(vllm_policies, VLLM, MLFLOW, 5000)


def test_the_vllm_pod_reaches_nothing_else(vllm_policies):
    assert not any(can_connect(vllm_policies, VLLM, OUTSIDE, port) for port in (80, 443, 5432))
    assert not can_connect(vllm_policies, VLLM, SERVE_POD, 8000)

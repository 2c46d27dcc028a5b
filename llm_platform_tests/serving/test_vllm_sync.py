"""The vLLM adapter sync sidecar: a promotion reaches a running vLLM by its
runtime LoRA API, never leaving it without an adapter.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from llm_platform.serving.vllm_client import VllmClient, VllmError
from llm_platform.serving.vllm_sync import STATUS_FILE, AdapterSync, SyncSettings, main, probe
from llm_platform_tests.serving.fake_vllm import FakeRegistry, FakeVllm, running_fake_vllm

MODEL = "llm-platform-adapter"


@dataclass
class Pod:
    """A vLLM pod just after its init container fetched version 1: the fake vLLM serves it as `production`."""

    dest: Path
    vllm: FakeVllm
    registry: FakeRegistry
    sync: AdapterSync

    def status(self) -> dict:
        return json.loads((self.dest / STATUS_FILE).read_text(encoding="utf-8"))


def _init_container_fetch(dest: Path, base_model: str = "base-a") -> str:
    (dest / "adapter").mkdir(parents=True)
    (dest / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    (dest / "version.json").write_text(json.dumps({"version": "1", "base_model": base_model}), encoding="utf-8")
    return str(dest / "adapter")


@pytest.fixture
def pod(tmp_path: Path) -> Iterator[Pod]:
    dest = tmp_path / "models"
    initial = _init_container_fetch(dest)
    registry = FakeRegistry(tmp_path / "registry")
    registry.register("1")
    with running_fake_vllm(FakeVllm(adapters={"production": initial})) as vllm:
        client = VllmClient(vllm.url, attempts=2, backoff_seconds=0.0)
        yield Pod(
            dest, vllm, registry, AdapterSync(SyncSettings(vllm.url, dest, MODEL, poll_seconds=0.1), registry, client)
        )


def test_a_promotion_reaches_vllm_as_load_switch_unload_without_restart(pod: Pod):
    pod.registry.register("2")
    pod.sync.poll_once()

    assert pod.vllm.changes() == [
        ("load_lora_adapter", f"{MODEL}-v2"),
        ("unload_lora_adapter", "production"),
        ("load_lora_adapter", "production"),
        ("unload_lora_adapter", f"{MODEL}-v2"),
    ]
    assert pod.vllm.adapters == {"production": str(pod.dest / "adapters" / "v2" / "adapter")}
    assert pod.status() | {"heartbeat_at": 0} == pod.status() | {
        "version": "2",
        "last_error": None,
        "switches": 1,
        "failed_polls": 0,
        "heartbeat_at": 0,
    }


def test_an_unchanged_alias_makes_no_load_or_unload_calls(pod: Pod):
    pod.sync.poll_once()
    pod.sync.poll_once()

    assert [(method, route) for method, route, _ in pod.vllm.calls] == [("GET", "/v1/models")] * 2, (
        "one listing per poll, nothing loaded"
    )
    assert pod.registry.downloads == []
    assert pod.status()["version"] == "1"


def test_a_failed_load_keeps_the_old_adapter_served_and_is_retried_at_the_next_poll(pod: Pod):
    pod.registry.register("2")
    pod.vllm.fail_loads.add(f"{MODEL}-v2")
    pod.sync.poll_once()

    assert pod.vllm.adapters == {"production": str(pod.dest / "adapter")}
    assert (
        pod.status()["failed_polls"] == 1
        and "HTTP 400" in pod.status()["last_error"]
        and pod.status()["version"] == "1"
    )

    pod.vllm.fail_loads.clear()
    pod.sync.poll_once()
    assert pod.vllm.adapters == {"production": str(pod.dest / "adapters" / "v2" / "adapter")}
    assert pod.status()["last_error"] is None
    assert pod.registry.downloads == ["run-2"], "the retry reuses the adapter the failed poll fetched"


def test_a_load_vllm_accepts_but_does_not_list_counts_as_failed(pod: Pod):
    pod.registry.register("2")
    pod.vllm.unlisted_loads.add(f"{MODEL}-v2")
    pod.sync.poll_once()

    assert pod.vllm.adapters == {"production": str(pod.dest / "adapter")}
    assert "does not list it" in pod.status()["last_error"]


def test_when_vllm_refuses_the_stable_name_the_versioned_name_serves_until_the_next_poll_repairs_it(pod: Pod):
    pod.registry.register("2")
    pod.vllm.fail_loads.add("production")
    pod.sync.poll_once()

    assert pod.vllm.adapters == {f"{MODEL}-v2": str(pod.dest / "adapters" / "v2" / "adapter")}, (
        "vLLM refuses the old one too here"
    )
    pod.vllm.fail_loads.clear()
    pod.sync.poll_once()
    assert pod.vllm.adapters == {"production": str(pod.dest / "adapters" / "v2" / "adapter")}


def test_a_stable_name_load_failure_restores_the_old_adapter_when_vllm_accepts_it(pod: Pod):
    pod.registry.register("2")
    pod.vllm.fail_name_paths.add(("production", str(pod.dest / "adapters" / "v2" / "adapter")))
    pod.sync.poll_once()

    assert pod.vllm.adapters["production"] == str(pod.dest / "adapter")
    assert pod.status()["failed_polls"] == 1


def test_the_sidecar_never_unloads_the_only_served_adapter(pod: Pod):
    with pytest.raises(RuntimeError, match="only adapter"):
        pod.sync._unload("production")

    assert pod.vllm.changes() == []


def test_the_old_versioned_folder_is_deleted_and_the_init_containers_adapter_kept(pod: Pod):
    pod.registry.register("2")
    pod.sync.poll_once()
    pod.registry.register("3")
    pod.sync.poll_once()

    assert sorted(p.name for p in (pod.dest / "adapters").iterdir()) == ["v3"]
    assert (pod.dest / "adapter" / "adapter_config.json").is_file(), (
        "vLLM's --lora-modules needs it after a container restart"
    )
    assert pod.vllm.adapters == {"production": str(pod.dest / "adapters" / "v3" / "adapter")}


def test_a_rollback_to_an_older_version_is_a_switch_like_any_other(pod: Pod):
    pod.registry.register("2")
    pod.sync.poll_once()
    pod.registry.alias = "1"
    pod.sync.poll_once()

    assert pod.vllm.adapters == {"production": str(pod.dest / "adapters" / "v1" / "adapter")}
    assert pod.status()["version"] == "1"


def test_a_restarted_vllm_serving_the_init_containers_adapter_is_switched_back_without_a_new_download(pod: Pod):
    pod.registry.register("2")
    pod.sync.poll_once()
    pod.vllm.adapters = {"production": str(pod.dest / "adapter")}  # vLLM's container restarted with its --lora-modules
    pod.sync.poll_once()

    assert pod.vllm.adapters == {"production": str(pod.dest / "adapters" / "v2" / "adapter")}
    assert pod.registry.downloads == ["run-2"]


def test_a_version_on_another_base_model_is_refused_once_and_not_fetched_again(pod: Pod):
    pod.registry.register("2", base_model="base-b")
    pod.sync.poll_once()
    pod.sync.poll_once()

    assert pod.vllm.changes() == []
    assert pod.registry.downloads == ["run-2"]
    assert "rollout restart" in pod.status()["last_error"] and pod.status()["failed_polls"] == 1


def test_no_alias_yet_leaves_vllm_alone(tmp_path: Path):
    dest = tmp_path / "models"
    initial = _init_container_fetch(dest)
    with running_fake_vllm(FakeVllm(adapters={"production": initial})) as vllm:
        sync = AdapterSync(SyncSettings(vllm.url, dest, MODEL), FakeRegistry(tmp_path), VllmClient(vllm.url))
        sync.poll_once()

    assert vllm.changes() == [] and sync.status.last_error is None


def test_an_unreachable_vllm_is_counted_and_the_loop_keeps_its_heartbeat(pod: Pod):
    pod.sync.vllm = VllmClient("http://127.0.0.1:9", attempts=2, backoff_seconds=0.0)
    pod.sync.poll_once()

    assert pod.status()["failed_polls"] == 1 and "is vLLM up" in pod.status()["last_error"]
    assert probe(pod.dest, max_age_seconds=60) == 0


def test_the_api_key_is_sent_on_every_lora_call(pod: Pod):
    pod.vllm.api_key = "s3cret"
    pod.registry.register("2")
    pod.sync.vllm = VllmClient(pod.vllm.url, api_key="s3cret")
    pod.sync.poll_once()

    assert pod.status()["version"] == "2"


def test_without_the_api_key_vllm_refuses_the_lora_calls(pod: Pod):
    pod.vllm.api_key = "s3cret"
    pod.registry.register("2")
    pod.sync.poll_once()

    assert "HTTP 401" in pod.status()["last_error"]
    assert pod.vllm.adapters == {"production": str(pod.dest / "adapter")}


def test_server_errors_are_retried_with_backoff_then_reported():
    class Flaky(FakeVllm):
        def answer(self, method, route, body, authorization):
            self.calls.append((method, route, body))
            return 503, {"message": "busy"}

    sleeps: list[float] = []
    with running_fake_vllm(Flaky()) as vllm, pytest.raises(VllmError, match="HTTP 503"):
        VllmClient(vllm.url, attempts=3, backoff_seconds=0.5, sleep=sleeps.append).served_adapters()

    assert len(vllm.calls) == 3 and sleeps == [0.5, 1.0]


def test_client_errors_are_not_retried(pod: Pod):
    with pytest.raises(VllmError, match="HTTP 404"):
        VllmClient(pod.vllm.url, attempts=3, backoff_seconds=0.0).unload_adapter("no-such-adapter")

    assert len(pod.vllm.calls) == 1


def test_the_probe_fails_when_the_loop_stopped_polling(pod: Pod):
    pod.sync.status.heartbeat_at = time.time() - 600
    pod.sync.status.write(pod.dest / STATUS_FILE)

    assert probe(pod.dest, max_age_seconds=300) == 1


def test_the_probe_fails_before_the_first_poll(tmp_path: Path):
    assert main(["--dest", str(tmp_path), "--probe"]) == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("vllm_url", "127.0.0.1:8000", "--vllm-url"),
        ("poll_seconds", 0, "--poll-seconds"),
        ("served_name", f"{MODEL}-v3", "--served-name"),
    ],
)
def test_settings_name_the_bad_option(tmp_path: Path, field: str, value, message: str):
    settings = {"vllm_url": "http://127.0.0.1:8000", "dest": tmp_path, "registered_model": MODEL, field: value}
    with pytest.raises(ValueError, match=message):
        SyncSettings(**settings)

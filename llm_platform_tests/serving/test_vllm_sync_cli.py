"""The vLLM sidecar as the pod runs it: a separate process over the real MLflow registry, against a fake vLLM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from llm_platform.home_layout import PRODUCTION_ALIAS
from llm_platform.resources.mlflow import mlflow_resource
from llm_platform.serving.vllm_sync import STATUS_FILE
from llm_platform_tests.serving.fake_vllm import FakeVllm, running_fake_vllm
from llm_platform_tests.serving.test_cli_serve import user_env  # noqa: F401 (fixture)


def _run(module: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], env=env, capture_output=True, text=True, timeout=180)


def _promote_a_new_version_of_the_same_run(config, home: str) -> str:
    client = mlflow_resource(config.mlflow, home, in_dagster=False).client()
    name = config.mlflow.registered_model
    current = client.get_model_version_by_alias(name, PRODUCTION_ALIAS)
    version = client.create_model_version(name, current.source, run_id=current.run_id, tags=dict(current.tags))
    client.set_registered_model_alias(name, PRODUCTION_ALIAS, version.version)
    return str(version.version)


def test_a_promotion_in_the_registry_reaches_vllm_through_the_sidecar_command(user_env, tmp_path: Path):
    platform, config, env = user_env
    dest = tmp_path / "models"
    init = _run("llm_platform.serving.fetch_adapter", "--dest", str(dest), env=env)
    assert init.returncode == 0, init.stderr

    with running_fake_vllm(FakeVllm(adapters={"production": str(dest / "adapter")})) as vllm:
        unchanged = _run(
            "llm_platform.serving.vllm_sync", "--once", "--dest", str(dest), "--vllm-url", vllm.url, env=env
        )
        assert unchanged.returncode == 0, unchanged.stderr
        assert vllm.changes() == []

        version = _promote_a_new_version_of_the_same_run(config, platform.home)
        promoted = _run(
            "llm_platform.serving.vllm_sync", "--once", "--dest", str(dest), "--vllm-url", vllm.url, env=env
        )

    assert promoted.returncode == 0, promoted.stderr
    adapter = dest / "adapters" / f"v{version}" / "adapter"
    assert vllm.adapters == {"production": str(adapter)} and (adapter / "adapter_config.json").is_file()
    assert json.loads((dest / STATUS_FILE).read_text())["version"] == version

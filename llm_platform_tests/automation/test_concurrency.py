"""Pools that serialize LanceDB writes and GPU steps, their limits, and retry policies on flaky steps."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from llm_platform.config import PlatformConfig, SourceConfig
from llm_platform.definitions import build_definitions
from llm_platform.index.assets import LANCEDB_POOL
from llm_platform.local_instance import INSTANCE_CONFIG
from llm_platform.model.assets import GPU_POOL

LOCAL_INSTANCE = INSTANCE_CONFIG


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    config = PlatformConfig(sources=[SourceConfig(name="alpha", location="/unused")])
    return build_definitions(config, executor="in_process")


def _op(defs: dg.Definitions, asset: str) -> dg.OpDefinition:
    return defs.resolve_assets_def(asset).op


@pytest.mark.parametrize("asset", ["vector_index", "published_index"])
def test_lancedb_writers_share_one_pool(defs: dg.Definitions, asset: str) -> None:
    assert _op(defs, asset).pool == LANCEDB_POOL == "lancedb_writes"


@pytest.mark.parametrize("asset", ["lora_adapter", "model_eval"])
def test_gpu_steps_share_the_gpu_pool(defs: dg.Definitions, asset: str) -> None:
    assert _op(defs, asset).pool == GPU_POOL == "gpu"


def test_local_instance_limits_every_pool_to_one_slot(tmp_path: Path) -> None:
    shutil.copy(LOCAL_INSTANCE, tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


@pytest.mark.parametrize("asset", ["raw_documents", "vector_index", "lora_adapter", "model_eval", "production_model"])
def test_step_that_can_fail_transiently_is_retried(defs: dg.Definitions, asset: str) -> None:
    policy = _op(defs, asset).retry_policy
    assert policy is not None and policy.max_retries >= 1


def test_code_location_installs_the_pool_wait_guard() -> None:
    # A fresh interpreter: another test may have installed the guard in this one.
    import subprocess
    import sys

    import llm_platform

    code = (
        "import llm_platform.definitions\n"
        "from llm_platform.automation.pool_wait import pool_wait_guard_installed\n"
        "print(pool_wait_guard_installed())"
    )
    env = {"PYTHONPATH": str(Path(llm_platform.__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert result.stdout.strip() == "True", result.stderr[-2000:]

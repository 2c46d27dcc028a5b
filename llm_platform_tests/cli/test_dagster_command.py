"""`llm-platform dagster ...`: the local instance, quiet by default, and a
warning when the config differs from the latest runs'.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from llm_platform.config import CONFIG_ENV, HOME_ENV, load_config
from llm_platform.library_warnings import python_warnings_for_dagster
from llm_platform.local_instance import DAGSTER_HOME_ENV, config_drift_warning, latest_config_hash, prepare_dagster_home
from llm_platform.resources.platform import CONFIG_TAG

REPO_ROOT = Path(__file__).resolve().parents[2]


@dg.asset
def tiny_asset(context) -> int:
    context.log.debug("a debug line from the asset")
    context.log.info("an info line from the asset")
    return 1


@pytest.fixture
def instance_home(tmp_path) -> Path:
    return prepare_dagster_home(tmp_path / "dagster")


@pytest.fixture
def config(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "platform.yaml").write_text("sources:\n  - name: docs\n    location: corpus\n", encoding="utf-8")
    return load_config(tmp_path / "platform.yaml")


def _run_with_config_hash(dagster_home: Path, sha: str) -> None:
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert dg.materialize([tiny_asset], instance=instance, tags={CONFIG_TAG: sha}).success


def test_a_config_other_than_the_latest_runs_one_is_warned_about(instance_home, config):
    _run_with_config_hash(instance_home, "0" * 64)
    warning = config_drift_warning(latest_config_hash(instance_home), config)
    assert (
        warning is not None
        and "000000000000" in warning
        and config.config_sha256[:12] in warning
        and CONFIG_ENV in warning
    )


def test_the_config_of_the_latest_runs_gives_no_warning(instance_home, config):
    _run_with_config_hash(instance_home, "0" * 64)
    _run_with_config_hash(instance_home, config.config_sha256)
    assert config_drift_warning(latest_config_hash(instance_home), config) is None


def test_an_instance_without_platform_runs_gives_no_warning(instance_home, config):
    assert config_drift_warning(latest_config_hash(instance_home), config) is None


def test_runs_on_the_local_instance_print_info_not_debug(instance_home, capfd):
    with dg.DagsterInstance.from_config(str(instance_home)) as instance:
        result = dg.materialize([tiny_asset], instance=instance)
        stored = instance.all_logs(result.run_id)
    err = capfd.readouterr().err
    assert " - DEBUG - " not in err and "a debug line" not in err and "an info line from the asset" in err
    assert any(
        entry.dagster_event and entry.dagster_event.event_type_value == "STEP_OUTPUT" for entry in stored
    )  # the UI keeps every event


DG = Path(sys.executable).with_name("dg")
needs_dg = pytest.mark.skipif(not DG.exists(), reason="dg (dagster-dg-cli) is not installed in this environment")


def _llm_platform_dagster(tmp_path: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        HOME_ENV: str(tmp_path / "home"),
        DAGSTER_HOME_ENV: str(tmp_path / "dagster"),
    }
    env.pop(CONFIG_ENV, None)
    return subprocess.run(
        [sys.executable, "-m", "llm_platform.cli", "dagster", *args],
        cwd=cwd or tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@needs_dg
def test_a_superseded_dagster_command_runs_through_dg_without_a_supersession_warning(tmp_path):
    # From the project's folder: dg runs only in a project with [tool.dg].
    done = _llm_platform_dagster(
        tmp_path, "job", "execute", "-m", "no_such_module_here", "-j", "index_job", cwd=REPO_ROOT
    )
    output = done.stderr + done.stdout
    assert (
        "no_such_module_here" in output and "dagster_dg_cli" in output
    )  # dg ran it, and failed on the module as it should
    assert "SupersessionWarning" not in output and "is superseded" not in output


@needs_dg
def test_dg_check_defs_passes_on_the_project(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        HOME_ENV: str(tmp_path / "home"),
        DAGSTER_HOME_ENV: str(tmp_path / "dagster"),
        "VIRTUAL_ENV": sys.prefix,
    }
    env.pop(CONFIG_ENV, None)
    done = subprocess.run(
        [str(DG), "check", "defs"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "All definitions loaded successfully" in done.stdout + done.stderr


def test_dagster_commands_print_no_supersession_warning(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        HOME_ENV: str(tmp_path / "home"),
        DAGSTER_HOME_ENV: str(tmp_path / "dagster"),
    }
    env.pop(CONFIG_ENV, None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "llm_platform.cli",
            "dagster",
            "asset",
            "materialize",
            "-m",
            "no_such_module_here",
            "--select",
            "x",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "no_such_module_here" in done.stderr + done.stdout  # dagster ran the command
    assert "superseded" not in done.stderr


def test_dagster_processes_keep_the_operators_warning_filters_and_add_ours():
    value = python_warnings_for_dagster("error::UserWarning")
    assert (
        value.startswith("error::UserWarning,") and "ignore:Function `asset_materialize_command` is superseded" in value
    )


def test_dagster_step_processes_filter_the_peft_deprecation_warning(tmp_path):
    script = (
        "import warnings; warnings.warn('`is_gradient_checkpointing` is deprecated and will be removed', FutureWarning)"
    )
    env = {**os.environ, "PYTHONWARNINGS": python_warnings_for_dagster(None)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert (
        done.returncode == 0
        and "is_gradient_checkpointing" not in done.stderr
        and "Invalid -W option" not in done.stderr
    )

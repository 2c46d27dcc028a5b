"""One local instance config for `make ui`, the demo and `dagster` commands;
DAGSTER_HOME is set for them, or a warning says so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llm_platform.automation.run_launcher import LocalRunLauncher
from llm_platform.local_instance import DAGSTER_HOME_ENV, INSTANCE_CONFIG, dagster_home_warning, prepare_dagster_home
from llm_platform_tests.deploy.conftest import REPO

BIN = Path(sys.executable).parent


def _env_without_dagster_home(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != DAGSTER_HOME_ENV}
    return {**env, "LLM_PLATFORM_HOME": str(home)}


@pytest.fixture
def no_dagster_home(monkeypatch: pytest.MonkeyPatch) -> None:
    # setenv first, so that monkeypatch restores the variable's absence whatever the code under test sets.
    monkeypatch.setenv(DAGSTER_HOME_ENV, "unset-by-test")
    monkeypatch.delenv(DAGSTER_HOME_ENV)


def test_llm_platform_dagster_runs_dagster_on_the_local_instance(tmp_path: Path) -> None:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    result = subprocess.run(
        [str(BIN / "llm-platform"), "dagster", "instance", "info"],
        cwd=work,
        env=_env_without_dagster_home(home),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    dagster_home = home / "dagster"
    assert str(dagster_home) in result.stdout
    assert "LocalRunLauncher" in result.stdout and "free_slots_after_run_end_seconds" in result.stdout
    assert (dagster_home / "history").is_dir()
    assert sorted(p.name for p in work.iterdir()) == [], "the command left files in the working directory"


def test_repo_root_holds_no_instance_config() -> None:
    # `dagster dev` warns about, and ignores, a dagster.yaml in the working directory that is not DAGSTER_HOME.
    assert not (REPO / "dagster.yaml").exists()


def test_dagster_command_without_dagster_home_warns(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "dagster"), "asset", "list", "-m", "llm_platform.definitions"],
        cwd=tmp_path,
        env=_env_without_dagster_home(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "DAGSTER_HOME is not set" in result.stderr and "llm-platform dagster" in result.stderr
    assert not {"history", "schedules", "storage"} & {p.name for p in tmp_path.iterdir()}, (
        "instance folders left in the working directory"
    )


def test_warning_is_only_for_dagster_commands_without_dagster_home(
    no_dagster_home, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert dagster_home_warning("/venv/bin/dagster") is not None
    assert dagster_home_warning("/venv/bin/dagster-webserver") is not None
    assert dagster_home_warning("/venv/bin/pytest") is None
    monkeypatch.setenv(DAGSTER_HOME_ENV, "/somewhere")
    assert dagster_home_warning("/venv/bin/dagster") is None


def test_dg_commands_that_run_on_an_instance_warn_without_dagster_home_and_those_that_only_load_code_do_not(
    no_dagster_home,
) -> None:
    assert dagster_home_warning("/venv/bin/dg", "launch") is not None
    assert dagster_home_warning("/venv/bin/dg", "dev") is not None
    assert dagster_home_warning("/venv/bin/dg", "check") is None
    assert dagster_home_warning("/venv/bin/dg", "list") is None


def test_demo_instance_has_run_retries_and_run_monitoring(
    tmp_path: Path, no_dagster_home, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_platform.demo.run import demo_instance

    monkeypatch.setenv("LLM_PLATFORM_HOME", str(tmp_path))
    with demo_instance(str(tmp_path)) as instance:
        assert Path(instance.root_directory) == tmp_path / "dagster"
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.run_monitoring_enabled
        assert isinstance(instance.run_launcher, LocalRunLauncher)


def test_prepare_refreshes_its_own_copy_and_keeps_a_persons_config(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    prepare_dagster_home(ours)
    stale = (ours / "dagster.yaml").read_text().replace("max_retries: 2", "max_retries: 9")
    (ours / "dagster.yaml").write_text(stale)
    prepare_dagster_home(ours)
    assert yaml.safe_load((ours / "dagster.yaml").read_text()) == yaml.safe_load(INSTANCE_CONFIG.read_text())
    theirs.mkdir()
    (theirs / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    prepare_dagster_home(theirs)
    assert (theirs / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def test_make_ui_goes_through_the_entry_that_sets_dagster_home() -> None:
    makefile = (REPO / "Makefile").read_text()
    ui_recipe = makefile.split("\nui:", 1)[1].split("\n\n", 1)[0]
    assert "llm-platform dagster dev" in ui_recipe

"""The demo's "Next:" lines name the README's commands, with the config of the run when it is not the demo's."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_platform.config import CONFIG_ENV, DEMO_CONFIG, HOME_ENV, load_config, platform_home
from llm_platform.demo.run import next_steps
from llm_platform.local_instance import DAGSTER_HOME_ENV, default_dagster_home

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    monkeypatch.delenv(DAGSTER_HOME_ENV, raising=False)


def test_the_demo_names_the_ui_command_of_the_readme():
    lines = next_steps(load_config(DEMO_CONFIG), str(default_dagster_home(platform_home())))
    assert "  make ui" in lines and "dagster dev" not in lines and CONFIG_ENV not in lines
    assert "make ui" in README.read_text(encoding="utf-8")


def test_a_demo_of_another_config_names_that_config_before_each_command(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "mine.yaml").write_text("sources:\n  - {name: docs, location: corpus}\n", encoding="utf-8")
    lines = next_steps(load_config(tmp_path / "mine.yaml"), str(default_dagster_home(platform_home())))
    assert (
        f"{CONFIG_ENV}={tmp_path / 'mine.yaml'} make ui" in lines
        and f"{CONFIG_ENV}={tmp_path / 'mine.yaml'} .venv/bin/llm-platform search" in lines
    )


def test_another_dagster_home_is_named_before_make_ui(tmp_path):
    lines = next_steps(load_config(DEMO_CONFIG), str(tmp_path / "elsewhere"))
    assert f"DAGSTER_HOME={tmp_path / 'elsewhere'} make ui" in lines

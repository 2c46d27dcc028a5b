"""`llm-platform dagster ARGS`: which commands run as `dg` (no
SupersessionWarning), with what arguments, and which stay `dagster`.
"""

from __future__ import annotations

from pathlib import Path

from llm_platform.dagster_commands import command_line, dg_arguments

PARTITION_TAGS = '{"dagster/partition": "handbook"}'


def test_dagster_dev_runs_as_dg_dev_with_its_options():
    assert dg_arguments(["dev", "-h", "127.0.0.1", "-p", "3001"]) == ["dev", "-h", "127.0.0.1", "-p", "3001"]


def test_asset_materialize_runs_as_dg_launch_with_select_renamed_assets():
    args = [
        "asset",
        "materialize",
        "-m",
        "llm_platform.definitions",
        "--select",
        "raw_documents,chunks",
        "--partition",
        "mydocs",
    ]
    assert dg_arguments(args) == [
        "launch",
        "-m",
        "llm_platform.definitions",
        "--assets",
        "raw_documents,chunks",
        "--partition",
        "mydocs",
    ]


def test_the_equals_form_of_an_option_is_renamed_too():
    assert dg_arguments(["asset", "materialize", "--select=chunks"]) == ["launch", "--assets=chunks"]


def test_job_execute_runs_as_dg_launch_job():
    assert dg_arguments(["job", "execute", "-m", "llm_platform.definitions", "-j", "training_job"]) == [
        "launch",
        "-m",
        "llm_platform.definitions",
        "--job",
        "training_job",
    ]


def test_a_partition_tag_becomes_dg_launchs_partition_option():
    args = ["job", "execute", "-m", "llm_platform.definitions", "-j", "index_job", "--tags", PARTITION_TAGS]
    assert dg_arguments(args) == [
        "launch",
        "-m",
        "llm_platform.definitions",
        "--job",
        "index_job",
        "--partition",
        "handbook",
    ]
    assert dg_arguments(["job", "execute", "--job=index_job", f"--tags={PARTITION_TAGS}"]) == [
        "launch",
        "--job=index_job",
        "--partition",
        "handbook",
    ]


def test_job_options_dg_launch_lacks_keep_the_dagster_command():
    assert dg_arguments(["job", "execute", "-j", "index_job", "--tags", '{"owner": "me"}']) is None
    assert dg_arguments(["job", "execute", "-j", "index_job", "--tags", "not json"]) is None
    assert dg_arguments(["job", "execute", "-j", "index_job", "--op-selection", "chunks"]) is None
    assert dg_arguments(["job", "execute", "-j", "index_job", "--tags"]) is None


def test_commands_dagster_does_not_supersede_stay_dagster_commands():
    assert dg_arguments(["asset", "list", "-m", "llm_platform.definitions"]) is None
    assert dg_arguments(["job", "backfill", "-j", "index_job", "--all"]) is None


REPO = Path(__file__).resolve().parents[2]


def test_dg_runs_the_command_only_where_it_is_installed(tmp_path: Path):
    assert command_line(["dev"], tmp_path, cwd=REPO) == [str(tmp_path / "dagster"), "dev"]
    (tmp_path / "dg").touch()
    assert command_line(["dev"], tmp_path, cwd=REPO) == [str(tmp_path / "dg"), "dev"]
    assert command_line(["asset", "list"], tmp_path, cwd=REPO) == [str(tmp_path / "dagster"), "asset", "list"]


def test_outside_a_dg_project_the_dagster_command_runs_as_typed(tmp_path: Path):
    # dg refuses to run outside a project with [tool.dg]; `dagster ... -m llm_platform.definitions` runs anywhere.
    (tmp_path / "dg").touch()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pyproject.toml").write_text("[project]\nname = 'other'\n")
    assert command_line(["dev"], tmp_path, cwd=elsewhere) == [str(tmp_path / "dagster"), "dev"]


def test_dagster_dev_options_dg_dev_lacks_run_dagster_dev():
    assert dg_arguments(["dev", "-p", "3001", "--host=0.0.0.0"]) == ["dev", "-p", "3001", "--host=0.0.0.0"]
    assert dg_arguments(["dev", "-v"]) is None
    assert dg_arguments(["dev", "--dagit-port", "3001"]) is None
    assert dg_arguments(["dev", "-m", "llm_platform.definitions"]) is None

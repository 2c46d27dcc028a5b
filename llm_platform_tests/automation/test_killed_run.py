"""A run killed with SIGKILL while holding the lancedb_writes slot is failed and its slot freed, so the next run proceeds.

Real processes: `dagster asset materialize` holds the slot in a step of the
`lancedb_writes` pool and is killed with SIGKILL (the whole process group), then a
real `dagster-daemon` runs the instance's run monitoring. The instance is the
repo's llm_platform/dagster.yaml with the monitoring intervals shortened.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml

from llm_platform.automation.run_launcher import LocalRunLauncher, process_is_alive, run_worker_pid
from llm_platform.index.assets import LANCEDB_POOL
from llm_platform.local_instance import INSTANCE_CONFIG
from llm_platform_tests.processes import stop_process_group

WAIT_SECONDS = 240
ASSET = "slot_holder"
# The step holds its pool slot while the hold file exists.
MODULE = f'''
import os, time
from pathlib import Path
import dagster as dg

@dg.asset(pool={LANCEDB_POOL!r})
def {ASSET}() -> None:
    Path(os.environ["SLOT_TEST_FOLDER"], "started").write_text(str(os.getpid()))
    while Path(os.environ["SLOT_TEST_FOLDER"], "hold").exists():
        time.sleep(0.2)

defs = dg.Definitions(assets=[{ASSET}])
'''


@dataclass
class Workspace:
    folder: Path
    env: dict[str, str]

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(self.env["DAGSTER_HOME"])

    def spawn(self, *command: str, log: str) -> subprocess.Popen:
        out = (self.folder / log).open("wb")
        return subprocess.Popen(command, cwd=self.folder, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def materialize(self, log: str) -> subprocess.Popen:
        dagster = str(Path(sys.executable).with_name("dagster"))
        return self.spawn(dagster, "asset", "materialize", "--select", ASSET, "-m", "slot_holder", log=log)

    def log(self, name: str) -> str:
        return (self.folder / name).read_text(errors="replace")[-3000:]


def _wait_for(condition: Callable[[], bool], what: str, workspace: Workspace, logs: tuple[str, ...]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {WAIT_SECONDS}s waiting for {what}\n" + "\n".join(f"--- {n}\n{workspace.log(n)}" for n in logs))
        time.sleep(0.5)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    config = yaml.safe_load(INSTANCE_CONFIG.read_text(encoding="utf-8"))
    config["run_monitoring"].update(poll_interval_seconds=1, free_slots_after_run_end_seconds=1)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (tmp_path / "slot_holder.py").write_text(textwrap.dedent(MODULE), encoding="utf-8")
    env = {**os.environ, "DAGSTER_HOME": str(home), "SLOT_TEST_FOLDER": str(tmp_path), "PYTHONPATH": str(tmp_path)}
    return Workspace(tmp_path, env)


@pytest.fixture
def daemon(workspace: Workspace) -> Iterator[Callable[[], subprocess.Popen]]:
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        command = [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-m", "slot_holder", "--working-directory", str(workspace.folder)]
        started.append(workspace.spawn(*command, log="daemon.log"))
        return started[-1]

    yield start
    for process in started:
        stop_process_group(process)


def _kill_a_run_holding_the_slot(workspace: Workspace) -> str:
    (workspace.folder / "hold").touch()
    first = workspace.materialize("first.log")
    try:
        _wait_for(lambda: (workspace.folder / "started").exists() or first.poll() is not None, "the first run to take the slot", workspace, ("first.log",))
        assert first.poll() is None, workspace.log("first.log")
    finally:
        stop_process_group_now(first)
    (workspace.folder / "hold").unlink()
    with workspace.instance() as instance:
        [run] = instance.get_runs()
        return run.run_id


def stop_process_group_now(process: subprocess.Popen) -> None:
    """kill -9 of the run: the CLI process and its step process, with no chance to report anything."""
    os.killpg(process.pid, 9)
    process.wait()


def test_killed_run_is_left_started_holding_its_slot_without_monitoring(workspace: Workspace) -> None:
    run_id = _kill_a_run_holding_the_slot(workspace)
    with workspace.instance() as instance:
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
        assert run_id in instance.event_log_storage.get_concurrency_run_ids()


def test_killed_run_is_failed_and_does_not_block_the_next(workspace: Workspace, daemon) -> None:
    run_id = _kill_a_run_holding_the_slot(workspace)
    daemon()
    with workspace.instance() as instance:
        _wait_for(lambda: instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE, "run monitoring to fail the killed run", workspace, ("daemon.log",))
        _wait_for(lambda: run_id not in instance.event_log_storage.get_concurrency_run_ids(), "the killed run's slot to be freed", workspace, ("daemon.log",))
    second = workspace.materialize("second.log")
    try:
        second.wait(timeout=WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        stop_process_group(second)
        pytest.fail(f"the next run still waits for the slot after {WAIT_SECONDS}s\n{workspace.log('second.log')}")
    assert second.returncode == 0, workspace.log("second.log")
    with workspace.instance() as instance:
        latest = instance.get_runs(limit=1)[0]
        assert latest.run_id != run_id and latest.status == dg.DagsterRunStatus.SUCCESS


def test_local_instance_uses_the_health_checking_launcher(workspace: Workspace) -> None:
    with workspace.instance() as instance:
        assert isinstance(instance.run_launcher, LocalRunLauncher)
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0


def test_health_check_finds_the_worker_pid_and_tells_alive_from_dead(workspace: Workspace) -> None:
    run_id = _kill_a_run_holding_the_slot(workspace)
    with workspace.instance() as instance:
        pid = run_worker_pid(instance, run_id)
        assert pid is not None and not process_is_alive(pid, None)
        assert instance.run_launcher.check_run_worker_health(instance.get_run_by_id(run_id)).status.value == "FAILED"
    assert process_is_alive(os.getpid(), time.time())
    assert not process_is_alive(os.getpid(), 0.0), "a process that started after the run is not its worker"

"""A run killed with SIGKILL while holding the lancedb_writes slot is failed and its slot freed, so the next run
proceeds.

Real processes: `dagster asset materialize` holds the slot in a step of the
`lancedb_writes` pool and is killed with SIGKILL (the whole process group). Then
either a real `dagster-daemon` runs the instance's run monitoring, or, with no
daemon, the next `llm-platform dagster asset materialize` frees the slot itself
(llm_platform/automation/pool_wait.py). The instance is the repo's
llm_platform/dagster.yaml with the monitoring intervals shortened.
"""

from __future__ import annotations

import os
import signal
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

import llm_platform
from llm_platform.automation.run_launcher import LocalRunLauncher, process_is_alive, run_worker_pid
from llm_platform.index.assets import LANCEDB_POOL
from llm_platform.local_instance import INSTANCE_CONFIG
from llm_platform_tests.processes import stop_process_group

WAIT_SECONDS = 240
ASSET = "slot_holder"
# The step holds its pool slot while the hold file exists.
MODULE = f"""
import os, time
from pathlib import Path
import dagster as dg
from llm_platform.automation.pool_wait import install_pool_wait_guard

# What llm_platform's executors do; this module keeps Dagster's default executor to stay small.
install_pool_wait_guard()

@dg.asset(pool={LANCEDB_POOL!r})
def {ASSET}() -> None:
    Path(os.environ["SLOT_TEST_FOLDER"], "started").write_text(str(os.getpid()))
    while Path(os.environ["SLOT_TEST_FOLDER"], "hold").exists():
        time.sleep(0.2)

# The demo and LLM_PLATFORM_EXECUTOR=in_process run steps in the run's process.
in_process = os.environ.get("SLOT_TEST_EXECUTOR") == "in_process"
defs = dg.Definitions(assets=[{ASSET}], executor=dg.in_process_executor if in_process else None)
"""


@dataclass
class Workspace:
    folder: Path
    env: dict[str, str]

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(self.env["DAGSTER_HOME"])

    def spawn(self, *command: str, log: str, executor: str = "multiprocess") -> subprocess.Popen:
        out = (self.folder / log).open("wb")
        env = {**self.env, "SLOT_TEST_EXECUTOR": executor}
        return subprocess.Popen(
            command,
            cwd=self.folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def materialize(self, log: str) -> subprocess.Popen:
        dagster = str(Path(sys.executable).with_name("dagster"))
        return self.spawn(dagster, "asset", "materialize", "--select", ASSET, "-m", "slot_holder", log=log)

    def cli_materialize(self, log: str, executor: str = "multiprocess") -> subprocess.Popen:
        """The documented path: `llm-platform dagster asset materialize ...`, no daemon."""
        cli = str(Path(sys.executable).with_name("llm-platform"))
        return self.spawn(
            cli, "dagster", "asset", "materialize", "--select", ASSET, "-m", "slot_holder", log=log, executor=executor
        )

    def log(self, name: str) -> str:
        return (self.folder / name).read_text(errors="replace")[-3000:]


def _wait_for(condition: Callable[[], bool], what: str, workspace: Workspace, logs: tuple[str, ...]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(
                f"gave up after {WAIT_SECONDS}s waiting for {what}\n"
                + "\n".join(f"--- {n}\n{workspace.log(n)}" for n in logs)
            )
        time.sleep(0.5)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    config = yaml.safe_load(INSTANCE_CONFIG.read_text(encoding="utf-8"))
    config["run_monitoring"].update(poll_interval_seconds=1, free_slots_after_run_end_seconds=1)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (tmp_path / "slot_holder.py").write_text(textwrap.dedent(MODULE), encoding="utf-8")
    # The checkout under test stays on the path (the venv's editable install may point elsewhere).
    python_path = os.pathsep.join([str(tmp_path), str(Path(llm_platform.__file__).resolve().parents[1])])
    env = {**os.environ, "DAGSTER_HOME": str(home), "SLOT_TEST_FOLDER": str(tmp_path), "PYTHONPATH": python_path}
    return Workspace(tmp_path, env)


@pytest.fixture
def daemon(workspace: Workspace) -> Iterator[Callable[[], subprocess.Popen]]:
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        command = [
            str(Path(sys.executable).with_name("dagster-daemon")),
            "run",
            "-m",
            "slot_holder",
            "--working-directory",
            str(workspace.folder),
        ]
        started.append(workspace.spawn(*command, log="daemon.log"))
        return started[-1]

    yield start
    for process in started:
        stop_process_group(process)


def _kill_a_run_holding_the_slot(workspace: Workspace) -> str:
    (workspace.folder / "hold").touch()
    first = workspace.materialize("first.log")
    try:
        _wait_for(
            lambda: (workspace.folder / "started").exists() or first.poll() is not None,
            "the first run to take the slot",
            workspace,
            ("first.log",),
        )
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
        _wait_for(
            lambda: instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE,
            "run monitoring to fail the killed run",
            workspace,
            ("daemon.log",),
        )
        _wait_for(
            lambda: run_id not in instance.event_log_storage.get_concurrency_run_ids(),
            "the killed run's slot to be freed",
            workspace,
            ("daemon.log",),
        )
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


def test_next_cli_run_fails_the_killed_run_and_takes_its_slot_without_a_daemon(workspace: Workspace) -> None:
    run_id = _kill_a_run_holding_the_slot(workspace)
    second = workspace.cli_materialize("second.log")
    try:
        second.wait(timeout=WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        stop_process_group(second)
        pytest.fail(
            "the next CLI run still waits for the killed run's slot after "
            f"{WAIT_SECONDS}s\n{workspace.log('second.log')}"
        )
    assert second.returncode == 0, workspace.log("second.log")
    assert f"freed the {LANCEDB_POOL} pool slot of run {run_id}" in workspace.log("second.log")
    with workspace.instance() as instance:
        killed = instance.get_run_by_id(run_id)
        assert killed.status == dg.DagsterRunStatus.FAILURE
        assert instance.get_runs(limit=1)[0].status == dg.DagsterRunStatus.SUCCESS
        assert not instance.event_log_storage.get_concurrency_run_ids()


@dataclass
class WaitingRun:
    holder: subprocess.Popen
    holder_run_id: str
    waiter: subprocess.Popen


@pytest.fixture
def waiting_run(workspace: Workspace, request: pytest.FixtureRequest) -> Iterator[WaitingRun]:
    """A live run holds the slot (its step loops while the hold file exists); a
    CLI run waits for it (multiprocess unless parametrized).
    """
    (workspace.folder / "hold").touch()
    holder = workspace.materialize("holder.log")
    waiter = None
    try:
        _wait_for(
            lambda: (workspace.folder / "started").exists() or holder.poll() is not None,
            "the holder to take the slot",
            workspace,
            ("holder.log",),
        )
        with workspace.instance() as instance:
            [holder_run] = instance.get_runs()
        waiter = workspace.cli_materialize("waiter.log", executor=getattr(request, "param", "multiprocess"))
        # Dagster's own "blocked by limit" line is DEBUG, which the local instance does not print; ours is a warning.
        _wait_for(
            lambda: "pool slot held by live run" in workspace.log("waiter.log") or waiter.poll() is not None,
            "the waiting run to block",
            workspace,
            ("waiter.log",),
        )
        assert waiter.poll() is None, workspace.log("waiter.log")
        yield WaitingRun(holder, holder_run.run_id, waiter)
    finally:
        (workspace.folder / "hold").unlink(missing_ok=True)
        for process in (waiter, holder):
            if process is not None:
                stop_process_group(process)


def _cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def test_a_run_waiting_for_a_slot_sleeps_instead_of_spinning(waiting_run: WaitingRun) -> None:
    window = 10.0
    before, started = _cpu_seconds(waiting_run.waiter.pid), time.monotonic()
    time.sleep(window)
    used = _cpu_seconds(waiting_run.waiter.pid) - before
    # A spinning wait burns most of a core (60-90 % measured); a sleeping one a few percent.
    assert used < 0.3 * (time.monotonic() - started), f"the waiting run used {used:.1f} s of CPU in {window:g} s"


def test_a_live_holder_keeps_its_slot(workspace: Workspace, waiting_run: WaitingRun) -> None:
    time.sleep(10)  # a few of the waiting run's checks of the holders
    with workspace.instance() as instance:
        assert instance.get_run_by_id(waiting_run.holder_run_id).status == dg.DagsterRunStatus.STARTED
        assert waiting_run.holder_run_id in instance.event_log_storage.get_concurrency_info(LANCEDB_POOL).active_run_ids
    assert waiting_run.waiter.poll() is None, "the waiting run stopped waiting while the holder was alive"
    assert "freed the" not in workspace.log("waiter.log")


def test_a_waiting_run_names_the_holder_and_how_to_stop_it(workspace: Workspace, waiting_run: WaitingRun) -> None:
    told = f"pool slot held by live run {waiting_run.holder_run_id} (worker pid {waiting_run.holder.pid})"
    _wait_for(
        lambda: told in workspace.log("waiter.log"), "the waiting run to name the holder", workspace, ("waiter.log",)
    )
    assert f"To stop that run instead: kill {waiting_run.holder.pid}" in workspace.log("waiter.log")


@pytest.mark.parametrize("waiting_run", ["multiprocess", "in_process"], indirect=True)
def test_sigterm_stops_a_run_waiting_for_a_slot(waiting_run: WaitingRun, workspace: Workspace) -> None:
    waiting_run.waiter.send_signal(signal.SIGTERM)
    try:
        waiting_run.waiter.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the waiting run ignored SIGTERM for 60 s\n{workspace.log('waiter.log')}")
    assert waiting_run.waiter.returncode != 0

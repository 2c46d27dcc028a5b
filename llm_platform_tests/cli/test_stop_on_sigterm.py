"""`make ui` and `llm-platform serve` stop within 10 s of SIGTERM, also when started in the background.

A shell starts a background job (`make ui &`) with SIGINT ignored; `dagster dev` maps SIGTERM to
whatever SIGINT does, so it ignored SIGTERM too. The tests start each command the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_platform.config import CONFIG_ENV, HOME_ENV
from llm_platform_tests.processes import free_port, stop_process_group

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 240  # dagster dev loads the code location on two busy cores
STOP_SECONDS = 10


# What `command &` does in a script: SIGINT ignored, inherited through exec.
_AS_BACKGROUND_JOB = ["bash", "-c", 'trap "" INT; exec "$@"', "background-job"]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # serving, if not ready
    except OSError:
        return False


@contextlib.contextmanager
def _sigterm_as_a_fresh_shell_has_it() -> Iterator[None]:
    """SIGTERM at its default and unblocked while a command starts, as a user's shell starts it.

    This test process's own signal state (which in-process runs earlier in a
    full suite may leave changed) must not leak into the command: an ignored
    SIGTERM is inherited across exec and kept by make, which then never stops.
    """
    handler = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if handler is not None:  # None: a handler installed outside Python, which cannot be put back
            signal.signal(signal.SIGTERM, handler)


def _seconds_to_stop_after_sigterm(command: list[str], url: str, tmp_path: Path) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        HOME_ENV: str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }
    env.pop(CONFIG_ENV, None)
    log = (tmp_path / "server.log").open("wb")
    with _sigterm_as_a_fresh_shell_has_it():
        process = subprocess.Popen(
            [*_AS_BACKGROUND_JOB, *command],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"{command} did not serve {url}:\n{(tmp_path / 'server.log').read_text(errors='replace')[-3000:]}"
                )
            time.sleep(1)
        process.send_signal(signal.SIGTERM)  # to the command only, as `kill %1` does
        started = time.monotonic()
        try:
            process.wait(timeout=STOP_SECONDS + 20)
        except subprocess.TimeoutExpired:
            return float("inf")
        return time.monotonic() - started
    finally:
        stop_process_group(process)
        log.close()


@pytest.mark.slow
def test_make_ui_started_in_the_background_stops_on_sigterm(tmp_path):
    port = free_port()
    # -o: never reinstall the virtualenv from a test, whatever the timestamps say.
    command = ["make", "--no-print-directory", "-o", ".venv/.installed", "ui", f"ARGS=-h 127.0.0.1 -p {port}"]
    assert _seconds_to_stop_after_sigterm(command, f"http://127.0.0.1:{port}/server_info", tmp_path) < STOP_SECONDS


def test_serve_started_in_the_background_stops_on_sigterm(tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "llm_platform.cli", "serve", "--port", str(port)]
    assert _seconds_to_stop_after_sigterm(command, f"http://127.0.0.1:{port}/healthz", tmp_path) < STOP_SECONDS


@pytest.mark.slow
@pytest.mark.skipif(
    not Path(sys.executable).with_name("dg").exists(), reason="dg (dagster-dg-cli) is not installed in this environment"
)
def test_the_ui_through_dg_dev_started_in_the_background_stops_on_sigterm(tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "llm_platform.cli", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port)]
    assert _seconds_to_stop_after_sigterm(command, f"http://127.0.0.1:{port}/server_info", tmp_path) < STOP_SECONDS

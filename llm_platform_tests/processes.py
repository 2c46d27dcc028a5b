"""Stopping Dagster server processes that tests start in their own process group."""

import os
import signal
import subprocess


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop `process` and what it started (code server, run workers): its whole process group."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass

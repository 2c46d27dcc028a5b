"""A real `mlflow server` on loopback for tests: SQLite backend, proxied artifacts, always stopped."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llm_platform_tests.processes import stop_process_group

START_TIMEOUT_SECONDS = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


@contextmanager
def running_mlflow_server(folder: Path) -> Iterator[str]:
    """Start `mlflow server` on a free loopback port in its own process group; yields its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (folder / "server.log").open("wb")
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--artifacts-destination", str(folder / "artifacts")]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=folder)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (folder / "server.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"mlflow server did not become healthy at {url} within {START_TIMEOUT_SECONDS}s:\n{tail}")
            time.sleep(0.5)
        yield url
    finally:
        stop_process_group(process)
        log.close()

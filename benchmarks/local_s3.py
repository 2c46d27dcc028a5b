"""An S3-compatible server (moto in server mode) on loopback for the object-store benchmarks, always stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_TIMEOUT_SECONDS = 60
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running_s3_server(folder: Path) -> Iterator[str]:
    """Start `moto_server` on a free loopback port in its own process group
    (log in `folder/moto.log`); yields its endpoint URL.
    """
    url = f"http://127.0.0.1:{_free_port()}"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "moto.log").open("wb") as log:
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", url.rsplit(":", 1)[1]]
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=folder
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while not _answers(f"{url}/moto-api/"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moto did not answer at {url} within {START_TIMEOUT_SECONDS}s; see {folder / 'moto.log'}"
                    )
                time.sleep(0.2)
            yield url
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)

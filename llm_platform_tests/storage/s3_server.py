"""A real S3-compatible server (moto in server mode) on loopback for tests, always stopped."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llm_platform_tests.mlflow_server import free_port
from llm_platform_tests.processes import stop_process_group

START_TIMEOUT_SECONDS = 60
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


@contextmanager
def running_s3_server(folder: Path) -> Iterator[str]:
    """Start `moto_server` on a free loopback port in its own process group; yields its endpoint URL."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (folder / "moto.log").open("wb")
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=folder)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (folder / "moto.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"moto_server did not answer at {url} within {START_TIMEOUT_SECONDS}s:\n{tail}")
            time.sleep(0.2)
        yield url
    finally:
        stop_process_group(process)
        log.close()

"""A real S3-compatible server (moto in server mode) on loopback for tests, always stopped."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llm_platform_tests.processes import free_port, running_server

START_TIMEOUT_SECONDS = 60
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@contextmanager
def running_s3_server(folder: Path) -> Iterator[str]:
    """Start `moto_server` on a free loopback port in its own process group; yields its endpoint URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with running_server(
        "moto", command, folder, health_url=f"{url}/moto-api/", timeout=START_TIMEOUT_SECONDS, poll=0.2
    ):
        yield url

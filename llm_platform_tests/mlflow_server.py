"""A real `mlflow server` on loopback for tests: SQLite backend, proxied artifacts, always stopped."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llm_platform_tests.processes import free_port, running_server

START_TIMEOUT_SECONDS = 180


@contextmanager
def running_mlflow_server(folder: Path, artifacts: str | None = None) -> Iterator[str]:
    """Start `mlflow server` on a free loopback port in its own process group; yields its URL.

    Artifacts go to `artifacts` (a folder or an s3:// URL the server reaches with the
    environment's credentials and endpoint), by default a folder beside the database.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination",
        artifacts or str(folder / "artifacts"),
    ]
    with running_server("server", command, folder, health_url=f"{url}/health", timeout=START_TIMEOUT_SECONDS):
        yield url

"""Object-store fixtures for every test folder: one moto S3 server per session, a fresh bucket per test.

One server for the whole session matters: s3fs caches its filesystems by their arguments, not by
the endpoint in the environment, so a second server would leave later tests talking to the first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from llm_platform.storage_files import CACHE_ENV, ENDPOINT_ENV
from llm_platform_tests.storage_files.s3_server import CREDENTIALS, running_s3_server


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory) -> Iterator[str]:
    """The URL of a moto S3 server on loopback, for the whole session."""
    with running_s3_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch, tmp_path) -> str:
    """Credentials and endpoint in the environment (as on a cluster), a private staging cache; returns the endpoint."""
    for name, value in {**CREDENTIALS, ENDPOINT_ENV: s3_endpoint, CACHE_ENV: str(tmp_path / "cache")}.items():
        monkeypatch.setenv(name, value)
    return s3_endpoint


@pytest.fixture
def bucket(s3_env) -> str:
    """A new empty bucket on the server; returns `s3://<name>`."""
    import fsspec

    name = f"test-{uuid.uuid4().hex[:12]}"
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir(name)
    return f"s3://{name}"

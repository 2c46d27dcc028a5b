"""A fresh chunk table per test."""

from __future__ import annotations

import pytest

from llm_platform.index.table import connect, open_table
from llm_platform_tests.index.tables import DIMENSION, TABLE


@pytest.fixture
def uri(tmp_path):
    return tmp_path / "lancedb"


@pytest.fixture
def db(uri):
    return connect(str(uri))


@pytest.fixture
def table(db):
    return open_table(db, TABLE, DIMENSION)

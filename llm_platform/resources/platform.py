"""Resources that hand assets the validated config, the storage root and LanceDB."""

from __future__ import annotations

from functools import cached_property

import dagster as dg
import pyarrow as pa
from pydantic import PrivateAttr

from llm_platform.config import PlatformConfig, load_config, platform_home
from llm_platform.datasets import DatasetStore
from llm_platform.index.table import connect


class PlatformConfigResource(dg.ConfigurableResource):
    """The platform YAML (sources and settings); `path` empty means `LLM_PLATFORM_CONFIG` or the demo."""

    path: str = ""
    _config: PlatformConfig | None = PrivateAttr(default=None)

    @property
    def config(self) -> PlatformConfig:
        if self._config is None:
            self._config = load_config(self.path or None)
        return self._config


class StorageResource(dg.ConfigurableResource):
    """The storage root; `home` empty means `LLM_PLATFORM_HOME` or `.llm_platform` in the working directory."""

    home: str = ""

    @property
    def root(self) -> str:
        return (self.home or platform_home()).rstrip("/")

    @cached_property
    def datasets(self) -> DatasetStore:
        return DatasetStore(self.root)

    @property
    def lancedb_uri(self) -> str:
        return f"{self.root}/lancedb"

    @property
    def models_dir(self) -> str:
        return f"{self.root}/models"

    def read_record(self, name: str) -> dict:
        """The one-row record an unpartitioned asset wrote (its current version)."""
        table = self.datasets.read(name, None)
        if table is None or table.num_rows == 0:
            raise dg.Failure(f"{name} has not been materialized; materialize it first")
        return table.to_pylist()[0]

    def write_record(self, name: str, row: dict, run_id: str) -> str:
        """Write a one-row record for an unpartitioned asset; returns its version."""
        table = pa.Table.from_pylist([row])
        return self.datasets.write(name, None, [table], table.schema, run_id).version

    def lancedb(self):
        return connect(self.lancedb_uri)

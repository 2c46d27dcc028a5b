"""Resources that hand assets the validated config, the storage root and LanceDB."""

from __future__ import annotations

from functools import cached_property

import dagster as dg
import pyarrow as pa
from pydantic import PrivateAttr

from llm_platform.config import PlatformConfig, config_at, platform_home
from llm_platform.datasets import Dataset, DatasetStore
from llm_platform.home_layout import MODELS, lancedb_uri, under
from llm_platform.lance_database import connect
from llm_platform.shards import Shard, ShardKeyError
from llm_platform.storage_files import read_listings_fresh  # noqa: F401 — importing it turns S3 listing caches off

CONFIG_TAG = "llm_platform/config_sha256"


class ConfigChangedError(dg.Failure):
    """The config file changed between the steps of one run."""


def guard_one_config(instance: dg.DagsterInstance | None, run_id: str | None, config: PlatformConfig) -> None:
    """Fail a step whose config differs from the one its run started with.

    Each step process parses the YAML itself; a file edited mid-run would give
    the run's steps different settings. The run carries the hash of the config
    it started with (set on the platform's jobs at load time, else by its first
    step), and every step compares its own against it.
    """
    if instance is None or not run_id:
        return
    run = instance.get_run_by_id(run_id)
    if run is None:
        return
    recorded = run.tags.get(CONFIG_TAG)
    if recorded is None:
        instance.add_run_tags(run_id, {CONFIG_TAG: config.config_sha256})
    elif recorded != config.config_sha256:
        raise ConfigChangedError(
            f"{config.config_path} changed while run {run_id[:8]} was in progress: the run started with "
            f"sha256 {recorded[:12]}, this step read {config.config_sha256[:12]}. Steps of one run must share one "
            "configuration; launch the run again (reload the code location first if you changed sources).",
            allow_retries=False,
        )


class PlatformConfigResource(dg.ConfigurableResource):
    """The platform YAML (sources and settings); `path` empty means `LLM_PLATFORM_CONFIG` or the demo."""

    path: str = ""
    _config: PlatformConfig | None = PrivateAttr(default=None)
    _changed: ConfigChangedError | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._config = config_at(self.path or None)
        try:
            guard_one_config(context.instance, context.run.run_id if context.run else None, self._config)
        except ConfigChangedError as exc:
            # Raised from the step instead, where Dagster shows the message itself
            # rather than a wrapped resource-initialisation error.
            self._changed = exc

    @property
    def config(self) -> PlatformConfig:
        if self._changed is not None:
            raise self._changed
        if self._config is None:
            self._config = config_at(self.path or None)
        return self._config

    def shard(self, partition_key: str) -> Shard:
        """The source shard a document partition key names; a step of a
        partition the config no longer has fails, naming why.
        """
        try:
            return self.config.shard(partition_key)
        except ShardKeyError as exc:
            # Retrying cannot fix it: reload the code location so its partitions follow the config.
            raise dg.Failure(
                f"{exc}; reload the code location so its partitions follow the config", allow_retries=False
            ) from None


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
        return lancedb_uri(self.root)

    @property
    def models_dir(self) -> str:
        return under(self.root, MODELS)

    def read_record(self, dataset: Dataset) -> dict:
        """The one-row record an unpartitioned asset wrote (its current version)."""
        table = self.datasets.read(dataset, None)
        if table is None or table.num_rows == 0:
            raise dg.Failure(f"{dataset.name} has not been materialized; materialize it first")
        return table.to_pylist()[0]

    def write_record(self, dataset: Dataset, row: dict, run_id: str) -> str:
        """Write a one-row record for an unpartitioned asset; returns its version."""
        table = pa.Table.from_pylist([row])
        return self.datasets.write(dataset, None, [table], table.schema, run_id).version

    def lancedb(self):
        return connect(self.lancedb_uri)

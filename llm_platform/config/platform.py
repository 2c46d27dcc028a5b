"""The whole configuration file: every section, the sources and their partitions."""

from __future__ import annotations

from pydantic import Field, field_validator

from llm_platform.config.automation import AlertSettings, FreshnessSettings
from llm_platform.config.documents import ChunkingConfig, CleaningConfig, DocumentsConfig
from llm_platform.config.gates import GateSettings
from llm_platform.config.index import DriftSettings, EmbeddingConfig, IndexConfig
from llm_platform.config.model import (
    BaseModelSettings,
    EvaluationSettings,
    MlflowSettings,
    PromptSettings,
    SftConfig,
    TrainingSettings,
)
from llm_platform.config.serving import ServingSettings
from llm_platform.config.sources import SourceConfig
from llm_platform.config.strict import Strict
from llm_platform.pod_specs import DEFAULT_CPU_POD, DEFAULT_GPU_POD, PodSettings
from llm_platform.shards import Shard, ShardKeyError, parse_partition_key, shards_of


class PlatformConfig(Strict):
    sources: list[SourceConfig] = Field(min_length=1)
    cleaning: CleaningConfig = CleaningConfig()
    documents: DocumentsConfig = DocumentsConfig()
    chunking: ChunkingConfig = ChunkingConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    index: IndexConfig = IndexConfig()
    sft: SftConfig = SftConfig()
    base_model: BaseModelSettings = BaseModelSettings()
    training: TrainingSettings = TrainingSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    gates: GateSettings = GateSettings()
    prompts: PromptSettings = PromptSettings()
    mlflow: MlflowSettings = MlflowSettings()
    freshness: FreshnessSettings = FreshnessSettings()
    alerts: AlertSettings = AlertSettings()
    drift: DriftSettings = DriftSettings()
    serving: ServingSettings = ServingSettings()
    gpu_pod: PodSettings = DEFAULT_GPU_POD
    cpu_pod: PodSettings = DEFAULT_CPU_POD
    config_path: str = ""
    config_sha256: str = Field(
        "", description="Hash of the file's bytes as loaded; set by load_config, never in the YAML."
    )

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        names = [s.name for s in sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        return sources

    @property
    def source_names(self) -> list[str]:
        return [s.name for s in self.sources]

    @property
    def partition_keys(self) -> list[str]:
        """Every document partition: each source's name, or its shard keys when it has several shards."""
        return [shard.key for source in self.sources for shard in shards_of(source.name, source.shards)]

    def shard(self, key: str) -> Shard:
        """The shard a document partition key names; an error naming the config if the config has no such partition."""
        try:
            shard = parse_partition_key(key)
            configured = self.source(shard.source).shards
        except (ShardKeyError, KeyError) as exc:
            raise ShardKeyError(f"{exc.args[0]} (config {self.config_path})") from None
        if shard.count != configured:
            raise ShardKeyError(
                f"partition {key!r} splits source {shard.source!r} {shard.count} ways, but "
                f"sources[{self.source_names.index(shard.source)}].shards "
                f"in {self.config_path} is {configured}; its partitions are "
                f"{', '.join(s.key for s in shards_of(shard.source, configured))}"
            )
        return shard

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(f"no source named {name!r} in {self.config_path}; known: {', '.join(self.source_names)}")

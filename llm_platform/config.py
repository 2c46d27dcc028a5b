"""The platform's one configuration file, validated once at load.

`LLM_PLATFORM_CONFIG` names the YAML file (default: the bundled demo config) and
`LLM_PLATFORM_HOME` the folder or URL that holds every dataset, the LanceDB
database, model files and local MLflow. Paths inside the YAML are relative to the
YAML file's own folder, so a config and its corpus can move together.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llm_platform.pod_specs import DEFAULT_CPU_POD, DEFAULT_GPU_POD, PodSettings

CONFIG_ENV = "LLM_PLATFORM_CONFIG"
HOME_ENV = "LLM_PLATFORM_HOME"
DEMO_CONFIG = Path(__file__).parent / "demo" / "config.yaml"
DEFAULT_HOME = ".llm_platform"
DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class ConfigError(ValueError):
    """The configuration file is missing or malformed; the message names the file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    name: str
    location: str = Field(description="Local folder or fsspec URL (s3://, gs://, memory://).")
    glob: str = "**/*"
    jsonl_text_field: str = "text"
    jsonl_title_field: str | None = "title"
    allow_mass_deletion: bool = False
    max_removed_fraction: float = Field(0.5, ge=0.0, le=1.0)

    @field_validator("name")
    @classmethod
    def _name_is_a_partition_key(cls, name: str) -> str:
        if not _SOURCE_NAME.match(name):
            raise ValueError(
                f"source name {name!r} must be lowercase letters, digits, '-' or '_' "
                "(it becomes a Dagster partition key and a LanceDB filter value)"
            )
        return name


class CleaningConfig(_Strict):
    min_chars: int = Field(80, ge=1)
    max_bytes: int = Field(20_000_000, ge=1)
    min_quality: float = Field(0.35, ge=0.0, le=1.0)
    near_duplicate_threshold: float = Field(0.85, gt=0.0, le=1.0)
    max_duplicate_rate: float = Field(0.3, ge=0.0, le=1.0)
    max_quarantine_rate: float = Field(0.3, ge=0.0, le=1.0)


class ChunkingConfig(_Strict):
    max_tokens: int = Field(256, ge=16, le=8192)
    overlap: int = Field(32, ge=0)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingConfig:
        if self.overlap >= self.max_tokens:
            raise ValueError(f"chunking.overlap ({self.overlap}) must be below chunking.max_tokens ({self.max_tokens})")
        return self


class EmbeddingConfig(_Strict):
    model: str = DEFAULT_EMBEDDING_MODEL
    batch_size: int = Field(64, ge=1)
    device: str = "cpu"
    allow_download: bool = False


class IndexConfig(_Strict):
    table: str = "chunks"
    published_tag: str = "production"
    ann_min_rows: int = Field(5000, ge=256, description="Below this many rows a flat scan beats an IVF index.")
    retrieval_k: int = Field(5, ge=1)
    max_retrieval_regression: float = Field(0.02, ge=0.0, le=1.0)
    min_retrieval_hit_rate: float = Field(0.5, ge=0.0, le=1.0)
    eval_questions: int = Field(200, ge=1)


class PlatformConfig(_Strict):
    sources: list[SourceConfig] = Field(min_length=1)
    cleaning: CleaningConfig = CleaningConfig()
    chunking: ChunkingConfig = ChunkingConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    index: IndexConfig = IndexConfig()
    gpu_pod: PodSettings = DEFAULT_GPU_POD
    cpu_pod: PodSettings = DEFAULT_CPU_POD
    config_path: str = ""

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

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(f"no source named {name!r} in {self.config_path}; known: {', '.join(self.source_names)}")


def _resolve_location(location: str, base: Path) -> str:
    if "://" in location or Path(location).is_absolute():
        return location
    return str((base / location).resolve())


def _format_errors(path: Path, error: ValidationError) -> str:
    lines = [f"{path}: invalid configuration"]
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(top level)"
        lines.append(f"  - {field}: {item['msg']}")
    return "\n".join(lines)


def load_config(path: str | os.PathLike[str] | None = None) -> PlatformConfig:
    """Read and validate the config YAML; errors name the file and the field."""
    config_path = Path(path or os.environ.get(CONFIG_ENV) or DEMO_CONFIG).resolve()
    if not config_path.is_file():
        raise ConfigError(f"{config_path}: config file not found (set {CONFIG_ENV} to a YAML file)")
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config_path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: the top level must be a mapping with a 'sources' list")
    for source in raw.get("sources") or []:
        if isinstance(source, dict) and isinstance(source.get("location"), str):
            source["location"] = _resolve_location(source["location"], config_path.parent)
    raw["config_path"] = str(config_path)
    try:
        return PlatformConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(config_path, exc)) from None


@lru_cache(maxsize=1)
def default_config() -> PlatformConfig:
    """The config named by the environment, loaded once per process (for Definitions)."""
    return load_config()


def platform_home() -> str:
    """The storage root: `LLM_PLATFORM_HOME`, else `.llm_platform` in the working directory."""
    home = os.environ.get(HOME_ENV) or DEFAULT_HOME
    return home if "://" in home else str(Path(home).resolve())


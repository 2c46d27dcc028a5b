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
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llm_platform.pod_specs import DEFAULT_CPU_POD, DEFAULT_GPU_POD, PodSettings

CONFIG_ENV = "LLM_PLATFORM_CONFIG"
HOME_ENV = "LLM_PLATFORM_HOME"
DEMO_CONFIG = Path(__file__).parent / "demo" / "config.yaml"
DEFAULT_HOME = ".llm_platform"
DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_METRICS = ("perplexity", "rouge_l", "bleu", "retrieval_hit_rate", "retrieval_mrr")
_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_EMBEDDING_DEVICE = re.compile(r"^(cpu|auto|cuda(:[0-9]+)?)$")


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
    max_tokens: int = Field(250, ge=16, le=8192)
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
    backend: Literal["torch", "onnx"] = Field("torch", description="torch: fp32 on CPU, fp16 on a GPU. onnx: int8 ONNX Runtime on CPU, exported offline on first use.")
    onnx_cache_dir: str | None = Field(None, description="Local folder for the exported ONNX model; empty: under a local storage root, else ~/.cache/llm_platform/onnx.")
    pod: Literal["cpu", "gpu"] | PodSettings = Field("cpu", description="The embeddings step's pod: cpu_pod, gpu_pod, or its own settings.")

    @model_validator(mode="after")
    def _device_fits_backend_and_pod(self) -> EmbeddingConfig:
        if not _EMBEDDING_DEVICE.match(self.device):
            raise ValueError(f"embedding.device {self.device!r} must be 'cpu', 'cuda', 'cuda:N' or 'auto'")
        if self.backend == "onnx" and self.device.startswith("cuda"):
            raise ValueError(f"embedding.backend 'onnx' runs int8 on CPU; with embedding.device {self.device!r} use backend 'torch' (fp16 on the GPU)")
        on_gpu_pod = self.pod == "gpu" or (isinstance(self.pod, PodSettings) and self.pod.gpus > 0)
        if self.device.startswith("cuda") and not on_gpu_pod:
            raise ValueError(f"embedding.device {self.device!r} needs a GPU in the step's pod: set embedding.pod to 'gpu' (or settings with gpus >= 1)")
        if on_gpu_pod and self.device == "cpu":
            raise ValueError("embedding.pod asks for a GPU but embedding.device is 'cpu': set embedding.device to 'cuda' or 'auto'")
        return self


class IndexConfig(_Strict):
    table: str = "chunks"
    published_tag: str = "production"
    ann_min_rows: int = Field(5000, ge=256, description="Below this many rows a flat scan beats an IVF index.")
    retrieval_k: int = Field(5, ge=1)
    max_retrieval_regression: float = Field(0.02, ge=0.0, le=1.0)
    min_retrieval_hit_rate: float = Field(0.5, ge=0.0, le=1.0)
    eval_questions: int = Field(200, ge=1)


class SftConfig(_Strict):
    curated_location: str | None = Field(None, description="Folder or URL of curated *.jsonl instruction/response pairs.")
    feedback_location: str | None = Field(None, description="Folder or URL of *.jsonl feedback records (question, answer, rating).")
    min_feedback_rating: int = Field(4, ge=1, le=5)
    eval_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    max_corpus_pairs: int = Field(2000, ge=0)


class TinyModelSettings(_Strict):
    vocab_size: int = Field(2048, ge=300)
    hidden_size: int = Field(64, ge=8)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(4, ge=1)
    pretrain_steps: int = Field(200, ge=0)
    pretrain_lr: float = Field(3e-3, gt=0.0)


class BaseModelSettings(_Strict):
    name_or_path: str | None = Field(None, description="Hugging Face id or local folder; empty builds the tiny local model.")
    revision: str | None = None
    allow_download: bool = False
    tiny: TinyModelSettings = TinyModelSettings()


class TrainingSettings(_Strict):
    rank: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"], min_length=1)
    learning_rate: float = Field(2e-3, gt=0.0)
    epochs: int = Field(2, ge=1)
    batch_size: int = Field(8, ge=1)
    max_length: int = Field(256, ge=8)
    checkpoint_every_steps: int = Field(10, ge=1)
    device: str = Field("auto", pattern="^(auto|cpu|cuda)$")
    min_new_examples: int = Field(1000, ge=0, description="Skip training until this many new training pairs arrived.")
    seed: int = 0


class EvaluationSettings(_Strict):
    max_examples: int = Field(64, ge=1)
    max_new_tokens: int = Field(48, ge=1)
    retrieval_k: int = Field(5, ge=1)


class GateSettings(_Strict):
    minimums: dict[str, float] = Field(
        default_factory=lambda: {"rouge_l": 0.05, "bleu": 0.0, "perplexity": 1000.0},
        description="Bound per metric; for perplexity (lower is better) it is a maximum.",
    )
    max_regression: float = Field(0.02, ge=0.0, le=1.0)

    @field_validator("minimums")
    @classmethod
    def _known_metrics(cls, minimums: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(minimums) - set(MODEL_METRICS))
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)}; gates can use {', '.join(MODEL_METRICS)}")
        return minimums


class MlflowSettings(_Strict):
    tracking_uri: str | None = Field(None, description="Empty: a SQLite store under the storage root. Cluster: http://mlflow:5000.")
    experiment: str = "llm_platform"
    registered_model: str = "llm_platform_lora"


class FreshnessSettings(_Strict):
    index_hours: float = Field(24.0, gt=0)
    eval_hours: float = Field(24.0 * 7, gt=0)


class AlertSettings(_Strict):
    webhook_url: str | None = Field(None, description="Slack-compatible incoming webhook for run failures; prefer LLM_PLATFORM_WEBHOOK_URL.")
    ui_url: str | None = Field(None, description="Base URL of the Dagster UI, for links in messages.")


class DriftSettings(_Strict):
    centroid_threshold: float = Field(0.05, ge=0.0, le=2.0, description="Cosine distance between mean vectors.")
    token_length_ks_threshold: float = Field(0.3, ge=0.0, le=1.0, description="Kolmogorov-Smirnov statistic of token counts.")


class PlatformConfig(_Strict):
    sources: list[SourceConfig] = Field(min_length=1)
    cleaning: CleaningConfig = CleaningConfig()
    chunking: ChunkingConfig = ChunkingConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    index: IndexConfig = IndexConfig()
    sft: SftConfig = SftConfig()
    base_model: BaseModelSettings = BaseModelSettings()
    training: TrainingSettings = TrainingSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    gates: GateSettings = GateSettings()
    mlflow: MlflowSettings = MlflowSettings()
    freshness: FreshnessSettings = FreshnessSettings()
    alerts: AlertSettings = AlertSettings()
    drift: DriftSettings = DriftSettings()
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
    sft = raw.get("sft")
    if isinstance(sft, dict):
        for key in ("curated_location", "feedback_location"):
            if isinstance(sft.get(key), str):
                sft[key] = _resolve_location(sft[key], config_path.parent)
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


"""The platform's one configuration file, validated once at load.

`LLM_PLATFORM_CONFIG` names the YAML file (default: the bundled demo config) and
`LLM_PLATFORM_HOME` the folder or URL that holds every dataset, the LanceDB
database, model files and local MLflow. Paths inside the YAML are relative to the
YAML file's own folder, so a config and its corpus can move together.
"""

from __future__ import annotations

import hashlib
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llm_platform.pod_specs import DEFAULT_CPU_POD, DEFAULT_GPU_POD, MultiNodeTraining, PodSettings
from llm_platform.readers import groups_of, source_readers
from llm_platform.shards import Shard, ShardKeyError, parse_partition_key, shards_of

CONFIG_ENV = "LLM_PLATFORM_CONFIG"
HOME_ENV = "LLM_PLATFORM_HOME"
DEMO_CONFIG = Path(__file__).parent / "demo" / "config.yaml"
DEFAULT_HOME = ".llm_platform"
DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# The prompt for a base model whose tokenizer has no chat template (prompts.template).
DEFAULT_PROMPT_TEMPLATE = "### Instruction:\n{instruction}\n\n### Response:\n"
# Scores that depend on the model; index hit rate and MRR belong to retrieval_eval, not here.
MODEL_METRICS = ("perplexity", "rouge_l", "bleu", "rag_rouge_l", "rag_bleu")
# The SFT rules by name (the names of sft_dataset's checks and the keys of sft.max_violation_share);
# their limits live beside them in model/sft_rules.py.
SFT_RULE_NAMES = ("instruction_and_response_present", "instruction_length", "response_length", "quality_range", "no_exact_duplicates", "no_pii")
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
    jsonl_readers_field: str | None = Field("readers", description="A record's own reader groups (replacing the source's); empty: records cannot declare any.")
    allow_mass_deletion: bool = False
    max_removed_fraction: float = Field(0.5, ge=0.0, le=1.0)
    shards: int = Field(1, ge=1, le=1024, description="Partitions (steps, pods) the source is split into by doc_id hash; 1 keeps the source name as its key.")
    readers: list[str] = Field(default_factory=list, description="Groups that may read the source's documents; none and not public: nobody may.")
    public: bool = Field(False, description="Everyone may read the source's documents (except those that declare their own readers).")

    @field_validator("name")
    @classmethod
    def _name_is_a_partition_key(cls, name: str) -> str:
        if not _SOURCE_NAME.match(name):
            raise ValueError(
                f"source name {name!r} must be lowercase letters, digits, '-' or '_' "
                "(it becomes a Dagster partition key and a LanceDB filter value)"
            )
        return name

    @field_validator("readers")
    @classmethod
    def _readers_are_group_names(cls, readers: list[str]) -> list[str]:
        return groups_of(readers, "readers")

    @property
    def default_readers(self) -> list[str]:
        """The readers of a document that declares none ([] means nobody: access fails closed)."""
        return source_readers(self.readers, public=self.public)


class CleaningConfig(_Strict):
    min_chars: int = Field(80, ge=1)
    max_bytes: int = Field(20_000_000, ge=1)
    min_quality: float = Field(0.35, ge=0.0, le=1.0)
    near_duplicate_threshold: float = Field(0.85, gt=0.0, le=1.0)
    max_duplicate_rate: float = Field(0.3, ge=0.0, le=1.0)
    max_quarantine_rate: float = Field(0.3, ge=0.0, le=1.0)
    min_record_chars: int = Field(20, ge=1, description="min_chars for record formats (JSONL): a short FAQ answer is a whole record.")
    max_document_chars: int = Field(5_000_000, ge=1, description="A longer document is quarantined alone as too_long.")


class DocumentsConfig(_Strict):
    workers: int | None = Field(
        None, ge=1,
        description="Processes that clean and chunk a source's documents; unset: the pod's CPU limit (cgroup cpu.max), else the machine's CPUs.",
    )


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
    onnx_cache_dir: str | None = Field(None, description="Local folder for the exported ONNX graphs; empty: $LLM_PLATFORM_ONNX_CACHE, else $XDG_CACHE_HOME or ~/.cache, under llm_platform/onnx.")
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
    ann_index: str = Field("ivf_hnsw_sq", pattern="^(ivf_pq|ivf_hnsw_sq|ivf_sq|ivf_flat)$", description="LanceDB vector index type (benchmarks/index_recall.py compares them).")
    ann_partitions: int | None = Field(None, ge=1, description="IVF partitions; empty: about rows / 4096 for HNSW, sqrt(rows) otherwise.")
    ann_sub_vectors: int | None = Field(None, ge=1, description="PQ sub-vectors (ivf_pq only); empty: dimension / 8.")
    nprobes: int = Field(20, ge=1, description="IVF partitions searched per vector query.")
    refine_factor: int | None = Field(None, ge=1, description="Re-rank refine_factor * k candidates on full vectors (useful with ivf_pq).")
    ef: int = Field(250, ge=1, description="HNSW search breadth (ivf_hnsw_* only); 250 reaches recall@10 0.967 at 100,000 rows.")
    fts_language: str = "English"
    fts_stem: bool = True
    fts_remove_stop_words: bool = Field(False, description="Off by default: code keywords such as `with`, `for`, `if` are English stop words.")
    cleanup_after_hours: float = Field(24.0 * 7, gt=0, description="Versions older than this are removed, except tagged (served and roll-back-able) ones.")
    keep_published_versions: int = Field(5, ge=1, description="How many past published versions stay tagged for rollback.")
    write_attempts: int = Field(8, ge=1, description="Tries of one table commit that meets a concurrent writer's commit.")


class SftConfig(_Strict):
    curated_location: str | None = Field(None, description="Folder or URL of curated *.jsonl instruction/response pairs.")
    feedback_location: str | None = Field(None, description="Folder or URL of *.jsonl feedback records (question, answer, rating) read beside the service's own; never written.")
    approved_corrections: str | None = Field(None, description="JSONL of approved correction proposal ids (written by `llm-platform feedback approve`); default <home>/sft/approved_corrections.jsonl.")
    min_feedback_rating: int = Field(4, ge=1, le=5)
    eval_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    max_corpus_pairs: int = Field(2000, ge=0)
    grounded_corpus_pairs: bool = Field(
        False,
        description="Also train each training-side corpus pair with its own chunk as context, in the prompt the RAG evaluation and the service use "
        "(cut to evaluation.rag_context_chars), so the adapter learns to answer from retrieved chunks. Training only: eval pairs stay plain.",
    )
    max_violation_share: dict[str, float] = Field(
        default_factory=lambda: {rule: 0.05 for rule in SFT_RULE_NAMES},
        description="Per SFT rule: the share of supplied (curated + feedback) records that may break it before its blocking check fails.",
    )

    @field_validator("max_violation_share")
    @classmethod
    def _known_rules(cls, limits: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(limits) - set(SFT_RULE_NAMES))
        if unknown:
            raise ValueError(f"unknown SFT rule(s) {', '.join(unknown)}; rules are {', '.join(SFT_RULE_NAMES)}")
        if any(not 0.0 <= v <= 1.0 for v in limits.values()):
            raise ValueError("each max_violation_share must be in [0, 1]")
        return {**{rule: 0.05 for rule in SFT_RULE_NAMES}, **limits}


# 256 byte tokens and 3 special tokens, plus at least one learned merge.
TINY_MIN_VOCAB = 260


class TinyModelSettings(_Strict):
    """Shape and pre-training budget of the tiny causal LM built locally on the corpus (`base_model.tiny`)."""

    vocab_size: int = Field(2048, ge=TINY_MIN_VOCAB, description="Tokens of the byte-level BPE tokenizer trained on the corpus.")
    hidden_size: int = Field(64, ge=8, description="Width of every layer; a multiple of num_heads.")
    num_layers: int = Field(2, ge=1, description="Decoder layers.")
    num_heads: int = Field(4, ge=1, description="Attention heads per layer (as many key/value heads).")
    max_positions: int = Field(512, ge=1, description="Longest sequence the model takes; raised to training.max_length when that is longer.")
    pretrain_steps: int = Field(200, ge=0, description="Language-model pre-training steps on the corpus (0: random weights).")
    pretrain_lr: float = Field(3e-3, gt=0.0, description="Pre-training learning rate.")
    seed: int = Field(0, description="Seed of the initial weights and the pre-training batches.")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TinyModelSettings:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")
        return self


class BaseModelSettings(_Strict):
    name_or_path: str | None = Field(None, description="Hugging Face id or local folder; set this or `tiny`.")
    revision: str | None = Field(None, description="Branch, tag or commit of a hub model; the resolved commit is recorded.")
    allow_download: bool = False
    tiny: TinyModelSettings | None = Field(None, description="Build a tiny LM on the corpus instead of a configured model (demo, tests).")

    @model_validator(mode="after")
    def _one_choice(self) -> BaseModelSettings:
        if self.name_or_path and self.tiny is not None:
            raise ValueError("set either base_model.name_or_path (a real model) or base_model.tiny (the tiny local LM), not both")
        return self


class PromptSettings(_Strict):
    template: str = Field(DEFAULT_PROMPT_TEMPLATE, description="Used when the base model's tokenizer has no chat template; must contain {instruction}.")
    template_file: str | None = Field(None, description="A file holding the template (relative to the config file); overrides `template`.")
    use_chat_template: bool = Field(True, description="Prefer the base model's own chat template where its tokenizer has one.")

    @field_validator("template")
    @classmethod
    def _has_placeholder(cls, template: str) -> str:
        if "{instruction}" not in template:
            raise ValueError("prompts.template must contain {instruction}")
        return template


class TrainingSettings(_Strict):
    """One LoRA fine-tune (`training`): what `train_lora` runs, and when and where lora_adapter runs it."""

    rank: int = Field(8, ge=1, description="LoRA rank r of each adapted matrix.")
    alpha: int = Field(16, ge=1, description="LoRA scaling numerator: updates are scaled by alpha / rank.")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"], min_length=1, description="Names of the linear modules that get adapters.")
    learning_rate: float = Field(2e-3, gt=0.0, description="Peak AdamW learning rate (linear warm-up over a tenth of the steps, then linear decay).")
    epochs: int = Field(2, ge=1, description="Passes over the training pairs.")
    batch_size: int = Field(8, ge=1, description="Examples in one optimizer step, however it is split over micro-batches and processes.")
    max_length: int = Field(256, ge=8, description="Tokens per example, prompt and answer; a long prompt keeps its start and end.")
    checkpoint_every_steps: int = Field(10, ge=1, description="Steps between resumable checkpoints.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA (bf16 where supported) when visible, else CPU fp32.")
    min_new_examples: int = Field(1000, ge=0, description="Skip training until this many new training pairs arrived.")
    seed: int = Field(0, description="Seed of the LoRA initialization, dropout and the data order.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Micro-batches per process in one optimizer step of batch_size examples.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass: less memory, about a third more compute.")
    group_by_length: bool = Field(True, description="Batch examples of like lengths together, so little of each batch is padding.")
    num_processes: int = Field(1, ge=1, description="Processes in the training pod (one per GPU); above 1 the loop runs under torchrun (DDP).")
    multi_node: MultiNodeTraining | None = Field(None, description="Train on several machines as a Kubeflow PyTorchJob.")


class EvaluationSettings(_Strict):
    max_examples: int = Field(64, ge=1)
    max_new_tokens: int = Field(48, ge=1)
    retrieval_k: int = Field(5, ge=1)
    rag_k: int = Field(3, ge=1, description="Chunks from the served index put into each RAG eval prompt.")
    rag_context_chars: int = Field(1500, ge=50, description="Characters of each retrieved chunk kept in the prompt.")
    batch_size: int = Field(8, ge=1)


class GateSettings(_Strict):
    minimums: dict[str, float] = Field(
        default_factory=lambda: {"rouge_l": 0.05, "bleu": 0.01, "perplexity": 1000.0},
        description="Bound per metric; for perplexity (lower is better) it is a maximum.",
    )
    max_regression: float = Field(0.02, ge=0.0, le=1.0)
    beat_base: dict[str, float] = Field(
        default_factory=lambda: {"perplexity": 0.0},
        description="Margin by which the candidate must beat the base model per metric (relative for perplexity, absolute otherwise).",
    )

    @field_validator("minimums", "beat_base")
    @classmethod
    def _known_metrics(cls, minimums: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(minimums) - set(MODEL_METRICS))
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)}; gates can use {', '.join(MODEL_METRICS)}")
        return minimums


class MlflowSettings(_Strict):
    tracking_uri: str | None = Field(None, description="Empty: $MLFLOW_TRACKING_URI, else a SQLite store under the storage root. Cluster: http://mlflow:5000.")
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


class ServingSettings(_Strict):
    host: str = Field("127.0.0.1", description="Bind address of `llm-platform serve`; 0.0.0.0 only inside a container.")
    port: int = Field(8000, ge=1, le=65535)
    api_key_env: str = Field("LLM_PLATFORM_API_KEY", description="Environment variable holding the API key; unset or empty (and no api_keys_env): no key required.")
    api_key_groups: list[str] = Field(default_factory=list, description="Reader groups of a caller with the api_key_env key; none: public rows only.")
    api_keys_env: str = Field("LLM_PLATFORM_API_KEYS", description='Environment variable holding several keys and their groups as JSON: {"<key>": ["hr"], ...}.')
    groups_header: str = Field("X-Auth-Request-Groups", description="Header an auth proxy sets to the caller's comma-separated groups; read only when trust_groups_header is on.")
    trust_groups_header: bool = Field(False, description="Take the caller's groups from groups_header (replacing a key's groups); only behind a proxy that sets it.")
    cache_backend: str = Field("memory", pattern="^(memory|redis)$")
    redis_url: str | None = Field(None, description="redis://host:6379/0 when cache_backend is redis; prefer LLM_PLATFORM_REDIS_URL.")
    cache_max_entries: int = Field(10_000, ge=1)
    cache_ttl_seconds: int = Field(86_400, ge=1)
    poll_seconds: float = Field(10.0, gt=0, description="How often the service checks the production alias and index tag.")
    max_body_bytes: int = Field(65_536, ge=1024)
    max_question_chars: int = Field(2000, ge=1)
    max_tokens: int = Field(256, ge=1, description="Upper bound on a request's max_tokens.")
    default_max_tokens: int = Field(64, ge=1)
    max_context_chars: int = Field(1200, ge=0, description="Retrieved text put into the prompt, at most.")
    max_concurrent_generations: int = Field(1, ge=1)
    feedback_per_minute: int = Field(30, ge=1, description="POST /v1/feedback requests one caller (API key, or client address without one) may make per minute; more get 429.")
    request_timeout_seconds: float = Field(60.0, gt=0, description="A chat request's deadline: waiting for a generation slot plus generating; past it the token loop stops and the request gets 504.")
    stuck_grace_seconds: float = Field(30.0, ge=0, description="A generation slot held longer than request_timeout_seconds plus this makes /readyz answer 503.")
    segment_max_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="A replica starts a new local feedback or query-log segment past this size.")
    segment_max_seconds: float = Field(3600.0, gt=0, description="A replica starts a new local segment once its current one is this old; object-store homes write one object per record instead.")
    query_drift_threshold: float = Field(0.5, ge=0.0, le=2.0, description="Cosine distance between the questions' and the corpus's mean vectors.")
    query_drift_window: int = Field(500, ge=1, description="The most recent questions the drift check embeds.")
    tracing: bool = Field(False, description="Export OpenTelemetry traces of requests (cache lookup, retrieval, prompt, generation) to where "
                                             "the standard OTEL_* variables say (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_EXPORTER); off: a no-op tracer.")

    @field_validator("api_key_groups")
    @classmethod
    def _key_groups_are_group_names(cls, groups: list[str]) -> list[str]:
        return groups_of(groups, "api_key_groups")


class PlatformConfig(_Strict):
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
    config_sha256: str = Field("", description="Hash of the file's bytes as loaded; set by load_config, never in the YAML.")

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
                f"partition {key!r} splits source {shard.source!r} {shard.count} ways, but sources[{self.source_names.index(shard.source)}].shards "
                f"in {self.config_path} is {configured}; its partitions are {', '.join(s.key for s in shards_of(shard.source, configured))}"
            )
        return shard

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


def _missing_source_folders(config: PlatformConfig, path: Path) -> str | None:
    """Each local source folder that does not exist, named by field (URLs are not checked: listing a bucket costs a request)."""
    lines = [f"  - sources[{i}].location: {source.location} does not exist (source {source.name!r}; a relative location is read from "
             f"{path.parent}): create the folder or point the source at your documents"
             for i, source in enumerate(config.sources) if "://" not in source.location and not Path(source.location).is_dir()]
    return "\n".join([f"{path}: invalid configuration", *lines]) if lines else None


def load_config(path: str | os.PathLike[str] | None = None, *, check_folders: bool = True) -> PlatformConfig:
    """Read and validate the config YAML; errors name the file and the field.

    `check_folders=False` skips checking that local source folders exist, for a config
    read away from the machine that holds its data (a cluster's, checked on a workstation).
    """
    config_path = Path(path or os.environ.get(CONFIG_ENV) or DEMO_CONFIG).resolve()
    if not config_path.is_file():
        raise ConfigError(f"{config_path}: config file not found (set {CONFIG_ENV} to a YAML file)")
    data = config_path.read_bytes()
    try:
        raw = yaml.safe_load(data.decode("utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{config_path}: not UTF-8 text: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config_path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: the top level must be a mapping with a 'sources' list")
    for source in raw.get("sources") or []:
        if isinstance(source, dict) and isinstance(source.get("location"), str):
            source["location"] = _resolve_location(source["location"], config_path.parent)
    sft = raw.get("sft")
    if isinstance(sft, dict):
        for key in ("curated_location", "feedback_location", "approved_corrections"):
            if isinstance(sft.get(key), str):
                sft[key] = _resolve_location(sft[key], config_path.parent)
    prompts = raw.get("prompts")
    if isinstance(prompts, dict) and isinstance(prompts.get("template_file"), str):
        prompts["template_file"] = _resolve_location(prompts["template_file"], config_path.parent)
    raw["config_path"] = str(config_path)
    raw["config_sha256"] = hashlib.sha256(data).hexdigest()
    try:
        config = PlatformConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(config_path, exc)) from None
    missing = _missing_source_folders(config, config_path) if check_folders else None
    if missing:
        raise ConfigError(missing)
    return config


@lru_cache(maxsize=1)
def default_config() -> PlatformConfig:
    """The config named by the environment, loaded once per process (for Definitions)."""
    return config_at(None)


_loaded: dict[Path, PlatformConfig] = {}


def config_at(path: str | os.PathLike[str] | None) -> PlatformConfig:
    """The config at `path` (None: the environment's), parsed once per content.

    The Definitions and every step of a process share one object; a file whose
    bytes changed since is parsed again, and `config_sha256` tells the two apart.
    """
    config_path = Path(path or os.environ.get(CONFIG_ENV) or DEMO_CONFIG).resolve()
    cached = _loaded.get(config_path)
    if cached is not None and config_path.is_file() and hashlib.sha256(config_path.read_bytes()).hexdigest() == cached.config_sha256:
        return cached
    # Not the folder check: a running code location or step reports a missing folder per source (raw_documents
    # names it), where one absent landing folder must not stop every other job. People's entry points check.
    _loaded[config_path] = config = load_config(config_path, check_folders=False)
    return config


def platform_home() -> str:
    """The storage root: `LLM_PLATFORM_HOME`, else `.llm_platform` in the working directory."""
    home = os.environ.get(HOME_ENV) or DEFAULT_HOME
    return home if "://" in home else str(Path(home).resolve())


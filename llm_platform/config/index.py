"""The embeddings and the LanceDB index (`embedding`, `index`) and the embedding drift check (`drift`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from llm_platform.config.strict import Strict
from llm_platform.pod_specs import PodSettings

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_EMBEDDING_DEVICE = re.compile(r"^(cpu|auto|cuda(:[0-9]+)?)$")


class EmbeddingConfig(Strict):
    model: str = DEFAULT_EMBEDDING_MODEL
    batch_size: int = Field(64, ge=1)
    device: str = "cpu"
    allow_download: bool = False
    backend: Literal["torch", "onnx"] = Field(
        "torch",
        description="torch: fp32 on CPU, fp16 on a GPU. onnx: int8 ONNX Runtime on CPU, exported offline on first use.",
    )
    onnx_cache_dir: str | None = Field(
        None,
        description="Local folder for the exported ONNX graphs; empty: $LLM_PLATFORM_ONNX_CACHE, "
        "else $XDG_CACHE_HOME or ~/.cache, under llm_platform/onnx.",
    )
    pod: Literal["cpu", "gpu"] | PodSettings = Field(
        "cpu", description="The embeddings step's pod: cpu_pod, gpu_pod, or its own settings."
    )

    @model_validator(mode="after")
    def _device_fits_backend_and_pod(self) -> EmbeddingConfig:
        if not _EMBEDDING_DEVICE.match(self.device):
            raise ValueError(f"embedding.device {self.device!r} must be 'cpu', 'cuda', 'cuda:N' or 'auto'")
        if self.backend == "onnx" and self.device.startswith("cuda"):
            raise ValueError(
                "embedding.backend 'onnx' runs int8 on CPU; with embedding.device "
                f"{self.device!r} use backend 'torch' (fp16 on the GPU)"
            )
        on_gpu_pod = self.pod == "gpu" or (isinstance(self.pod, PodSettings) and self.pod.gpus > 0)
        if self.device.startswith("cuda") and not on_gpu_pod:
            raise ValueError(
                f"embedding.device {self.device!r} needs a GPU in the step's pod: set "
                "embedding.pod to 'gpu' (or settings with gpus >= 1)"
            )
        if on_gpu_pod and self.device == "cpu":
            raise ValueError(
                "embedding.pod asks for a GPU but embedding.device is 'cpu': set embedding.device to 'cuda' or 'auto'"
            )
        return self


class IndexConfig(Strict):
    table: str = "chunks"
    published_tag: str = "production"
    ann_min_rows: int = Field(5000, ge=256, description="Below this many rows a flat scan beats an IVF index.")
    retrieval_k: int = Field(5, ge=1)
    max_retrieval_regression: float = Field(0.02, ge=0.0, le=1.0)
    min_retrieval_hit_rate: float = Field(0.5, ge=0.0, le=1.0)
    eval_questions: int = Field(200, ge=1)
    ann_index: str = Field(
        "ivf_hnsw_sq",
        pattern="^(ivf_pq|ivf_hnsw_sq|ivf_sq|ivf_flat)$",
        description="LanceDB vector index type (benchmarks/index_recall.py compares them).",
    )
    ann_partitions: int | None = Field(
        None, ge=1, description="IVF partitions; empty: about rows / 4096 for HNSW, sqrt(rows) otherwise."
    )
    ann_sub_vectors: int | None = Field(None, ge=1, description="PQ sub-vectors (ivf_pq only); empty: dimension / 8.")
    nprobes: int = Field(20, ge=1, description="IVF partitions searched per vector query.")
    refine_factor: int | None = Field(
        None, ge=1, description="Re-rank refine_factor * k candidates on full vectors (useful with ivf_pq)."
    )
    ef: int = Field(
        250, ge=1, description="HNSW search breadth (ivf_hnsw_* only); 250 reaches recall@10 0.967 at 100,000 rows."
    )
    fts_language: str = "English"
    fts_stem: bool = True
    fts_remove_stop_words: bool = Field(
        False, description="Off by default: code keywords such as `with`, `for`, `if` are English stop words."
    )
    cleanup_after_hours: float = Field(
        24.0 * 7,
        gt=0,
        description="Versions older than this are removed, except tagged (served and roll-back-able) ones.",
    )
    keep_published_versions: int = Field(
        5, ge=1, description="How many past published versions stay tagged for rollback."
    )
    write_attempts: int = Field(
        8, ge=1, description="Tries of one table commit that meets a concurrent writer's commit."
    )


class DriftSettings(Strict):
    centroid_threshold: float = Field(0.05, ge=0.0, le=2.0, description="Cosine distance between mean vectors.")
    token_length_ks_threshold: float = Field(
        0.3, ge=0.0, le=1.0, description="Kolmogorov-Smirnov statistic of token counts."
    )

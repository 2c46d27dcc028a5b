"""The document half before the index: cleaning (`cleaning`), its workers (`documents`) and chunking (`chunking`)."""

from __future__ import annotations

from pydantic import Field, model_validator

from llm_platform.config.strict import Strict


class CleaningConfig(Strict):
    min_chars: int = Field(80, ge=1)
    max_bytes: int = Field(20_000_000, ge=1)
    min_quality: float = Field(0.35, ge=0.0, le=1.0)
    near_duplicate_threshold: float = Field(0.85, gt=0.0, le=1.0)
    max_duplicate_rate: float = Field(0.3, ge=0.0, le=1.0)
    max_quarantine_rate: float = Field(0.3, ge=0.0, le=1.0)
    min_record_chars: int = Field(
        20, ge=1, description="min_chars for record formats (JSONL): a short FAQ answer is a whole record."
    )
    max_document_chars: int = Field(5_000_000, ge=1, description="A longer document is quarantined alone as too_long.")


class DocumentsConfig(Strict):
    workers: int | None = Field(
        None,
        ge=1,
        description="Processes that clean and chunk a source's documents; unset: the pod's CPU "
        "limit (cgroup cpu.max), else the machine's CPUs.",
    )


class ChunkingConfig(Strict):
    max_tokens: int = Field(250, ge=16, le=8192)
    overlap: int = Field(32, ge=0)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingConfig:
        if self.overlap >= self.max_tokens:
            raise ValueError(f"chunking.overlap ({self.overlap}) must be below chunking.max_tokens ({self.max_tokens})")
        return self

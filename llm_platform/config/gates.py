"""The promotion gates of a candidate model (`gates`): bounds, regression and the margin over the base model."""

from __future__ import annotations

from pydantic import Field, field_validator

from llm_platform.config.strict import Strict

# Scores that depend on the model; index hit rate and MRR belong to retrieval_eval, not here.
MODEL_METRICS = ("perplexity", "rouge_l", "bleu", "rag_rouge_l", "rag_bleu")


class GateSettings(Strict):
    minimums: dict[str, float] = Field(
        default_factory=lambda: {"rouge_l": 0.05, "bleu": 0.01, "perplexity": 1000.0},
        description="Bound per metric; for perplexity (lower is better) it is a maximum.",
    )
    max_regression: float = Field(0.02, ge=0.0, le=1.0)
    beat_base: dict[str, float] = Field(
        default_factory=lambda: {"perplexity": 0.0},
        description="Margin by which the candidate must beat the base model per metric "
        "(relative for perplexity, absolute otherwise).",
    )

    @field_validator("minimums", "beat_base")
    @classmethod
    def _known_metrics(cls, minimums: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(minimums) - set(MODEL_METRICS))
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)}; gates can use {', '.join(MODEL_METRICS)}")
        return minimums

"""The model half: SFT data (`sft`), the base model (`base_model`), prompts,
LoRA training, evaluation and the MLflow registry.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from llm_platform.config.strict import Strict
from llm_platform.pod_specs import MultiNodeTraining

# The prompt for a base model whose tokenizer has no chat template (prompts.template).
DEFAULT_PROMPT_TEMPLATE = "### Instruction:\n{instruction}\n\n### Response:\n"


# The SFT rules by name (the names of sft_dataset's checks and the keys of sft.max_violation_share);
# their limits live beside them in model/sft_rules.py.
SFT_RULE_NAMES = (
    "instruction_and_response_present",
    "instruction_length",
    "response_length",
    "quality_range",
    "no_exact_duplicates",
    "no_pii",
)


class SftConfig(Strict):
    curated_location: str | None = Field(
        None, description="Folder or URL of curated *.jsonl instruction/response pairs."
    )
    feedback_location: str | None = Field(
        None,
        description="Folder or URL of *.jsonl feedback records (question, answer, rating) "
        "read beside the service's own; never written.",
    )
    approved_corrections: str | None = Field(
        None,
        description="JSONL of approved correction proposal ids (written by `llm-platform feedback "
        "approve`); default <home>/sft/approved_corrections.jsonl.",
    )
    min_feedback_rating: int = Field(4, ge=1, le=5)
    eval_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    max_corpus_pairs: int = Field(2000, ge=0)
    grounded_corpus_pairs: bool = Field(
        False,
        description="Also train each training-side corpus pair with its own chunk as context, in "
        "the prompt the RAG evaluation and the service use "
        "(cut to evaluation.rag_context_chars), so the adapter learns to answer from "
        "retrieved chunks. Training only: eval pairs stay plain.",
    )
    max_violation_share: dict[str, float] = Field(
        default_factory=lambda: {rule: 0.05 for rule in SFT_RULE_NAMES},
        description="Per SFT rule: the share of supplied (curated + feedback) records that "
        "may break it before its blocking check fails.",
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


class TinyModelSettings(Strict):
    """Shape and pre-training budget of the tiny causal LM built locally on the corpus (`base_model.tiny`)."""

    vocab_size: int = Field(
        2048, ge=TINY_MIN_VOCAB, description="Tokens of the byte-level BPE tokenizer trained on the corpus."
    )
    hidden_size: int = Field(64, ge=8, description="Width of every layer; a multiple of num_heads.")
    num_layers: int = Field(2, ge=1, description="Decoder layers.")
    num_heads: int = Field(4, ge=1, description="Attention heads per layer (as many key/value heads).")
    max_positions: int = Field(
        512, ge=1, description="Longest sequence the model takes; raised to training.max_length when that is longer."
    )
    pretrain_steps: int = Field(
        200, ge=0, description="Language-model pre-training steps on the corpus (0: random weights)."
    )
    pretrain_lr: float = Field(3e-3, gt=0.0, description="Pre-training learning rate.")
    seed: int = Field(0, description="Seed of the initial weights and the pre-training batches.")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TinyModelSettings:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")
        return self


class BaseModelSettings(Strict):
    name_or_path: str | None = Field(None, description="Hugging Face id or local folder; set this or `tiny`.")
    revision: str | None = Field(
        None, description="Branch, tag or commit of a hub model; the resolved commit is recorded."
    )
    allow_download: bool = False
    tiny: TinyModelSettings | None = Field(
        None, description="Build a tiny LM on the corpus instead of a configured model (demo, tests)."
    )

    @model_validator(mode="after")
    def _one_choice(self) -> BaseModelSettings:
        if self.name_or_path and self.tiny is not None:
            raise ValueError(
                "set either base_model.name_or_path (a real model) or base_model.tiny (the tiny local LM), not both"
            )
        return self


class PromptSettings(Strict):
    template: str = Field(
        DEFAULT_PROMPT_TEMPLATE,
        description="Used when the base model's tokenizer has no chat template; must contain {instruction}.",
    )
    template_file: str | None = Field(
        None, description="A file holding the template (relative to the config file); overrides `template`."
    )
    use_chat_template: bool = Field(
        True, description="Prefer the base model's own chat template where its tokenizer has one."
    )

    @field_validator("template")
    @classmethod
    def _has_placeholder(cls, template: str) -> str:
        if "{instruction}" not in template:
            raise ValueError("prompts.template must contain {instruction}")
        return template


class TrainingSettings(Strict):
    """One LoRA fine-tune (`training`): what `train_lora` runs, and when and where lora_adapter runs it."""

    rank: int = Field(8, ge=1, description="LoRA rank r of each adapted matrix.")
    alpha: int = Field(16, ge=1, description="LoRA scaling numerator: updates are scaled by alpha / rank.")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "v_proj"],
        min_length=1,
        description="Names of the linear modules that get adapters.",
    )
    learning_rate: float = Field(
        2e-3,
        gt=0.0,
        description="Peak AdamW learning rate (linear warm-up over a tenth of the steps, then linear decay).",
    )
    epochs: int = Field(2, ge=1, description="Passes over the training pairs.")
    batch_size: int = Field(
        8, ge=1, description="Examples in one optimizer step, however it is split over micro-batches and processes."
    )
    max_length: int = Field(
        256, ge=8, description="Tokens per example, prompt and answer; a long prompt keeps its start and end."
    )
    checkpoint_every_steps: int = Field(10, ge=1, description="Steps between resumable checkpoints.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: CUDA (bf16 where supported) when visible, else CPU fp32."
    )
    min_new_examples: int = Field(1000, ge=0, description="Skip training until this many new training pairs arrived.")
    seed: int = Field(0, description="Seed of the LoRA initialization, dropout and the data order.")
    gradient_accumulation_steps: int = Field(
        1, ge=1, description="Micro-batches per process in one optimizer step of batch_size examples."
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass: less memory, about a third more compute."
    )
    group_by_length: bool = Field(
        True, description="Batch examples of like lengths together, so little of each batch is padding."
    )
    num_processes: int = Field(
        1, ge=1, description="Processes in the training pod (one per GPU); above 1 the loop runs under torchrun (DDP)."
    )
    multi_node: MultiNodeTraining | None = Field(
        None, description="Train on several machines as a Kubeflow PyTorchJob."
    )


class EvaluationSettings(Strict):
    max_examples: int = Field(64, ge=1)
    max_new_tokens: int = Field(48, ge=1)
    retrieval_k: int = Field(5, ge=1)
    rag_k: int = Field(3, ge=1, description="Chunks from the served index put into each RAG eval prompt.")
    rag_context_chars: int = Field(1500, ge=50, description="Characters of each retrieved chunk kept in the prompt.")
    batch_size: int = Field(8, ge=1)


class MlflowSettings(Strict):
    tracking_uri: str | None = Field(
        None,
        description="Empty: $MLFLOW_TRACKING_URI, else a SQLite store under the storage root. Cluster: http://mlflow:5000.",
    )
    experiment: str = "llm_platform"
    registered_model: str = "llm_platform_lora"

"""What one LoRA fine-tune is: its settings, its request, its result, and the fingerprint that names its checkpoints.

Plain data with no torch import, shared by the entry point (training.py), the
loop that runs in each process (loop.py) and the launchers (distributed.py,
pytorch_job.py), which all import it from here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass

from llm_platform.identity import stable_hash
from llm_platform.model.prompts import DEFAULT_PROMPT, PromptTemplate

CHECKPOINTS_DIR, ADAPTER_DIR = "checkpoints", "adapter"
DEVICES = ("auto", "cpu", "cuda")
# Fields that may change between a preempted run and its resumption: they change neither
# the data order nor the math (checkpointing recomputes activations with the same RNG).
_NOT_FINGERPRINTED = ("checkpoint_every_steps", "device", "gradient_checkpointing")


class TrainingInterrupted(RuntimeError):
    """Raised by `train_lora` right after step `TrainingRequest.stop_after_steps`, as a preemption would."""

    def __init__(self, step: int, checkpoint_dir: str | None):
        super().__init__(f"training stopped after step {step} (stop_after_steps); latest checkpoint: {checkpoint_dir}")
        self.step, self.checkpoint_dir = step, checkpoint_dir


@dataclass
class LoraTrainingConfig:
    """Hyper-parameters of one LoRA fine-tune; validated on construction."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    learning_rate: float = 2e-3
    epochs: int = 2
    batch_size: int = 8
    max_length: int = 256
    seed: int = 0
    checkpoint_every_steps: int = 10
    device: str = "auto"
    # batch_size is the global batch of one optimizer step, however it is split:
    # into this many micro-batches per process, and over num_processes processes (torchrun, DDP).
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = False
    group_by_length: bool = True
    num_processes: int = 1

    def __post_init__(self) -> None:
        for field in ("rank", "alpha", "epochs", "batch_size", "checkpoint_every_steps",
                      "gradient_accumulation_steps", "num_processes"):
            if getattr(self, field) < 1:
                raise ValueError(f"LoraTrainingConfig.{field} must be >= 1, got {getattr(self, field)}")
        if self.max_length < 8:
            raise ValueError(f"LoraTrainingConfig.max_length must be >= 8, got {self.max_length}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoraTrainingConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.learning_rate <= 0:
            raise ValueError(f"LoraTrainingConfig.learning_rate must be > 0, got {self.learning_rate}")
        self.target_modules = tuple(self.target_modules)
        if not self.target_modules or not all(isinstance(m, str) and m for m in self.target_modules):
            raise ValueError(f"LoraTrainingConfig.target_modules must name modules, e.g. ('q_proj', 'v_proj'); got {self.target_modules!r}")
        if self.device not in DEVICES:
            raise ValueError(f"LoraTrainingConfig.device must be one of {DEVICES}, got {self.device!r}")


@dataclass(frozen=True)
class TrainingRequest:
    """One LoRA fine-tune: which base model, which (instruction, response) pairs, which settings, which folder.

    Plain data, so torchrun's processes and a PyTorchJob's pods read the same run from
    a job file (`to_json`, `from_json`); the step callback is passed beside it.
    """

    base_model_dir: str
    examples: Sequence[tuple[str, str]]
    config: LoraTrainingConfig
    output_dir: str
    prompt_template: PromptTemplate = DEFAULT_PROMPT
    base_revision: str | None = None
    # Stop right after this step, saving nothing extra, as if the process were killed there.
    stop_after_steps: int | None = None

    def __post_init__(self) -> None:
        # A job file gives the pairs back as lists; a tuple keeps the frozen request frozen.
        object.__setattr__(self, "examples", tuple((instruction, response) for instruction, response in self.examples))
        if not self.examples:
            raise ValueError("TrainingRequest.examples is empty: train_lora needs at least one (instruction, response) example")
        if self.stop_after_steps is not None and self.stop_after_steps < 1:
            raise ValueError(f"TrainingRequest.stop_after_steps must be >= 1 or None, got {self.stop_after_steps}")

    def to_json(self) -> str:
        return json.dumps({
            "base_model_dir": self.base_model_dir, "examples": [list(pair) for pair in self.examples], "output_dir": self.output_dir,
            "config": dataclasses.asdict(self.config), "stop_after_steps": self.stop_after_steps,
            "prompt_template": self.prompt_template.to_json(), "base_revision": self.base_revision,
        })

    @classmethod
    def from_json(cls, text: str) -> TrainingRequest:
        job = json.loads(text)
        return cls(base_model_dir=job["base_model_dir"], examples=job["examples"], config=LoraTrainingConfig(**job["config"]),
                   output_dir=job["output_dir"], prompt_template=PromptTemplate.from_json(job["prompt_template"]),
                   base_revision=job["base_revision"], stop_after_steps=job["stop_after_steps"])


@dataclass(frozen=True)
class TrainResult:
    """Outcome of `train_lora`; `losses` covers restored history plus this run."""

    status: str  # "trained" | "resumed"
    steps: int
    resumed_from_step: int
    losses: list[float]
    tokens_seen: int
    seconds: float
    tokens_per_second: float  # this run's tokens over this run's seconds
    device: str
    dtype: str
    adapter_dir: str
    padding_share: float = 0.0  # padding positions over all positions fed to the model in this run
    num_processes: int = 1
    attention: str = ""  # the attention kernel the model ran with ("sdpa", "eager")


def fingerprint(request: TrainingRequest) -> str:
    """What makes a checkpoint resumable by `request`: its settings (bar those a resumption may change), data, base model and prompt."""
    fields = {k: v for k, v in dataclasses.asdict(request.config).items() if k not in _NOT_FINGERPRINTED}
    data = stable_hash(*(part for pair in request.examples for part in pair))
    return stable_hash(json.dumps(fields, sort_keys=True), data, request.base_model_dir, request.prompt_template.version)

"""What one LoRA fine-tune is: its request (with `config.TrainingSettings`), its result, and the fingerprint of its
checkpoints.

Plain data with no torch import, shared by the entry point (training.py), the
loop that runs in each process (loop.py) and the launchers (distributed.py,
pytorch_job.py), which all import it from here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from llm_platform.config import TrainingSettings
from llm_platform.identity import stable_hash
from llm_platform.model.prompts import DEFAULT_PROMPT, PromptTemplate

CHECKPOINTS_DIR, ADAPTER_DIR = "checkpoints", "adapter"
# When and where lora_adapter trains, not what the training computes.
SCHEDULING_FIELDS = frozenset({"min_new_examples", "multi_node"})
# Fields that may change between a preempted run and its resumption: they change neither
# the data order nor the math (checkpointing recomputes activations with the same RNG).
_NOT_FINGERPRINTED = SCHEDULING_FIELDS | {"checkpoint_every_steps", "device", "gradient_checkpointing"}


class TrainingInterrupted(RuntimeError):
    """Raised by `train_lora` right after step `TrainingRequest.stop_after_steps`, as a preemption would."""

    def __init__(self, step: int, checkpoint_dir: str | None):
        super().__init__(f"training stopped after step {step} (stop_after_steps); latest checkpoint: {checkpoint_dir}")
        self.step, self.checkpoint_dir = step, checkpoint_dir


@dataclass(frozen=True)
class TrainingRequest:
    """One LoRA fine-tune: which base model, which (instruction, response) pairs, which settings, which folder.

    Plain data, so torchrun's processes and a PyTorchJob's pods read the same run from
    a job file (`to_json`, `from_json`); the step callback is passed beside it.
    """

    base_model_dir: str
    examples: Sequence[tuple[str, str]]
    config: TrainingSettings
    output_dir: str
    prompt_template: PromptTemplate = DEFAULT_PROMPT
    base_revision: str | None = None
    # Stop right after this step, saving nothing extra, as if the process were killed there.
    stop_after_steps: int | None = None

    def __post_init__(self) -> None:
        # A job file gives the pairs back as lists; a tuple keeps the frozen request frozen.
        object.__setattr__(self, "examples", tuple((instruction, response) for instruction, response in self.examples))
        if not self.examples:
            raise ValueError(
                "TrainingRequest.examples is empty: train_lora needs at least one (instruction, response) example"
            )
        if self.stop_after_steps is not None and self.stop_after_steps < 1:
            raise ValueError(f"TrainingRequest.stop_after_steps must be >= 1 or None, got {self.stop_after_steps}")

    def to_json(self) -> str:
        return json.dumps(
            {
                "base_model_dir": self.base_model_dir,
                "examples": [list(pair) for pair in self.examples],
                "output_dir": self.output_dir,
                "config": self.config.model_dump(mode="json"),
                "stop_after_steps": self.stop_after_steps,
                "prompt_template": self.prompt_template.to_json(),
                "base_revision": self.base_revision,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> TrainingRequest:
        job = json.loads(text)
        return cls(
            base_model_dir=job["base_model_dir"],
            examples=job["examples"],
            config=TrainingSettings.model_validate(job["config"]),
            output_dir=job["output_dir"],
            prompt_template=PromptTemplate.from_json(job["prompt_template"]),
            base_revision=job["base_revision"],
            stop_after_steps=job["stop_after_steps"],
        )


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


def training_record(settings: TrainingSettings) -> dict:
    """The settings that shape the adapter and its run (all but the scheduling ones), as recorded and hashed."""
    return settings.model_dump(exclude=set(SCHEDULING_FIELDS))


def fingerprint(request: TrainingRequest) -> str:
    """What makes a checkpoint resumable by `request`: its settings (bar those a
    resumption may change), data, base model and prompt.
    """
    fields = request.config.model_dump(exclude=set(_NOT_FINGERPRINTED))
    data = stable_hash(*(part for pair in request.examples for part in pair))
    return stable_hash(
        json.dumps(fields, sort_keys=True), data, request.base_model_dir, request.prompt_template.version
    )

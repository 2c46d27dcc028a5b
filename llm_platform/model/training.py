"""LoRA fine-tuning of a causal LM on instruction/response pairs, resumable.

A plain torch loop rather than `transformers.Trainer`: resuming must reproduce
an uninterrupted run step for step (same batches, same dropout), and with our
own loop the data order is a pure function of (seed, epoch) and the checkpoint
holds everything else, with no Trainer/Accelerate state to keep in sync.
The loop is in loop.py (batches in batching.py, checkpoints in checkpoints.py,
several processes in distributed.py, several machines in pytorch_job.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llm_platform.identity import stable_hash
from llm_platform.model import prompts
from llm_platform.model.base_model import load_base_model
from llm_platform.model.batching import collate  # noqa: F401  (evaluation pads batches the way training does)
from llm_platform.model.prompts import PromptTemplate

DEFAULT_PROMPT = prompts.make_template(prompts.CONFIGURED, prompts.DEFAULT_TEMPLATE)
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


def format_prompt(instruction: str, template: PromptTemplate = DEFAULT_PROMPT, *, tokenizer=None) -> str:
    """Return the prompt for `instruction` through the one prompt function (llm_platform.model.prompts)."""
    return prompts.format_prompt(template, instruction, tokenizer=tokenizer)


def encode_prompt(tokenizer, instruction: str, template: PromptTemplate = DEFAULT_PROMPT) -> list[int]:
    """Return the token ids of the prompt for `instruction`, with BOS when the template needs it."""
    return prompts.encode_prompt(template, tokenizer, instruction)


def encode_example(
    tokenizer, instruction: str, response: str, *, max_length: int, template: PromptTemplate = DEFAULT_PROMPT
) -> tuple[list[int], list[int]]:
    """Return (input_ids, labels) with prompt positions masked to -100 in labels."""
    prompt = encode_prompt(tokenizer, instruction, template)
    budget = max_length - max_length // 4
    if len(prompt) > budget:
        # Keep the first token (BOS) and the end (the response marker); a quarter stays for the answer.
        prompt = prompt[:1] + prompt[-(budget - 1):]
    answer = tokenizer(response.strip(), add_special_tokens=False)["input_ids"]
    answer = ([*answer, tokenizer.eos_token_id])[: max_length - len(prompt)]
    return prompt + answer, [-100] * len(prompt) + answer


def pad_id_of(tokenizer) -> int:
    """Return the padding id, falling back to EOS for models that define no pad token."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def _fingerprint(request: TrainingRequest) -> str:
    fields = {k: v for k, v in dataclasses.asdict(request.config).items() if k not in _NOT_FINGERPRINTED}
    data = stable_hash(*(part for pair in request.examples for part in pair))
    return stable_hash(json.dumps(fields, sort_keys=True), data, request.base_model_dir, request.prompt_template.version)


def train_lora(request: TrainingRequest, on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Fine-tune the LoRA adapter `request` describes; save it to its output_dir/adapter.

    Resumes from the newest checkpoint in output_dir/checkpoints when there is one.
    `on_step(step, loss)` sees every optimizer step, however many processes train.
    With `request.stop_after_steps=n` it raises TrainingInterrupted right after step n.
    """
    # Both take the same arguments: one process trains in this one, several are launched.
    if request.config.num_processes > 1 and "TORCHELASTIC_RUN_ID" not in os.environ:
        from llm_platform.model.distributed import launch_training as train
    else:
        from llm_platform.model.loop import run_training as train
    return train(request, on_step)


def load_adapter(base_model_dir: str, adapter_dir: str, *, revision: str | None = None, torch_dtype=None):
    """Return (model, tokenizer): the base model with the LoRA adapter at `adapter_dir`, in eval mode."""
    from peft import PeftModel

    base, tokenizer = load_base_model(base_model_dir, revision=revision, torch_dtype=torch_dtype)
    model = PeftModel.from_pretrained(base, adapter_dir)
    model.eval()
    return model, tokenizer

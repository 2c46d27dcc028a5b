"""LoRA fine-tuning of a causal LM on instruction/response pairs, resumable.

A plain torch loop rather than `transformers.Trainer`: resuming must reproduce
an uninterrupted run step for step (same batches, same dropout), and with our
own loop the data order is a pure function of (seed, epoch) and the checkpoint
holds everything else, with no Trainer/Accelerate state to keep in sync.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict
from peft.utils import load_peft_weights
from transformers import get_linear_schedule_with_warmup

from llm_platform.model.base_model import load_base_model
from llm_platform.identity import stable_hash
from llm_platform.model import prompts
from llm_platform.model.prompts import PromptTemplate

DEFAULT_PROMPT = prompts.make_template(prompts.CONFIGURED, prompts.DEFAULT_TEMPLATE)
CHECKPOINTS_DIR, ADAPTER_DIR, STATE_FILE = "checkpoints", "adapter", "state.pt"
KEEP_CHECKPOINTS = 2
DEVICES = ("auto", "cpu", "cuda")
# Fields that may change between a preempted run and its resumption.
_NOT_FINGERPRINTED = ("checkpoint_every_steps", "device")


class TrainingInterrupted(RuntimeError):
    """Raised by `train_lora(stop_after_steps=n)` after step n, as a preemption would."""

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

    def __post_init__(self) -> None:
        for field in ("rank", "alpha", "epochs", "batch_size", "checkpoint_every_steps"):
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
    answer = (answer + [tokenizer.eos_token_id])[: max_length - len(prompt)]
    return prompt + answer, [-100] * len(prompt) + answer


def pad_id_of(tokenizer) -> int:
    """Return the padding id, falling back to EOS for models that define no pad token."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad (input_ids, labels) rows into a batch with an attention mask."""
    width = max(len(ids) for ids, _ in rows)
    batch = {"input_ids": [], "attention_mask": [], "labels": []}
    for ids, labels in rows:
        gap = width - len(ids)
        batch["input_ids"].append(ids + [pad_id] * gap)
        batch["attention_mask"].append([1] * len(ids) + [0] * gap)
        batch["labels"].append(labels + [-100] * gap)
    return {key: torch.tensor(value, dtype=torch.long) for key, value in batch.items()}


def select_device(device: str) -> tuple[torch.device, torch.dtype]:
    """Return (device, dtype): CUDA with bf16 where available and asked for, else CPU fp32."""
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise ValueError("LoraTrainingConfig.device is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    if device == "cpu" or not cuda:
        return torch.device("cpu"), torch.float32
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.device("cuda"), dtype


def _fingerprint(config: LoraTrainingConfig, examples: Sequence[tuple[str, str]], base: str, prompt_version: str) -> str:
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_FINGERPRINTED}
    data = stable_hash(*(part for pair in examples for part in pair))
    return stable_hash(json.dumps(fields, sort_keys=True), data, base, prompt_version)


def _batches_for_epoch(num_examples: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(num_examples, generator=generator).tolist()
    return [order[i : i + batch_size] for i in range(0, num_examples, batch_size)]


def _lora_model(base_model_dir: str, config: LoraTrainingConfig, device, dtype, revision: str | None):
    base, tokenizer = load_base_model(base_model_dir, revision=revision, torch_dtype=dtype)
    torch.manual_seed(config.seed)
    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                      target_modules=list(config.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(base, lora).to(device), tokenizer


def _save_checkpoint(root: str, step: int, model, optimizer, scheduler, state: dict) -> str:
    final = os.path.join(root, f"step-{step}")
    staging = os.path.join(root, f".tmp-step-{step}")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save({**state, "step": step, "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": rng}, os.path.join(staging, STATE_FILE))
    shutil.rmtree(final, ignore_errors=True)
    # A rename is atomic: a preemption mid-write leaves only a .tmp dir, never a torn step-N.
    os.rename(staging, final)
    for old in _checkpoint_steps(root)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(os.path.join(root, f"step-{old}"))
    return final


def _checkpoint_steps(root: str) -> list[int]:
    complete = glob.glob(os.path.join(root, "step-*", STATE_FILE))
    return sorted(int(os.path.basename(os.path.dirname(path)).removeprefix("step-")) for path in complete)


def _restore(path: str, model, optimizer, scheduler, fingerprint: str) -> dict:
    state = torch.load(os.path.join(path, STATE_FILE), weights_only=True)
    if state["fingerprint"] != fingerprint:
        raise ValueError(f"Checkpoint {path} belongs to a run with other data, base model or hyper-parameters; "
                         "train into a new output_dir or delete its checkpoints/ folder.")
    set_peft_model_state_dict(model, load_peft_weights(path, device="cpu"))
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return state


def _batch_for_step(step: int, rows, config: LoraTrainingConfig, pad_id: int, device) -> dict:
    steps_per_epoch = math.ceil(len(rows) / config.batch_size)
    epoch, index = divmod(step - 1, steps_per_epoch)
    chosen = _batches_for_epoch(len(rows), config.batch_size, config.seed, epoch)[index]
    return {k: v.to(device) for k, v in collate([rows[i] for i in chosen], pad_id).items()}


def _optimizer_step(model, optimizer, scheduler, batch: dict) -> float:
    loss = model(**batch).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    return loss.item()


def _resume_point(root: str, model, optimizer, scheduler, fingerprint: str, seed: int):
    state = {"fingerprint": fingerprint, "losses": [], "tokens_seen": 0, "data_seed": seed}
    for stale in glob.glob(os.path.join(root, ".tmp-step-*")):
        shutil.rmtree(stale)  # a write a preemption cut short
    existing = _checkpoint_steps(root)
    if not existing:
        return 0, state
    path = os.path.join(root, f"step-{existing[-1]}")
    return existing[-1], _restore(path, model, optimizer, scheduler, fingerprint)


def train_lora(
    *,
    base_model_dir: str,
    examples: Sequence[tuple[str, str]],
    config: LoraTrainingConfig,
    output_dir: str,
    on_step: Callable[[int, float], None] | None = None,
    stop_after_steps: int | None = None,
    prompt_template: PromptTemplate = DEFAULT_PROMPT,
    base_revision: str | None = None,
) -> TrainResult:
    """Fine-tune a LoRA adapter on (instruction, response) pairs; save it to output_dir/adapter.

    Resumes from the newest checkpoint in output_dir/checkpoints when there is one.
    With `stop_after_steps=n` it raises TrainingInterrupted right after step n,
    saving nothing extra, as if the process were killed there.
    """
    if not examples:
        raise ValueError("train_lora needs at least one (instruction, response) example")
    if stop_after_steps is not None and stop_after_steps < 1:
        raise ValueError(f"stop_after_steps must be >= 1 or None, got {stop_after_steps}")
    device, dtype = select_device(config.device)
    model, tokenizer = _lora_model(base_model_dir, config, device, dtype, base_revision)
    rows = [encode_example(tokenizer, q, a, max_length=config.max_length, template=prompt_template) for q, a in examples]
    total_steps = math.ceil(len(rows) / config.batch_size) * config.epochs
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, max(1, total_steps // 10), total_steps)
    root = os.path.join(output_dir, CHECKPOINTS_DIR)
    fingerprint = _fingerprint(config, examples, base_model_dir, prompt_template.version)
    start, state = _resume_point(root, model, optimizer, scheduler, fingerprint, config.seed)
    latest = os.path.join(root, f"step-{start}") if start else None
    began, run_tokens = time.perf_counter(), 0
    model.train()
    for step in range(start + 1, total_steps + 1):
        batch = _batch_for_step(step, rows, config, pad_id_of(tokenizer), device)
        loss = _optimizer_step(model, optimizer, scheduler, batch)
        tokens = int(batch["attention_mask"].sum())
        run_tokens += tokens
        state = {**state, "losses": [*state["losses"], loss], "tokens_seen": state["tokens_seen"] + tokens}
        if on_step is not None:
            on_step(step, loss)
        if step % config.checkpoint_every_steps == 0:
            latest = _save_checkpoint(root, step, model, optimizer, scheduler, state)
        if stop_after_steps is not None and stop_after_steps <= step < total_steps:
            raise TrainingInterrupted(step, latest)
    seconds = time.perf_counter() - began
    adapter_dir = os.path.join(output_dir, ADAPTER_DIR)
    model.save_pretrained(adapter_dir)
    tokenizer.save_pretrained(adapter_dir)
    prompts.write_template(prompt_template, adapter_dir)
    return TrainResult(
        status="resumed" if start else "trained",
        steps=total_steps,
        resumed_from_step=start,
        losses=list(state["losses"]),
        tokens_seen=state["tokens_seen"],
        seconds=seconds,
        tokens_per_second=run_tokens / seconds if seconds > 0 else 0.0,
        device=device.type,
        dtype=str(dtype).removeprefix("torch."),
        adapter_dir=adapter_dir,
    )


def load_adapter(base_model_dir: str, adapter_dir: str, *, revision: str | None = None, torch_dtype=None):
    """Return (model, tokenizer): the base model with the LoRA adapter at `adapter_dir`, in eval mode."""
    base, tokenizer = load_base_model(base_model_dir, revision=revision, torch_dtype=torch_dtype)
    model = PeftModel.from_pretrained(base, adapter_dir)
    model.eval()
    return model, tokenizer

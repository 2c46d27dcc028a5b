"""The LoRA training loop, run by one process or by each of `torchrun`'s processes (DDP).

Every optimizer step trains on one global batch of `batch_size` examples,
split into `gradient_accumulation_steps` micro-batches per process. Each
micro-batch's loss is its summed token loss divided by the label tokens of the
whole global batch, so the accumulated (and, under DDP, averaged) gradient is
the gradient of the global batch's mean token loss however the batch was split.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from peft import LoraConfig, get_peft_model
from transformers import get_linear_schedule_with_warmup

from llm_platform.config import TrainingSettings
from llm_platform.model import checkpoints, prompts
from llm_platform.model.base_model import load_base_model
from llm_platform.model.batching import (
    collate,
    encode_example,
    epoch_batches,
    label_tokens,
    micro_batches,
    pad_id_of,
    rank_micro_batches,
)
from llm_platform.model.training_request import (
    ADAPTER_DIR,
    CHECKPOINTS_DIR,
    TrainingInterrupted,
    TrainingRequest,
    TrainResult,
    fingerprint,
)


@dataclass(frozen=True)
class World:
    """This process's place among the training processes: (0, 1, 0) when training alone."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0


def current_world() -> World:
    """The world torch.distributed was initialized with, else a world of one."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def select_device(device: str, local_rank: int = 0) -> tuple[torch.device, torch.dtype]:
    """Return (device, dtype): CUDA with bf16 where available and asked for, else CPU fp32."""
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise ValueError("training.device is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    if device == "cpu" or not cuda:
        return torch.device("cpu"), torch.float32
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank), dtype


def _lora_model(base_model_dir: str, config: TrainingSettings, device, dtype, revision: str | None = None):
    base, tokenizer = load_base_model(base_model_dir, revision=revision, torch_dtype=dtype)
    if device.type == "cuda" and base.config._attn_implementation != "sdpa":
        # Fused scaled-dot-product attention; eager attention materializes the full score matrix.
        base.set_attn_implementation("sdpa")
    if config.gradient_checkpointing:
        # Non-reentrant checkpointing needs no input grads and replays dropout with the same RNG.
        base.activation_checkpointing_enable(
            activation_checkpointing_kwargs={"use_reentrant": False}
        )  # transformers 5 name of gradient_checkpointing_enable
    torch.manual_seed(config.seed)
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(base, lora).to(device), tokenizer


class StepPlanner:
    """Which rows this process trains on at each optimizer step: a pure function of config and step."""

    def __init__(self, rows: Sequence[tuple[list[int], list[int]]], config: TrainingSettings, world: World):
        self.rows, self.config, self.world = rows, config, world
        self.lengths = [len(ids) for ids, _ in rows]
        self.steps_per_epoch = math.ceil(len(rows) / config.batch_size)
        self._epoch = -1
        self._batches: list[list[int]] = []

    def global_batch(self, step: int) -> list[int]:
        epoch, index = divmod(step - 1, self.steps_per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._batches = epoch_batches(
                self.lengths,
                self.config.batch_size,
                seed=self.config.seed,
                epoch=epoch,
                group_by_length=self.config.group_by_length,
            )
        return self._batches[index]

    def chunks(self, step: int) -> list[list[int]]:
        parts = self.config.gradient_accumulation_steps * self.world.size
        return micro_batches(self.global_batch(step), self.lengths, parts)


def _micro_batch_loss(runner, batch: dict, label_count: int):
    return runner(**batch, num_items_in_batch=label_count).loss


def _accumulate(runner, planner: StepPlanner, step: int, pad_id: int, device) -> float:
    """Forward and backward over this process's micro-batches; return its share of the global loss."""
    chunks = planner.chunks(step)
    label_count = sum(label_tokens(planner.rows[i][1]) for chunk in chunks for i in chunk)
    mine = rank_micro_batches(chunks, planner.world.rank, planner.world.size)
    if planner.world.size == 1:
        mine = [chunk for chunk in mine if chunk]
    total = torch.zeros((), device=device)
    for position, chunk in enumerate(mine):
        # Under DDP every process must run as many backward passes as the others, so an
        # empty micro-batch (a batch smaller than processes x accumulation) runs one row at weight 0.
        weight = 1.0 if chunk else 0.0
        rows = [planner.rows[i] for i in chunk or planner.global_batch(step)[:1]]
        batch = {k: v.to(device) for k, v in collate(rows, pad_id).items()}
        last = position == len(mine) - 1
        sync = contextlib.nullcontext() if last or planner.world.size == 1 else runner.no_sync()
        with sync:
            # DDP averages gradients over processes; scaling by the world size turns that into the sum.
            loss = _micro_batch_loss(runner, batch, label_count) * (weight * planner.world.size)
            loss.backward()
        total += loss.detach() / planner.world.size
    # One device-to-host copy per step, not one per micro-batch.
    return total.item()


def _global_loss(local: float, world: World) -> float:
    if world.size == 1:
        return local
    import torch.distributed as dist

    summed = torch.tensor([local], dtype=torch.float64)
    dist.all_reduce(summed)
    return summed.item()


def _padded_positions(planner: StepPlanner, step: int) -> int:
    return sum(len(chunk) * max(planner.lengths[i] for i in chunk) for chunk in planner.chunks(step) if chunk)


def _all_rng_states(world: World) -> list[dict]:
    if world.size == 1:
        return [checkpoints.rng_state()]
    import torch.distributed as dist

    gathered: list = [None] * world.size
    dist.all_gather_object(gathered, checkpoints.rng_state())
    return gathered


def _barrier(world: World) -> None:
    if world.size > 1:
        import torch.distributed as dist

        dist.barrier()


@dataclass
class _Progress:
    """Loss history and token counts: `state` is what checkpoints keep, the run_* counts are this run's."""

    state: dict
    run_tokens: int = 0
    run_positions: int = 0

    def record(self, planner: StepPlanner, step: int, loss: float) -> None:
        tokens = sum(planner.lengths[i] for i in planner.global_batch(step))
        self.run_tokens += tokens
        self.run_positions += _padded_positions(planner, step)
        self.state = {
            **self.state,
            "losses": [*self.state["losses"], loss],
            "tokens_seen": self.state["tokens_seen"] + tokens,
        }


def _optimizer_step(runner, model, optimizer, scheduler, planner: StepPlanner, step: int, pad_id: int, device) -> float:
    loss = _global_loss(_accumulate(runner, planner, step, pad_id, device), planner.world)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


def _checkpoint(root: str, step: int, model, optimizer, scheduler, state: dict, world: World) -> str | None:
    """Rank 0 writes the checkpoint (with every process's RNG state); return its path there, None elsewhere."""
    rng = _all_rng_states(world)
    path = checkpoints.save_checkpoint(root, step, model, optimizer, scheduler, state, rng) if world.rank == 0 else None
    _barrier(world)
    return path


def _resume(root: str, model, optimizer, scheduler, fingerprint_: str, world: World) -> tuple[int, dict]:
    state = {"fingerprint": fingerprint_, "losses": [], "tokens_seen": 0}
    if world.rank == 0:
        os.makedirs(root, exist_ok=True)
        checkpoints.remove_partial_checkpoints(root)
    _barrier(world)
    existing = checkpoints.checkpoint_steps(root)
    if not existing:
        return 0, state
    path = os.path.join(root, f"step-{existing[-1]}")
    return existing[-1], checkpoints.restore_checkpoint(
        path, model, optimizer, scheduler, fingerprint=fingerprint_, rank=world.rank
    )


def _wrap(model, world: World, device):
    if world.size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def run_training(request: TrainingRequest, on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """The loop behind `train_lora`, in this process; under torchrun, one rank's part of it."""
    config, template, stop_after_steps = request.config, request.prompt_template, request.stop_after_steps
    world = current_world()
    device, dtype = select_device(config.device, world.local_rank)
    model, tokenizer = _lora_model(request.base_model_dir, config, device, dtype, request.base_revision)
    rows = [
        encode_example(tokenizer, q, a, max_length=config.max_length, template=template) for q, a in request.examples
    ]
    planner = StepPlanner(rows, config, world)
    total_steps = planner.steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, max(1, total_steps // 10), total_steps)
    root = os.path.join(request.output_dir, CHECKPOINTS_DIR)
    # The checkpoint holds one RNG state per process, so it resumes only with as many processes.
    fingerprint_ = fingerprint(request) + f"-{world.size}"
    start, state = _resume(root, model, optimizer, scheduler, fingerprint_, world)
    if world.rank > 0 and start == 0:
        # Same LoRA initialization everywhere (DDP broadcasts rank 0's anyway), other dropout masks per process.
        torch.manual_seed(config.seed + 7919 * world.rank)
    runner = _wrap(model, world, device)
    latest = os.path.join(root, f"step-{start}") if start else None
    progress, began = _Progress(state), time.perf_counter()
    model.train()
    pad_id = pad_id_of(tokenizer)
    for step in range(start + 1, total_steps + 1):
        loss = _optimizer_step(runner, model, optimizer, scheduler, planner, step, pad_id, device)
        progress.record(planner, step, loss)
        if on_step is not None and world.rank == 0:
            on_step(step, loss)
        if step % config.checkpoint_every_steps == 0:
            latest = _checkpoint(root, step, model, optimizer, scheduler, progress.state, world) or latest
        if stop_after_steps is not None and stop_after_steps <= step < total_steps:
            raise TrainingInterrupted(step, latest)
    seconds = time.perf_counter() - began
    adapter_dir = os.path.join(request.output_dir, ADAPTER_DIR)
    if world.rank == 0:
        model.save_pretrained(adapter_dir)
        tokenizer.save_pretrained(adapter_dir)
        prompts.write_template(template, adapter_dir)
    _barrier(world)
    return TrainResult(
        status="resumed" if start else "trained",
        steps=total_steps,
        resumed_from_step=start,
        losses=list(progress.state["losses"]),
        tokens_seen=progress.state["tokens_seen"],
        seconds=seconds,
        tokens_per_second=progress.run_tokens / seconds if seconds > 0 else 0.0,
        device=device.type,
        dtype=str(dtype).removeprefix("torch."),
        adapter_dir=adapter_dir,
        padding_share=1 - progress.run_tokens / progress.run_positions if progress.run_positions else 0.0,
        num_processes=world.size,
        attention=model.config._attn_implementation or "",
    )

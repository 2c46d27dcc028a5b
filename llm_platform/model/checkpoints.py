"""Training checkpoints: written atomically, the newest two kept, restored exactly.

A checkpoint holds the LoRA weights, optimizer and scheduler state, the loss
history and every process's RNG state, so a resumed run repeats an
uninterrupted one step for step, dropout included.
"""

from __future__ import annotations

import glob
import os
import shutil

import torch
from peft import set_peft_model_state_dict
from peft.utils import load_peft_weights

STATE_FILE = "state.pt"
KEEP_CHECKPOINTS = 2


def rng_state() -> dict:
    """This process's RNG state: torch's, and CUDA's where there is a GPU."""
    state: dict[str, torch.Tensor | list[torch.Tensor]] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Put back what `rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(root: str, step: int, model, optimizer, scheduler, state: dict, rng_states: list[dict]) -> str:
    """Write checkpoint `step-{step}` under root and prune older ones; return its path."""
    final = os.path.join(root, f"step-{step}")
    staging = os.path.join(root, f".tmp-step-{step}")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    torch.save(
        {
            **state,
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_states,
        },
        os.path.join(staging, STATE_FILE),
    )
    shutil.rmtree(final, ignore_errors=True)
    # A rename is atomic: a preemption mid-write leaves only a .tmp dir, never a torn step-N.
    os.rename(staging, final)
    for old in checkpoint_steps(root)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(os.path.join(root, f"step-{old}"))
    return final


def checkpoint_steps(root: str) -> list[int]:
    """Steps of the complete checkpoints under root, oldest first."""
    complete = glob.glob(os.path.join(root, "step-*", STATE_FILE))
    return sorted(int(os.path.basename(os.path.dirname(path)).removeprefix("step-")) for path in complete)


def remove_partial_checkpoints(root: str) -> None:
    """Delete checkpoint writes a preemption cut short."""
    for stale in glob.glob(os.path.join(root, ".tmp-step-*")):
        shutil.rmtree(stale)


def restore_checkpoint(path: str, model, optimizer, scheduler, *, fingerprint: str, rank: int) -> dict:
    """Load the checkpoint at path into model, optimizer, scheduler and this process's RNG; return its state."""
    state = torch.load(os.path.join(path, STATE_FILE), weights_only=True)
    if state["fingerprint"] != fingerprint:
        raise ValueError(
            f"Checkpoint {path} belongs to a run with other data, base model, hyper-parameters "
            "or number of processes; "
            "train into a new output_dir or delete its checkpoints/ folder."
        )
    set_peft_model_state_dict(model, load_peft_weights(path, device="cpu"))
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    # num_processes is part of the fingerprint, so there is one RNG state per process of this run.
    set_rng_state(state["rng"][rank])
    return state

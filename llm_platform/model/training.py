"""LoRA fine-tuning of a causal LM on instruction/response pairs, resumable.

A plain torch loop rather than `transformers.Trainer`: resuming must reproduce
an uninterrupted run step for step (same batches, same dropout), and with our
own loop the data order is a pure function of (seed, epoch) and the checkpoint
holds everything else, with no Trainer/Accelerate state to keep in sync.
The loop is in loop.py (batches in batching.py, checkpoints in checkpoints.py,
several processes in distributed.py, several machines in pytorch_job.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from llm_platform.model.base_model import load_base_model
from llm_platform.model.training_request import TrainingRequest, TrainResult


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

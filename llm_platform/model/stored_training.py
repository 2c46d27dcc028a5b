"""LoRA training whose base model, checkpoints and adapter live under the storage root, local or object store.

`train_lora` reads and writes local folders. Here the request's base model and
output folder are storage locations: the base model is staged in, every
checkpoint the loop completes is published as soon as the next step starts
(and when the loop stops, however it stops), and a fresh machine stages the
published checkpoints in before training, so a killed step resumes from the
store rather than from a disk that went with its pod.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from llm_platform.storage_files import RemoteFolder, local_path

if TYPE_CHECKING:
    from llm_platform.model.training_request import TrainingRequest, TrainResult


def train_lora_stored(
    request: TrainingRequest, on_step: Callable[[int, float], None] | None = None
) -> tuple[TrainResult, str]:
    """`train_lora` of a request over storage locations; returns (its TrainResult, the adapter's storage location)."""
    from llm_platform.model import training
    from llm_platform.model.checkpoints import STATE_FILE
    from llm_platform.model.training_request import ADAPTER_DIR, CHECKPOINTS_DIR

    folder = RemoteFolder(request.output_dir)
    folder.stage_children(CHECKPOINTS_DIR)

    def complete(checkpoint: Path) -> bool:
        # The loop renames .tmp-step-N to step-N only once every file is written.
        return checkpoint.name.startswith("step-") and (checkpoint / STATE_FILE).is_file()

    def step(number: int, loss: float) -> None:
        if on_step is not None:
            on_step(number, loss)
        folder.mirror_children(CHECKPOINTS_DIR, complete)

    try:
        local = dataclasses.replace(request, base_model_dir=local_path(request.base_model_dir), output_dir=folder.local)
        result = training.train_lora(local, step)
    finally:
        folder.mirror_children(CHECKPOINTS_DIR, complete)
    return result, folder.publish(ADAPTER_DIR)

"""LoRA training whose base model, checkpoints and adapter live under the storage root, local or object store.

`train_lora` reads and writes local folders. Here the base model is staged in
from its storage location, every checkpoint the loop completes is published as
soon as the next step starts (and when the loop stops, however it stops), and a
fresh machine stages the published checkpoints in before training, so a killed
step resumes from the store rather than from a disk that went with its pod.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from llm_platform.storage_files import RemoteFolder, local_path


def train_lora_stored(*, base_model: str, output_url: str, on_step: Callable[[int, float], None] | None = None, **kwargs: Any):
    """`train_lora` over storage locations; returns (its TrainResult, the adapter's storage location)."""
    from llm_platform.model import training
    from llm_platform.model.checkpoints import STATE_FILE

    folder = RemoteFolder(output_url)
    folder.stage_children(training.CHECKPOINTS_DIR)

    def complete(checkpoint: Path) -> bool:
        # The loop renames .tmp-step-N to step-N only once every file is written.
        return checkpoint.name.startswith("step-") and (checkpoint / STATE_FILE).is_file()

    def step(number: int, loss: float) -> None:
        if on_step is not None:
            on_step(number, loss)
        folder.mirror_children(training.CHECKPOINTS_DIR, complete)

    try:
        result = training.train_lora(base_model_dir=local_path(base_model), output_dir=folder.local, on_step=step, **kwargs)
    finally:
        folder.mirror_children(training.CHECKPOINTS_DIR, complete)
    return result, folder.publish(training.ADAPTER_DIR)

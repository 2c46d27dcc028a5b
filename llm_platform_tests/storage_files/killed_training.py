"""Run training_job up to lora_adapter and SIGKILL this process right after training step N.

`python -m llm_platform_tests.storage_files.killed_training CONFIG HOME N`: a real kill,
at a known step, of a process that writes its checkpoints to the storage home.
"""

import os
import signal
import sys

import dagster as dg

from llm_platform.automation.jobs import TRAINING_JOB
from llm_platform.config import load_config
from llm_platform.definitions import build_definitions
from llm_platform.model import training

UP_TO_ADAPTER = ["sft_dataset", "sft_eval_split", "base_model", "prompt_template", "lora_adapter"]


def main(config_path: str, home: str, kill_at: int) -> None:
    train = training.train_lora

    def killed_after_step(request, inner):
        def on_step(step: int, loss: float) -> None:
            inner(step, loss)
            if step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        return train(request, on_step)

    training.train_lora = killed_after_step
    defs = build_definitions(load_config(config_path), home=home, executor="in_process")
    defs.resolve_job_def(TRAINING_JOB).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), asset_selection=[dg.AssetKey(a) for a in UP_TO_ADAPTER]
    )
    sys.exit(f"training finished before step {kill_at}: nothing was killed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))

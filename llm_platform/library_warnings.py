"""Library noise no change of ours can remove: warnings one library raises about another's calls (filtered by exact
message), and download and load progress bars in output that is not a terminal session's.
"""

from __future__ import annotations

import os
import re
import warnings

# peft reads `model.is_gradient_checkpointing` whenever it wraps a model (PeftModel, get_peft_model);
# transformers 5 renamed that property `is_activation_checkpointing` and warns on the old name. Our own
# code uses the new names; the demo and the service would otherwise print this on every adapter load.
PEFT_CHECKPOINTING_PROPERTY = "`is_gradient_checkpointing` is deprecated"
# `dagster asset materialize`, `job execute`, `dev` and `definitions validate` warn on every call that `dg`
# supersedes them. `llm-platform dagster` runs the first three as `dg` (dagster_commands); this filter covers
# what still runs as `dagster`: an option `dg launch` lacks, `definitions validate`, an environment without dg.
DAGSTER_SUPERSEDED_COMMANDS = (
    "asset_materialize_command",
    "job_execute_command",
    "dev_command",
    "definitions_validate_command",
)


# transformers 5 draws a "Loading weights" bar on every model load (through huggingface_hub's switch), and MLflow
# one per artifact download: the demo printed dozens, the service one per adapter swap.
PROGRESS_BAR_SWITCHES = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


def quiet_progress_bars() -> None:
    """Turn the libraries' progress bars off in this process and those it starts, unless the operator chose otherwise.

    Call it before transformers or huggingface_hub is imported: they read the switch at import.
    """
    for name, value in PROGRESS_BAR_SWITCHES.items():
        os.environ.setdefault(name, value)


def ignore_third_party_deprecations() -> None:
    """Filter the peft deprecation warning above in this process, and only it (by message)."""
    warnings.filterwarnings("ignore", message=re.escape(PEFT_CHECKPOINTING_PROPERTY), category=FutureWarning)


def python_warnings_for_dagster(existing: str | None) -> str:
    """PYTHONWARNINGS for a `dagster` command and the processes it starts: `existing` entries, then ours.

    Message prefixes, not warning classes: PYTHONWARNINGS is read before site-packages can be imported.
    """
    ours = [f"ignore:Function `{command}` is superseded" for command in DAGSTER_SUPERSEDED_COMMANDS]
    return ",".join([*filter(None, [existing]), *ours, f"ignore:{PEFT_CHECKPOINTING_PROPERTY}:FutureWarning"])

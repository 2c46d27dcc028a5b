"""Warnings one library raises about another's calls, which no change of ours can remove: filtered by exact message."""

from __future__ import annotations

import re
import warnings

# peft reads `model.is_gradient_checkpointing` whenever it wraps a model (PeftModel, get_peft_model);
# transformers 5 renamed that property `is_activation_checkpointing` and warns on the old name. Our own
# code uses the new names; the demo and the service would otherwise print this on every adapter load.
PEFT_CHECKPOINTING_PROPERTY = "`is_gradient_checkpointing` is deprecated"


def ignore_third_party_deprecations() -> None:
    """Filter the deprecation warnings above, and only those (by message)."""
    warnings.filterwarnings("ignore", message=re.escape(PEFT_CHECKPOINTING_PROPERTY), category=FutureWarning)

"""Where the service gets its adapter and its prompt: the one seam to the model package.

The prompt function is `llm_platform.model.prompts.format_prompt`, the one that
training and evaluation use; the adapter is the one the MLflow `production`
alias points at, loaded from the registry's artifacts
(`llm_platform.model.registry`), so the service needs no file the training pod
wrote.
"""

from __future__ import annotations

import threading

from llm_platform.home_layout import PRODUCTION_ALIAS
from llm_platform.model.prompts import PromptTemplate, format_prompt  # noqa: F401  (the service's prompt function)

# transformers builds models under a process-wide meta-device context: two loads in two threads corrupt each other.
_LOAD_LOCK = threading.Lock()


def registered_version(client_or_resource, registered_model: str, alias: str = PRODUCTION_ALIAS) -> str | None:
    """The version number `alias` points at, or None when nothing was promoted yet."""
    from llm_platform.model import registry

    return registry.registered_version(client_or_resource, registered_model, alias)


def load_registered_adapter(
    client_or_resource, registered_model: str, *, alias: str = PRODUCTION_ALIAS, device: str = "auto"
):
    """The base model and LoRA adapter that `alias` points at (a
    `registry.RegisteredAdapter`), in eval mode on `device`.
    """
    from llm_platform.model import registry

    with _LOAD_LOCK:
        return registry.load_registered_adapter(client_or_resource, registered_model, alias=alias, device=device)

"""Where the service gets its adapter and its prompt: the one seam to the model package.

Shaped like `llm_platform.model.registry` (`load_registered_adapter`,
`registered_version`) and `llm_platform.model.prompts` (`PromptTemplate`,
`format_prompt`), which are landing separately; until then it reads the
`production` alias's tags (`base_model_path`, `adapter_dir`) that
`production_model` writes and formats through `llm_platform.model.training`'s
template, so serving, training and evaluation share one prompt.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm_platform.identity import stable_hash

PRODUCTION_ALIAS = "production"
# Retrieved passages go inside the instruction, so the trained template is unchanged.
RAG_INSTRUCTION = "Context:\n{contexts}\n\nQuestion: {question}"
# The same string as llm_platform.model.training.PROMPT_TEMPLATE, which imports torch.
_TRAINING_TEMPLATE = "### Instruction:\n{instruction}\n\n### Response:\n"
# transformers builds models under a process-wide meta-device context: two loads in two threads corrupt each other.
_LOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt template and its version (a hash of its text, so any edit is a new version)."""

    kind: str
    text: str
    version: str


def default_template() -> PromptTemplate:
    """The instruction template training and evaluation use, wrapped for retrieved context."""
    return PromptTemplate(kind="instruction", text=_TRAINING_TEMPLATE, version=stable_hash(_TRAINING_TEMPLATE, RAG_INSTRUCTION)[:12])


def format_prompt(template: PromptTemplate, instruction: str, *, contexts: Sequence[str] = (), tokenizer: Any = None) -> str:
    """The prompt for `instruction`, with numbered retrieved `contexts` when there are any."""
    del tokenizer  # chat templates arrive with llm_platform.model.prompts
    if contexts:
        numbered = "\n".join(f"[{i}] {' '.join(text.split())}" for i, text in enumerate(contexts, 1))
        instruction = RAG_INSTRUCTION.format(contexts=numbered, question=instruction.strip())
    return template.text.format(instruction=instruction.strip())


@dataclass(frozen=True)
class RegisteredAdapter:
    """A loaded production adapter: model, tokenizer and where it came from."""

    model: Any
    tokenizer: Any
    version: str
    prompt_template: PromptTemplate
    base_model_id: str
    base_model_commit: str | None
    run_id: str | None


def _client(client_or_resource):
    return client_or_resource.client() if hasattr(client_or_resource, "client") else client_or_resource


def _version_by_alias(client, registered_model: str, alias: str):
    try:
        return client.get_model_version_by_alias(registered_model, alias)
    except Exception as exc:  # MlflowException when the model or the alias does not exist yet
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in str(exc).lower():
            return None
        raise


def registered_version(client_or_resource, registered_model: str, alias: str = PRODUCTION_ALIAS) -> str | None:
    """The version number `alias` points at, or None when nothing was promoted yet."""
    found = _version_by_alias(_client(client_or_resource), registered_model, alias)
    return None if found is None else str(found.version)


def load_registered_adapter(client_or_resource, registered_model: str, *, alias: str = PRODUCTION_ALIAS, device: str = "auto") -> RegisteredAdapter:
    """Load the base model and LoRA adapter that `alias` points at, in eval mode on `device`."""
    found = _version_by_alias(_client(client_or_resource), registered_model, alias)
    if found is None:
        raise LookupError(f"registered model {registered_model!r} has no {alias!r} alias yet: materialize production_model")
    tags = dict(found.tags)
    missing = [t for t in ("base_model_path", "adapter_dir") if not tags.get(t)]
    if missing:
        raise LookupError(f"{registered_model} version {found.version} lacks tag(s) {', '.join(missing)}; promote it through production_model")
    from llm_platform.model.training import load_adapter, select_device

    with _LOAD_LOCK:
        model, tokenizer = load_adapter(tags["base_model_path"], tags["adapter_dir"])
        model.to(select_device(device)[0])
    return RegisteredAdapter(model=model, tokenizer=tokenizer, version=str(found.version), prompt_template=default_template(),
                             base_model_id=tags["base_model_path"], base_model_commit=tags.get("base_model_weights_hash"), run_id=found.run_id)

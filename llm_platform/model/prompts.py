"""The prompt template: one versioned asset, one function that formats every prompt.

Training, evaluation and serving all call `format_prompt` (or `encode_prompt`,
which tokenizes its output), so a model is always asked in the format it was
trained on. A template is the base model's own chat template where its
tokenizer has one, else the configured text; its `version` (a content hash)
goes into the adapter fingerprint, MLflow tags and the eval record, so a
changed template retrains and re-evaluates.

No torch import here: the service and the Dagster code location import this.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from llm_platform.config import DEFAULT_PROMPT_TEMPLATE

CHAT_TEMPLATE, CONFIGURED = "chat_template", "configured"
KINDS = (CHAT_TEMPLATE, CONFIGURED)
PLACEHOLDER = "{instruction}"
TEMPLATE_FILE = "prompt_template.json"


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt format: a chat template (Jinja, rendered by the tokenizer) or a configured text."""

    kind: str
    text: str
    version: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"PromptTemplate.kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == CONFIGURED and PLACEHOLDER not in self.text:
            raise ValueError(f"a configured prompt template must contain {PLACEHOLDER}; got {self.text!r}")
        if self.version != template_version(self.kind, self.text):
            raise ValueError(
                f"PromptTemplate.version {self.version!r} does not match its text; build it with make_template()"
            )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PromptTemplate:
        return cls(**json.loads(text))


def template_version(kind: str, text: str) -> str:
    """A short content hash of the template: equal text, equal version."""
    return hashlib.sha256(f"{kind}\n{text}".encode()).hexdigest()[:12]


def make_template(kind: str, text: str) -> PromptTemplate:
    return PromptTemplate(kind, text, template_version(kind, text))


DEFAULT_PROMPT = make_template(CONFIGURED, DEFAULT_PROMPT_TEMPLATE)


def template_for(
    tokenizer, configured: str = DEFAULT_PROMPT_TEMPLATE, *, use_chat_template: bool = True
) -> PromptTemplate:
    """The base model's chat template where its tokenizer has one (and it is wanted), else `configured`."""
    chat = getattr(tokenizer, "chat_template", None) if tokenizer is not None else None
    if use_chat_template and isinstance(chat, str) and chat.strip():
        return make_template(CHAT_TEMPLATE, chat)
    return make_template(CONFIGURED, configured)


def user_message(instruction: str, contexts: Sequence[str] = ()) -> str:
    """The user's turn: the instruction alone, or retrieved chunks then the question."""
    instruction = instruction.strip()
    if not contexts:
        return instruction
    numbered = "\n\n".join(f"[{i}] {text.strip()}" for i, text in enumerate(contexts, start=1))
    return f"Answer using the context below.\n\nContext:\n{numbered}\n\nQuestion: {instruction}"


def format_prompt(template: PromptTemplate, instruction: str, *, contexts: Sequence[str] = (), tokenizer=None) -> str:
    """The prompt text for `instruction` (with retrieved `contexts` for RAG), up to where the answer starts.

    A chat template is rendered by `tokenizer` (it knows the special tokens the
    template refers to) but always from `template.text`, so the versioned asset,
    not whatever the tokenizer carries, decides the format.
    """
    message = user_message(instruction, contexts)
    if template.kind == CONFIGURED:
        return template.text.replace(PLACEHOLDER, message)
    if tokenizer is None:
        raise ValueError(
            f"prompt template {template.version} is a chat template; pass the model's tokenizer to format_prompt"
        )
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": message}], chat_template=template.text, tokenize=False, add_generation_prompt=True
    )


def encode_prompt(template: PromptTemplate, tokenizer, instruction: str, *, contexts: Sequence[str] = ()) -> list[int]:
    """Token ids of the prompt; BOS is added for configured templates (chat templates write their own)."""
    ids = tokenizer(
        format_prompt(template, instruction, contexts=contexts, tokenizer=tokenizer), add_special_tokens=False
    )["input_ids"]
    if template.kind == CONFIGURED and tokenizer.bos_token_id is not None:
        return [tokenizer.bos_token_id, *ids]
    return list(ids)


def write_template(template: PromptTemplate, folder: str) -> str:
    path = os.path.join(folder, TEMPLATE_FILE)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(template.to_json())
    return path


def read_template(folder: str) -> PromptTemplate:
    with open(os.path.join(folder, TEMPLATE_FILE), encoding="utf-8") as handle:
        return PromptTemplate.from_json(handle.read())

"""Adapters as the MLflow registry holds them: everything needed to load one in another pod.

A registered version's source is the training run's `adapter` artifact folder:
the LoRA files, the tokenizer, `prompt_template.json`, `base_model.json` (id,
requested revision, resolved commit, weights hash) and, for the tiny local base
model, the base model itself under `base/`. Loading goes through the alias, so
evaluation and serving in any pod see the version the alias points at, never a
path on another machine.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from llm_platform.home_layout import PRODUCTION_ALIAS
from llm_platform.model.prompts import PromptTemplate, read_template

ADAPTER_ARTIFACT = "adapter"
BASE_INFO_FILE = "base_model.json"
BASE_SUBDIR = "base"
TINY_LOCAL = "tiny-local"


class RegistryError(RuntimeError):
    """The registered model, alias or its artifacts are missing or incomplete."""


@dataclass(frozen=True)
class RegisteredAdapter:
    """A registered adapter loaded onto a device, with what identifies it."""

    model: Any
    tokenizer: Any
    version: str
    prompt_template: PromptTemplate
    base_model: str
    base_commit: str | None
    run_id: str
    adapter_dir: str


def _client(client_or_resource):
    """An MlflowClient from a client, or from a resource with a `client()` method."""
    return (
        client_or_resource.client()
        if hasattr(client_or_resource, "client") and callable(client_or_resource.client)
        else client_or_resource
    )


def registered_version(client_or_resource, registered_model: str, alias: str = PRODUCTION_ALIAS) -> str | None:
    """The version number `alias` points at, or None when the model or alias does not exist (one registry call)."""
    from llm_platform.resources.mlflow import version_by_alias

    version = version_by_alias(_client(client_or_resource), registered_model, alias)
    return None if version is None else str(version.version)


def download_registered_adapter(
    client_or_resource, registered_model: str, *, alias: str = PRODUCTION_ALIAS, cache_dir: str | None = None
) -> tuple[Any, str]:
    """(model version, local folder) of the alias's adapter artifacts, downloaded once per source run."""
    from llm_platform.resources.mlflow import version_by_alias

    client = _client(client_or_resource)
    version = version_by_alias(client, registered_model, alias)
    if version is None:
        raise RegistryError(
            f"registered model {registered_model!r} has no {alias!r} alias yet; promote "
            "an adapter first (materialize production_model)"
        )
    if not version.run_id:
        raise RegistryError(
            f"{registered_model} version {version.version} has no source run; register it from a lora_adapter run"
        )
    # Keyed by run id: a run's artifacts never change, while version numbers repeat across registries.
    root = os.path.join(cache_dir or os.path.join(tempfile.gettempdir(), "llm_platform_registry"), version.run_id)
    folder = os.path.join(root, ADAPTER_ARTIFACT)
    if not os.path.isfile(os.path.join(folder, BASE_INFO_FILE)):
        os.makedirs(root, exist_ok=True)
        client.download_artifacts(version.run_id, ADAPTER_ARTIFACT, root)
    for required in (BASE_INFO_FILE, "prompt_template.json", "adapter_config.json"):
        if not os.path.isfile(os.path.join(folder, required)):
            raise RegistryError(
                f"{registered_model} version {version.version} (run "
                f"{version.run_id}) lacks {ADAPTER_ARTIFACT}/{required}; "
                "it was registered by an older platform: retrain and promote it again"
            )
    return version, folder


def load_registered_adapter(
    client_or_resource,
    registered_model: str,
    *,
    alias: str = PRODUCTION_ALIAS,
    device: str = "auto",
    cache_dir: str | None = None,
) -> RegisteredAdapter:
    """The alias's adapter on its base model (exact commit), on `device`, in eval mode."""
    from llm_platform.model.loop import select_device
    from llm_platform.model.training import load_adapter

    version, folder = download_registered_adapter(
        client_or_resource, registered_model, alias=alias, cache_dir=cache_dir
    )
    with open(os.path.join(folder, BASE_INFO_FILE), encoding="utf-8") as handle:
        base = json.load(handle)
    base_path = os.path.join(folder, BASE_SUBDIR) if base["kind"] == TINY_LOCAL else base["name"]
    torch_device, dtype = select_device(device)
    model, tokenizer = load_adapter(base_path, folder, revision=base.get("commit"), torch_dtype=dtype)
    return RegisteredAdapter(
        model=model.to(torch_device),
        tokenizer=tokenizer,
        version=str(version.version),
        prompt_template=read_template(folder),
        base_model=base["name"],
        base_commit=base.get("commit"),
        run_id=version.run_id,
        adapter_dir=folder,
    )

"""What an evaluation or a registered adapter was made from: code version and packaged files.

Kept apart from the Dagster module so the service and scripts can record the
same facts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from importlib import metadata

from llm_platform.model.base_model import BaseModelInfo
from llm_platform.model.registry import BASE_INFO_FILE, BASE_SUBDIR, TINY_LOCAL

PACKAGE = "llm_platform"


def code_version() -> dict[str, str]:
    """The installed package version and, where the code runs from a git checkout, its commit."""
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {"package_version": version, "git_commit": _git_commit() or "unknown"}


def _git_commit() -> str | None:
    folder = os.path.dirname(os.path.abspath(__file__))
    if shutil.which("git") is None:
        return None
    try:
        done = subprocess.run(
            ["git", "-C", folder, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def package_for_registry(adapter_dir: str, base: BaseModelInfo) -> None:
    """Put next to the adapter what another pod needs to load it: base model identity and, for the tiny LM, the base
    itself.

    A configured base is referenced by id and commit (every GPU pod has a hub
    cache); the tiny LM exists nowhere else, and is a few MB.
    """
    with open(os.path.join(adapter_dir, BASE_INFO_FILE), "w", encoding="utf-8") as handle:
        json.dump({**dataclasses.asdict(base), "weight_files": list(base.weight_files)}, handle, indent=2)
    if base.kind == TINY_LOCAL:
        target = os.path.join(adapter_dir, BASE_SUBDIR)
        shutil.rmtree(target, ignore_errors=True)
        from llm_platform.storage_files import local_path

        shutil.copytree(local_path(base.path), target, ignore=shutil.ignore_patterns(BASE_INFO_FILE))

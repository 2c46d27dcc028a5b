"""The tree keeps its two worlds apart and the code location starts light."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import llm_platform

PACKAGE = Path(llm_platform.__file__).parent
DOMAINS = ("documents", "index", "model", "serving")
# The Dagster modules of each domain; every other module of a domain is plain logic.
DAGSTER_MODULES = {"assets.py", "embedding_assets.py", "sft_assets.py"}
HEAVY = (
    "torch",
    "transformers",
    "peft",
    "lancedb",
    "scipy",
    "datasketch",
    "sentence_transformers",
    "pandera",
    "trafilatura",
    "mlflow",
    "sklearn",
)


def _all_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_domain_logic_modules_never_import_dagster():
    offenders = [
        str(path.relative_to(PACKAGE))
        for domain in DOMAINS
        for path in sorted((PACKAGE / domain).glob("*.py"))
        if path.name not in DAGSTER_MODULES and "dagster" in _all_imports(path)
    ]
    assert offenders == []


@pytest.mark.parametrize("module", ["llm_platform.definitions", "llm_platform.cli"])
def test_importing_the_code_location_or_cli_loads_no_heavy_library(module):
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = set(
        json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    )
    assert sorted(set(HEAVY) & loaded) == []


def _threads_after_import(module: str) -> list[str]:
    code = f"import json, threading, {module}; print(json.dumps([t.name for t in threading.enumerate()]))"
    return json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def test_the_code_location_starts_no_thread_so_step_workers_can_fork_from_it():
    # The multiprocess executor preloads llm_platform.definitions in a forkserver and forks
    # every step from it; a thread running there at fork time (LanceDB's event loop, say)
    # can leave a child with a lock held by a thread that does not exist in it.
    assert _threads_after_import("llm_platform.definitions") == ["MainThread"]


def test_the_thread_guard_sees_a_library_that_starts_one():
    assert len(_threads_after_import("lancedb")) > 1, (
        "lancedb starts its event loop on import; the guard above must be able to see that"
    )


def modules_defining(root: Path, function: str) -> list[str]:
    """The files under `root` (relative paths) that define a top-level function named `function`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.FunctionDef) and node.name == function for node in tree.body):
            found.append(path.relative_to(root).as_posix())
    return found


@pytest.mark.parametrize("function", ["format_prompt", "encode_prompt"])
def test_one_prompt_function_formats_every_prompt(function):
    assert modules_defining(PACKAGE, function) == ["model/prompts.py"]


def test_a_second_prompt_function_is_found(tmp_path: Path):
    (tmp_path / "prompts.py").write_text("def format_prompt(template, instruction):\n    return ''\n", encoding="utf-8")
    (tmp_path / "training.py").write_text(
        "def format_prompt(instruction, template):\n    return ''\n", encoding="utf-8"
    )
    assert modules_defining(tmp_path, "format_prompt") == ["prompts.py", "training.py"]

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
HEAVY = ("torch", "transformers", "peft", "lancedb", "scipy", "datasketch", "sentence_transformers", "pandera", "trafilatura", "mlflow", "sklearn")


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
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout))
    assert sorted(set(HEAVY) & loaded) == []

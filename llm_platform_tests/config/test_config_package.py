"""The config package keeps one import path: every public name of its
modules is importable from `llm_platform.config`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import llm_platform.config

PACKAGE = Path(llm_platform.config.__file__).parent


def defined_names(module: Path) -> list[str]:
    """The public names a module defines at its top level: classes, functions, constants."""
    names = []
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names.extend(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [name for name in names if not name.startswith("_")]


def unexported(package: Path, exported: list[str]) -> list[str]:
    """`module.name` for each public name of the package's modules that `exported` leaves out."""
    return sorted(
        f"{path.stem}.{name}"
        for path in package.glob("*.py")
        if path.name != "__init__.py"
        for name in defined_names(path)
        if name not in exported
    )


def test_every_public_name_of_the_config_modules_is_exported_by_the_package():
    assert unexported(PACKAGE, llm_platform.config.__all__) == []


def test_a_name_the_package_leaves_out_is_reported():
    exported = [name for name in llm_platform.config.__all__ if name != "GateSettings"]

    assert unexported(PACKAGE, exported) == ["gates.GateSettings"]


def test_every_exported_name_is_importable_from_the_package():
    assert [name for name in llm_platform.config.__all__ if not hasattr(llm_platform.config, name)] == []

"""Arrows point down: no module imports a module of a higher layer, and no modules import each other in a loop.

The layers, lowest first (docs/layout.md explains them). Modules of one layer may
import each other (without circles); a module imports only its own layer and
those below. Every module must belong to a layer, so a new one is placed on purpose.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import llm_platform
from llm_platform_tests.layout.import_graph import (
    Graph,
    absolute_imports,
    back_arrows,
    circles,
    import_graph,
    module_names,
    without,
)

PACKAGE = Path(llm_platform.__file__).parent
BENCHMARKS = PACKAGE.parent / "benchmarks"
TESTS = "llm_platform_tests"

# (layer, the modules in it): a package name covers everything below it; the root package only itself
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "floor",
        (
            "llm_platform",
            "llm_platform.config",
            "llm_platform.datasets",
            "llm_platform.home_layout",
            "llm_platform.identity",
            "llm_platform.lance_database",
            "llm_platform.library_warnings",
            "llm_platform.metadata",
            "llm_platform.model_paths",
            "llm_platform.pod_specs",
            "llm_platform.readers",
            "llm_platform.rules",
            "llm_platform.segment_log",
            "llm_platform.shards",
            "llm_platform.storage_files",
            "llm_platform.tiny_model_notice",
        ),
    ),
    ("resources", ("llm_platform.resources",)),
    ("documents", ("llm_platform.documents",)),
    ("index", ("llm_platform.index",)),
    ("model", ("llm_platform.model",)),
    ("serving", ("llm_platform.serving",)),
    (
        "top",
        (
            "llm_platform.automation",
            "llm_platform.cli",
            "llm_platform.dagster_commands",
            "llm_platform.definitions",
            "llm_platform.demo",
            "llm_platform.local_instance",
        ),
    ),
)


def layer_of(module: str, layers: tuple[tuple[str, tuple[str, ...]], ...] = LAYERS) -> int:
    """The rank of the layer that holds `module` (its longest matching name wins)."""
    matches = [
        (len(name), rank)
        for rank, (_, names) in enumerate(layers)
        for name in names
        if module == name or ("." in name and module.startswith(f"{name}."))
    ]
    if not matches:
        raise LookupError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return max(matches)[1]


GRAPH = import_graph(PACKAGE)


def test_every_module_belongs_to_a_layer():
    unplaced = []
    for module in sorted(module_names(PACKAGE)):
        try:
            layer_of(module)
        except LookupError:
            unplaced.append(module)
    assert unplaced == []


def test_no_module_imports_a_higher_layer():
    assert back_arrows(GRAPH, layer_of) == []


def test_no_modules_import_each_other_in_a_loop():
    assert circles(GRAPH) == []


def imports_of_tests(folder: Path) -> dict[str, list[str]]:
    """Each script in `folder` that imports the test package, and what it imports from it."""
    found = {
        path.name: sorted(name for name in absolute_imports(path) if name.split(".")[0] == TESTS)
        for path in sorted(folder.glob("*.py"))
    }
    return {name: names for name, names in found.items() if names}


def test_benchmarks_never_import_the_tests():
    assert imports_of_tests(BENCHMARKS) == {}


def test_a_benchmark_importing_a_test_fixture_is_named(tmp_path: Path):
    (tmp_path / "bench.py").write_text(
        "def main():\n    from llm_platform_tests.conftest import CONFIG\n", encoding="utf-8"
    )
    assert imports_of_tests(tmp_path) == {"bench.py": ["llm_platform_tests.conftest"]}


SYNTHETIC_LAYERS = (("floor", ("pkg.base",)), ("domain", ("pkg.domain",)))
SYNTHETIC: Graph = {
    "pkg.base": {"pkg.domain.a"},  # a back-arrow: floor imports a domain
    "pkg.domain.a": {"pkg.domain.b"},
    "pkg.domain.b": {"pkg.domain.c"},
    "pkg.domain.c": {"pkg.domain.a"},  # closes the loop a → b → c → a
    "pkg.domain.d": {"pkg.base"},
}


def test_a_loop_of_three_modules_is_reported_as_one_circle():
    assert circles(SYNTHETIC) == [["pkg.domain.a", "pkg.domain.b", "pkg.domain.c"]]


def test_an_import_into_a_higher_layer_is_reported_and_one_into_a_lower_is_not():
    assert back_arrows(SYNTHETIC, lambda module: layer_of(module, SYNTHETIC_LAYERS)) == [("pkg.base", "pkg.domain.a")]


def test_an_allowed_edge_no_longer_closes_its_circle():
    assert circles(without(SYNTHETIC, {("pkg.domain.c", "pkg.domain.a")})) == []


def test_a_new_top_level_module_is_in_no_layer_until_placed():
    with pytest.raises(LookupError, match="llm_platform.brand_new is in no layer"):
        layer_of("llm_platform.brand_new")


def test_a_module_in_no_layer_is_named():
    with pytest.raises(LookupError, match="pkg.elsewhere is in no layer"):
        layer_of("pkg.elsewhere", SYNTHETIC_LAYERS)


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_the_graph_reads_function_level_and_relative_imports(tmp_path: Path):
    _write(tmp_path, "pkg/__init__.py", "")
    _write(tmp_path, "pkg/base.py", "def late():\n    from pkg.domain import b\n")
    _write(tmp_path, "pkg/domain/__init__.py", "from .a import VALUE\n")
    _write(tmp_path, "pkg/domain/a.py", "from . import b\nfrom ..base import late\nVALUE = 1\n")
    _write(tmp_path, "pkg/domain/b.py", "import pkg.domain.a\n")
    assert import_graph(tmp_path / "pkg") == {
        "pkg": set(),
        "pkg.base": {"pkg.domain", "pkg.domain.b"},
        "pkg.domain": {"pkg.domain.a"},
        "pkg.domain.a": {"pkg.domain", "pkg.domain.b", "pkg.base"},
        "pkg.domain.b": {"pkg.domain.a"},
    }

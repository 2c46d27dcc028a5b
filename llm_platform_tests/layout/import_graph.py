"""The import graph of a package, read with `ast`, and the two faults a layout can have: circles and back-arrows."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from pathlib import Path

Graph = dict[str, set[str]]


def module_names(package: Path) -> dict[str, Path]:
    """Dotted name of every module under `package` (a package's `__init__` under the package's own name)."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The dotted names one import statement may mean: a module, or a name inside one."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        # A package's `__init__` is its own anchor; a plain module's anchor is its package.
        anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
        base = ".".join(anchor + ([node.module] if node.module else []))
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def absolute_imports(path: Path) -> set[str]:
    """The dotted names a file imports by absolute name, anywhere in its body."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _resolved(name: str, modules: Iterable[str]) -> str | None:
    known = set(modules)
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(package: Path) -> Graph:
    """module → the package's modules it imports anywhere in its body (module level, functions, TYPE_CHECKING)."""
    modules = module_names(package)
    graph: Graph = {}
    for module, path in modules.items():
        imports = (
            node
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Import | ast.ImportFrom)
        )
        targets = {
            _resolved(name, modules) for node in imports for name in _imported(node, module, path.name == "__init__.py")
        }
        graph[module] = {target for target in targets if target and target != module}
    return graph


def without(graph: Graph, edges: Iterable[tuple[str, str]]) -> Graph:
    """`graph` less `edges`."""
    dropped = set(edges)
    return {
        module: {target for target in targets if (module, target) not in dropped} for module, targets in graph.items()
    }


def circles(graph: Graph) -> list[list[str]]:
    """Every set of modules that import each other, directly or in a loop
    (strongly connected, more than one module), sorted.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == module:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def back_arrows(graph: Graph, layer_of: Callable[[str], int]) -> list[tuple[str, str]]:
    """Every import from a module into a module of a higher layer, sorted."""
    return sorted(
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    )

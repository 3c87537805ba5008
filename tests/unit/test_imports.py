"""The package's modules import each other without a cycle, and no import is hidden inside a
function to dodge one."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "event_driven_etl"

CONSTRUCT_MODULES = sorted(p for p in PACKAGE.glob("*.py"))
"""The constructs' modules: none imports a module of the package inside a function (the
package's ``__init__`` loads its constructs lazily, and only under TYPE_CHECKING eagerly)."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The package's modules an import statement names (``from . import a, b`` names both)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("event_driven_etl")]
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - node.level + 1] if node.level else []
    module = [*base, *(node.module.split(".") if node.module else [])]
    if not module or module[0] != "event_driven_etl":
        return []
    if node.module is None:  # from . import a, b
        return [".".join([*module, a.name]) for a in node.names]
    return [".".join(module)]


def _top_level_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(_imported(path, node))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in _top_level_imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle, as the modules along it, or [] when there is none."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> list[str]:
        if module in visiting:
            return [*visiting[visiting.index(module) :], module]
        if module in done:
            return []
        visiting.append(module)
        for imported in sorted(graph.get(module, ())):
            cycle = visit(imported)
            if cycle:
                return cycle
        visiting.pop()
        done.add(module)
        return []

    for module in sorted(graph):
        cycle = visit(module)
        if cycle:
            return cycle
    return []


def test_the_package_s_modules_import_each_other_without_a_cycle() -> None:
    graph = _graph()
    assert "event_driven_etl._hygiene" in graph["event_driven_etl._defaults"]
    assert _cycle(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_construct_module_imports_the_package_inside_a_function() -> None:
    hidden = []
    for path in CONSTRUCT_MODULES:
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and _imported(path, node):
                    hidden.append(f"{path.name}:{node.lineno} in {function.name}()")
    assert hidden == []

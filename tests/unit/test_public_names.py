"""The package's face: public modules show only public names, and every public class names
``event_driven_etl`` as its module, so docs and ``help()`` show where users import it from."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import event_driven_etl

PACKAGE = Path(event_driven_etl.__file__).parent
PUBLIC_MODULES = sorted(
    p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_") or p.stem == "__init__"
)
"""The modules without a leading underscore (and the package itself)."""


def _defined_names(module: str) -> set[str]:
    """The names a module's own top level defines (not those it imports)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


@pytest.mark.parametrize("module", [m for m in PUBLIC_MODULES if m != "__init__"])
def test_a_public_module_defines_only_the_names_it_exports(module: str) -> None:
    imported = importlib.import_module(f"event_driven_etl.{module}")
    exported = set(imported.__all__)
    public = {n for n in _defined_names(module) if not n.startswith("_")}
    assert public == exported, f"prefix with _ or add to __all__: {sorted(public ^ exported)}"


def test_the_construct_modules_export_only_the_package_s_public_names() -> None:
    documented_apart = {"cost"}  # event_driven_etl.cost is imported by its own path
    for module in PUBLIC_MODULES:
        if module in ("__init__", *documented_apart):
            continue
        exported = importlib.import_module(f"event_driven_etl.{module}").__all__
        assert set(exported) <= set(event_driven_etl.__all__), module


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("retry", "RetryPolicy"),
        ("retry", "Batching"),
        ("pipeline", "EventDrivenEtlPipeline"),
        ("glue_job", "GlueEtlJob"),
        ("state_machine", "EtlStateMachine"),
        ("trigger", "TriggerFunction"),
        ("backfill", "Backfill"),
        ("errors", "ValidationError"),
        ("_glue_versions", "NewerGlueVersion"),
        ("table_format", "TableFormat"),
        ("table_maintenance", "TableMaintenance"),
    ],
)
def test_a_public_class_names_the_package_as_its_module_however_it_is_imported(
    module: str, name: str
) -> None:
    """Set where the class is defined, not when the package hands it out: a class imported
    from its defining module first is shown as ``event_driven_etl.RetryPolicy`` too."""
    value = getattr(importlib.import_module(f"event_driven_etl.{module}"), name)
    assert value.__module__ == "event_driven_etl"
    assert getattr(event_driven_etl, name) is value
    assert name in event_driven_etl.__all__

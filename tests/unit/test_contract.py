"""Each contract value is defined once, in ``event_driven_etl/_contract.py``: no other module
writes it as a literal (a key prefix, a file suffix, a job argument, a limit).

A module that needs a contract value imports it; the trigger Lambda's asset, which cannot
import the package, receives the values it needs in its environment from the construct.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from event_driven_etl import _contract

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "event_driven_etl"

SCANNED_PATHS = (
    "src/event_driven_etl/*.py",
    "src/event_driven_etl/runtime/**/*.py",
    "src/event_driven_etl/testing/**/*.py",
)
"""The files scanned for contract literals (globs from the repository root): the constructs,
the trigger's and the Glue job's runtime, and the offline harness."""


def contract_literals() -> dict[str, str | int]:
    """The contract's values that are distinctive enough to look for: each number, and each
    string that looks like a prefix, a file suffix or an argument name (``"rows"`` or
    ``"fail"`` would also match unrelated words)."""
    found: dict[str, str | int] = {}
    for name, value in vars(_contract).items():
        if not name.isupper() or isinstance(value, bool):
            continue
        if isinstance(value, int) or (
            isinstance(value, str) and ("/" in value or "." in value or value.startswith("--"))
        ):
            found[name] = value
    return found


def _docstrings(tree: ast.AST) -> set[int]:
    """Ids of the string constants that are docstrings (of a module, class or function, or
    the string after an assignment that documents it): prose, not code."""
    ids = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)  # a lambda's body is an expression
        for statement in body if isinstance(body, list) else []:
            if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                ids.add(id(statement.value))
    return ids


def _constants(tree: ast.AST) -> Iterator[tuple[int, Any]]:
    """(line, value) of each literal in code: strings (f-string parts too) and numbers.

    Arithmetic is not folded: ``24 * 3600`` is a day in many places (a retry's longest wait),
    and only by coincidence EventBridge's longest event age; the 185 retries beside that age
    are what a restated EventBridge retry policy is found by.
    """
    prose = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in prose:
            yield node.lineno, node.value


def literals_in(source: str, where: str) -> list[str]:
    """Each contract value written as a literal in ``source``: ``where:line: NAME``."""
    literals = contract_literals()
    found = []
    for line, value in _constants(ast.parse(source)):
        for name, contract_value in literals.items():
            if isinstance(contract_value, str):
                hit = isinstance(value, str) and contract_value in value
            else:
                hit = type(value) is int and value == contract_value
            if hit:
                found.append(f"{where}:{line}: {name} ({contract_value!r})")
    return found


def _scanned_files() -> list[Path]:
    files = {p for pattern in SCANNED_PATHS for p in ROOT.glob(pattern)}
    return sorted(files - {PACKAGE / "_contract.py"})


def test_each_contract_value_is_written_only_in_the_contract() -> None:
    assert len(_scanned_files()) > 50
    found = [
        hit
        for path in _scanned_files()
        for hit in literals_in(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == [], "import these from event_driven_etl._contract:\n" + "\n".join(found)


def test_the_contract_has_the_values_the_scan_looks_for() -> None:
    literals = contract_literals()
    assert {"MANIFEST_PREFIX", "INLINE_LIMIT_BYTES", "EVENTBRIDGE_MAX_RETRY_ATTEMPTS"} <= set(
        literals
    )
    assert "RUNS_DIR" not in literals  # "_runs" alone is too common a word to look for


@pytest.mark.parametrize(
    "source",
    [
        'PREFIX = "manifests/"\n',
        'uri = f"s3://{bucket}/manifests/{key}"\n',
        "LIMIT = 16_000\n",
        "retries = 185\n",
        "age = Duration.seconds(86_400)\n",
        'arguments = {"--batch_id": name}\n',
        'key = prefix + ".summary.json"\n',
    ],
)
def test_the_scan_finds_a_contract_value_written_as_a_literal(source: str) -> None:
    assert literals_in(source, "x.py") != []


def test_the_scan_leaves_docstrings_and_other_values_alone() -> None:
    source = (
        '"""Writes ``manifests/`` and ``--batch_id``."""\n'
        "def f():\n"
        '    """Reads manifests/."""\n'
        "    return 7 * 24 * 3600, 16_001, 'processed', True\n"
    )
    assert literals_in(source, "x.py") == []

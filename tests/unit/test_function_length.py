"""Small functions: no function in ``src/`` holds more than 80 lines of code.

Counted without the signature and the docstring: a construct's ``__init__`` takes every prop
keyword-only, typed, with its ``:param ...: ... Default: ...`` text (the pipeline's signature
and docstring alone are over a hundred lines), and that documentation is the API reference,
not logic to split up. What is left, the body, is the composition that must stay short.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 80


def code_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement after the docstring to the function's end."""
    body = function.body
    if (
        len(body) > 1
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]
    end = function.end_lineno or body[-1].lineno
    return end - body[0].lineno + 1


def long_functions(source: str, where: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = code_lines(node)
            if lines > LIMIT:
                found.append(f"{where}:{node.lineno} {node.name}: {lines} lines of code")
    return found


def test_no_function_in_src_has_more_than_80_lines_of_code() -> None:
    files = sorted((ROOT / "src").rglob("*.py"))
    assert len(files) > 50
    found = [
        hit
        for path in files
        for hit in long_functions(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == []


def test_fails_a_function_of_81_lines_of_code_whatever_its_docstring() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(81))
    long = f'def f(\n    a: int,\n) -> None:\n    """Short."""\n{body}'
    assert long_functions(long, "x.py") == ["x.py:1 f: 81 lines of code"]
    short = 'def f() -> None:\n    """' + "Documented.\n" * 200 + '"""\n    return None\n'
    assert long_functions(short, "x.py") == []

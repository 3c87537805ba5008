"""The project's tools keep working on the tree a user actually has: after `cdk synth` in an
example (cdk.out holds copies of the runtime code), and without jsii where none is needed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Two asset copies of one module and a type error: what `cdk synth` leaves in cdk.out/.
PLANTED = 'def handler(event: dict, context: object) -> int:\n    return "not an int"\nimport os\n'


def _tree_after_synth(tmp_path: Path, pyproject: str) -> Path:
    """A small tree with the project's tool configuration and examples/basic/cdk.out/ as
    `cdk synth` leaves it: every path of mypy's `files` exists, each clean."""
    tree = tmp_path / "tree"
    for name in ("src/pkg", "tests", "examples/basic", "docs"):
        (tree / name).mkdir(parents=True)
    (tree / "docs/generate.py").write_text('"""A generator."""\n')
    (tree / "src/pkg/__init__.py").write_text('"""A package."""\n')
    (tree / "tests/__init__.py").write_text("")
    (tree / "examples/basic/app.py").write_text('"""An app."""\n')
    (tree / ".projenrc.py").write_text('"""projen."""\n')
    (tree / "pyproject.toml").write_text(pyproject)
    for asset in ("asset.0123abcd", "asset.4567ef01"):
        folder = tree / "examples/basic/cdk.out" / asset
        folder.mkdir(parents=True)
        shutil.copy(ROOT / "src/event_driven_etl/runtime/trigger/s3_events.py", folder)
        (folder / "handler.py").write_text(PLANTED)
    return tree


def _run(tool: list[str], tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYPY_CACHE_DIR": str(tree / ".mypy_cache")}
    return subprocess.run(
        tool, cwd=tree, capture_output=True, text=True, check=False, env=env, timeout=300
    )


def _without_cdk_out_exclusions(pyproject: str) -> str:
    lines = [
        line
        for line in pyproject.splitlines()
        if not (line.startswith(("exclude", "extend-exclude")) and "cdk" in line)
    ]
    return "\n".join(lines) + "\n"


def test_mypy_does_not_read_cdk_out_after_an_example_synth(tmp_path: Path) -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    tree = _tree_after_synth(tmp_path, pyproject)
    result = _run([str(BIN / "mypy")], tree)
    assert result.returncode == 0, result.stdout + result.stderr


def test_fails_mypy_on_cdk_out_without_the_exclusion(tmp_path: Path) -> None:
    """The control for the test above: the planted tree does break mypy's configuration
    when the exclusion is missing (so the passing test proves the exclusion works)."""
    tree = _tree_after_synth(
        tmp_path, _without_cdk_out_exclusions((ROOT / "pyproject.toml").read_text())
    )
    result = _run([str(BIN / "mypy")], tree)
    assert result.returncode != 0
    assert "cdk.out" in result.stdout + result.stderr


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]])
def test_ruff_does_not_read_cdk_out_outside_a_git_work_tree(
    tmp_path: Path, command: list[str]
) -> None:
    tree = _tree_after_synth(tmp_path, (ROOT / "pyproject.toml").read_text())
    assert _run([str(BIN / "ruff"), *command], tree).returncode == 0
    control = _tree_after_synth(
        tmp_path / "control", _without_cdk_out_exclusions((ROOT / "pyproject.toml").read_text())
    )
    assert _run([str(BIN / "ruff"), *command], control).returncode != 0


def _modules_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def _cdk(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in ("jsii", "aws_cdk", "constructs"))


def test_importing_the_cost_model_does_not_start_jsii() -> None:
    modules = _modules_after(
        "import event_driven_etl.cost\n"
        "event_driven_etl.cost.estimate_glue_cost(objects_per_day=10, object_size_mb=1.0)"
    )
    assert "event_driven_etl.cost" in modules
    assert _cdk(modules) == []


def test_the_constructs_load_on_first_use_under_their_public_path() -> None:
    """The control: asking for a construct does load aws-cdk-lib (so the test above would
    see jsii if the package imported the constructs eagerly), and the class reports the
    public path it is imported from."""
    modules = _modules_after(
        "from event_driven_etl import EventDrivenEtlPipeline\n"
        "assert EventDrivenEtlPipeline.__module__ == 'event_driven_etl'"
    )
    assert "jsii" in modules and "aws_cdk" in modules


def test_generated_files_name_the_python_projenrc_that_generates_them() -> None:
    generated = json.loads((ROOT / ".projen/files.json").read_text())["files"]
    assert ".gitignore" in generated
    for name in generated:
        headers = [
            line for line in (ROOT / name).read_text().splitlines() if "Generated by projen" in line
        ]
        assert headers != [], name
        for header in headers:
            assert "edit .projenrc.py and run" in header, name
            assert "PROJEN_DISABLE_POST=1 python .projenrc.py" in header, name

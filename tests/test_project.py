"""The project's own promises: generated files are current, examples synthesize clean."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import App

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.parent for p in (ROOT / "examples").glob("*/app.py"))


def test_api_md_is_generated_from_the_current_docstrings(tmp_path: Path) -> None:
    fresh = tmp_path / "API.md"
    griffe2md = Path(sys.executable).parent / "griffe2md"
    subprocess.run([str(griffe2md), "event_driven_etl", "-o", str(fresh)], cwd=ROOT, check=True)
    assert fresh.read_text() == (ROOT / "API.md").read_text(), "API.md is stale: run scripts/docs"


def test_projen_leaves_the_tree_unchanged(tmp_path: Path) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    copy = tmp_path / "copy"
    for name in tracked:
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    subprocess.run(["git", "init", "-q"], cwd=copy, check=True)
    env = {**os.environ, "PROJEN_DISABLE_POST": "1"}
    subprocess.run([sys.executable, ".projenrc.py"], cwd=copy, check=True, env=env)
    changed = [
        n
        for n in tracked
        if (copy / n).is_file() and (copy / n).read_bytes() != (ROOT / n).read_bytes()
    ]
    generated = json.loads((copy / ".projen" / "files.json").read_text())["files"]
    missing = [n for n in generated if (copy / n).exists() and not (ROOT / n).exists()]
    assert changed == [] and missing == [], (
        f"run .projenrc.py: changed {changed}, missing {missing}"
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example_synthesizes_without_cfn_lint_errors(example: Path, tmp_path: Path) -> None:
    from cfnlint.api import lint_all

    module = runpy.run_path(str(example / "app.py"))
    app = App(outdir=str(tmp_path))
    stack = module["build"](app)
    assembly = app.synth()
    template = assembly.get_stack_by_name(stack.stack_name).template
    assert template["Resources"]
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    matches = lint_all(path.read_text())
    errors = [m for m in matches if m.rule.id.startswith("E")]
    assert errors == [], "\n".join(str(m) for m in errors)
    cdk_json = json.loads((example / "cdk.json").read_text())
    assert cdk_json["notices"] is False and cdk_json["context"]["cli-telemetry"] is False

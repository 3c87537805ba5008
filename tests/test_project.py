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
    generator = ROOT / "docs" / "generate.py"
    subprocess.run([sys.executable, str(generator), "-o", str(fresh)], cwd=ROOT, check=True)
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


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example_cdk_json_app_runs_as_written_without_an_active_venv(
    example: Path, tmp_path: Path
) -> None:
    """What `cdk synth` runs in the example folder, from a shell where no venv is active."""
    command = json.loads((example / "cdk.json").read_text())["app"]
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    result = subprocess.run(
        command,
        shell=True,
        cwd=example,
        env={**env, "PATH": path, "CDK_OUTDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert list(tmp_path.glob("*.template.json"))


def _keyword_props(cls: type) -> list[str]:
    import inspect

    signature = inspect.signature(cls.__init__)  # type: ignore[misc]  # __init__ read off a class object
    return [p.name for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY]


def test_readme_props_table_lists_every_pipeline_prop() -> None:
    from event_driven_etl import EventDrivenEtlPipeline

    readme = (ROOT / "README.md").read_text()
    table = readme.split("### Props of `EventDrivenEtlPipeline`", 1)[1].split("\n## ", 1)[0]
    missing = [p for p in _keyword_props(EventDrivenEtlPipeline) if f"`{p}`" not in table]
    assert missing == []


def test_every_optional_prop_documents_its_default() -> None:
    import inspect

    import event_driven_etl

    for name in ("EventDrivenEtlPipeline", "EtlStateMachine", "GlueEtlJob", "TriggerFunction"):
        cls = getattr(event_driven_etl, name)
        doc = inspect.getdoc(cls.__init__) or ""
        params = inspect.signature(cls.__init__).parameters.values()
        for param in params:
            if param.kind is not param.KEYWORD_ONLY or param.default is inspect.Parameter.empty:
                continue
            text = doc.split(f":param {param.name}:", 1)[1].split(":param ", 1)[0]
            assert "Default:" in text, f"{name}.{param.name} does not say its default"


def test_quick_start_commands_exist_and_ci_runs_the_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [
        line.split("#")[0].strip()
        for line in quick.split("```bash", 1)[1].split("```")[0].splitlines()
        if line.strip()
    ]
    assert commands == ["./scripts/demo", "./scripts/test"]
    for command in commands:
        assert os.access(ROOT / command, os.X_OK)
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_every_mutation_in_the_list_still_applies() -> None:
    """scripts/mutations.py re-runs the harness's mutation list; a mutation whose code
    moved would be reported, not run: keep the list current."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mutations", ROOT / "scripts/mutations.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stale = [m.name for m in module.MUTATIONS if m.old not in (ROOT / m.path).read_text()]
    assert stale == []
    assert len(module.MUTATIONS) >= 19

"""Secure by default, proven: cdk-nag, cfn-lint and checkov on every example and on the
default and maximal configurations, plus least privilege as an explicit table."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from cdk_nag import AwsSolutionsChecks

from event_driven_etl._hygiene import CHECKOV_REASONS
from tests.compliance.configurations import CONFIGURATIONS, ROOT

NAMES = sorted(CONFIGURATIONS)
CHECKOV = Path(os.environ.get("CHECKOV", ROOT / ".venv-checkov" / "bin" / "checkov"))


def _synth(name: str, tmp_path: Path, nag: bool = False) -> tuple[App, Stack, dict[str, Any]]:
    app = App(outdir=str(tmp_path / name))
    stack = CONFIGURATIONS[name](app)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    assembly = app.synth()
    return app, stack, assembly.get_stack_by_name(stack.stack_name).template


def _nag_violations(report_dir: Path) -> list[str]:
    report = json.loads((report_dir / "validation-report.json").read_text())
    found = []
    for plugin in report.get("pluginReports", []):
        for violation in plugin.get("violations", []):
            for construct in violation.get("violatingConstructs", []):
                found.append(f"{violation['ruleName']} at {construct['constructPath']}")
    return found


@pytest.mark.parametrize("name", NAMES)
def test_cdk_nag_aws_solutions_finds_nothing_unacknowledged(name: str, tmp_path: Path) -> None:
    with contextlib.suppress(RuntimeError):  # the report below says what failed
        _synth(name, tmp_path, nag=True)
    assert _nag_violations(tmp_path / name) == []


def _acknowledgements(stack: Stack) -> list[tuple[str, str, str]]:
    found = []
    for construct in stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in entry.data.items():
                    path = construct.node.path.removeprefix(stack.node.path + "/")
                    found.append((path, rule, reason))
    return sorted(set(found))


def test_every_acknowledgement_is_listed_with_its_reason(tmp_path: Path) -> None:
    """A new acknowledgement changes this list: review it (UPDATE_SNAPSHOTS=1 to rewrite)."""
    listed = {}
    for name in ("default", "maximal"):
        _, stack, _ = _synth(name, tmp_path)
        listed[name] = [list(a) for a in _acknowledgements(stack)]
    snapshot = ROOT / "tests" / "snapshots" / "nag_acknowledgements.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(json.dumps(listed, indent=2) + "\n")
    assert listed == json.loads(snapshot.read_text())
    for entries in listed.values():
        assert all(reason.strip() for _, _, reason in entries)


@pytest.mark.parametrize("name", NAMES)
def test_cfn_lint_finds_no_errors_or_warnings(name: str, tmp_path: Path) -> None:
    from cfnlint.api import lint_all

    _, _, template = _synth(name, tmp_path)
    matches = lint_all(json.dumps(template))
    problems = [str(m) for m in matches if m.rule.id[0] in "EW"]
    assert problems == []


def run_checkov(executable: Path, template: Path) -> dict[str, Any]:
    """checkov's JSON report; a crash (exit other than 0/1, or no report) fails, never passes."""
    result = subprocess.run(
        [
            str(executable),
            "-f",
            str(template),
            "--framework",
            "cloudformation",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), f"checkov crashed ({result.returncode}): {result.stderr}"
    assert result.stdout.strip(), "checkov printed no report"
    report = json.loads(result.stdout)
    return dict(report[0] if isinstance(report, list) else report)


@pytest.mark.parametrize("name", NAMES)
def test_checkov_fails_no_checks(name: str, tmp_path: Path) -> None:
    """No skip list: a user's own checkov run on the template reports 0 failed."""
    if not CHECKOV.exists():
        pytest.fail(f"checkov not installed at {CHECKOV}: run scripts/setup")
    _, _, template = _synth(name, tmp_path)
    path = tmp_path / f"{name}.template.json"
    path.write_text(json.dumps(template))
    report = run_checkov(CHECKOV, path)
    assert report["summary"]["passed"] > 50, "checkov checked almost nothing"
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in report["results"].get("failed_checks", [])
    ]
    assert failed == [], "\n".join(failed)
    # Every exception is in the template itself, with the documented reason.
    skipped = {
        (c["check_id"], c["check_result"].get("suppress_comment", ""))
        for c in report["results"].get("skipped_checks", [])
    }
    assert skipped and skipped <= set(CHECKOV_REASONS.items())
    assert report["summary"]["skipped"] == len(report["results"]["skipped_checks"])


def test_fails_a_checkov_that_crashes(tmp_path: Path) -> None:
    """A checkov that exits 2 and prints nothing must fail the check, not pass it."""
    fake = tmp_path / "checkov"
    fake.write_text("#!/bin/sh\nexit 2\n")
    fake.chmod(0o755)
    with pytest.raises(AssertionError, match="checkov crashed"):
        run_checkov(fake, tmp_path / "any.json")

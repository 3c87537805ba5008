"""Consumer apps (another stack's bucket, a Stage, a NestedStack) pass cdk-nag 3 and 2."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .consumer_apps import APPS, synth_with_cdk_nag

ROOT = Path(__file__).resolve().parents[2]
NAG2 = ROOT / ".nag2"
"""cdk-nag 2.x, installed beside the 3.x of .venv by scripts/setup (``pip --target``)."""


def _plugin_violations(outdir: Path) -> list[str]:
    report = json.loads((outdir / "validation-report.json").read_text())
    return [
        f"{violation['ruleName']} at {construct['constructPath']}"
        for plugin in report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]


@pytest.mark.parametrize("name", sorted(APPS))
def test_cdk_nag_3_passes_every_consumer_app(name: str, tmp_path: Path) -> None:
    try:
        synth_with_cdk_nag(str(tmp_path), name)
    except RuntimeError:
        pytest.fail(f"cdk-nag 3 failed synth: {_plugin_violations(tmp_path)}")
    assert _plugin_violations(tmp_path) == []


@pytest.mark.parametrize("name", sorted(APPS))
def test_cdk_nag_2_finds_nothing_unsuppressed(name: str, tmp_path: Path) -> None:
    assert (NAG2 / "cdk_nag").is_dir(), "cdk-nag 2.x missing: run scripts/setup"
    environment = {**os.environ, "PYTHONPATH": str(NAG2)}
    result = subprocess.run(
        [sys.executable, "-m", "tests.compliance.consumer_apps", str(tmp_path), name],
        check=False,
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reports = sorted(tmp_path.rglob("*NagReport.csv"))
    assert reports, f"cdk-nag 2 wrote no report: {result.stderr[-2000:]}"
    rows = [row for report in reports for row in csv.DictReader(report.open())]
    assert {row["Compliance"] for row in rows} >= {"Compliant", "Suppressed"}
    assert [
        (row["Rule ID"], row["Resource ID"])
        for row in rows
        if row["Compliance"] != "Compliant" and row["Compliance"] != "Suppressed"
    ] == []

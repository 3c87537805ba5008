"""The Quick start demo (`examples/basic/run_local.py`, what `./scripts/demo` runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.spark
def test_demo_reports_on_stdout_and_keeps_the_components_json_logs_off_it() -> None:
    result = subprocess.run(
        [sys.executable, "examples/basic/run_local.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    samples = sorted(p.name for p in (ROOT / "examples/basic/sample_data").iterdir())
    report = result.stdout.splitlines()
    assert [line for line in report if line.startswith("execution ")] != []
    assert all(line.endswith(": SUCCEEDED") for line in report if line.startswith("execution "))
    for name in samples:
        assert any(line.startswith("uploaded ") and line.endswith(name) for line in report)
    # The trigger's and the Glue script's log lines are one JSON object per line, each with
    # a "message": on stderr, never among the report's lines.
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith('{"')]
    assert any(entry.get("message") == "execution started" for entry in logged)
    assert not [line for line in report if line.startswith('{"')]

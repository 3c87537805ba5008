"""Issue #18: the pipeline works the first time away from the defaults (template-level
promises; the offline ones are in tests/e2e/test_configurations_offline.py)."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path

from aws_cdk import App

from event_driven_etl.runtime.glue.etl_job import summary_uri_of
from event_driven_etl.runtime.trigger.s3_events import INLINE_LIMIT_BYTES

ROOT = Path(__file__).resolve().parents[2]


def test_the_run_summary_sits_beside_its_report_whatever_the_bucket_is_called() -> None:
    report = "s3://logs.json.example/out.json/_runs/batch.json"
    assert summary_uri_of(report) == "s3://logs.json.example/out.json/_runs/batch.summary.json"


def test_the_readme_states_the_manifest_threshold_the_trigger_uses() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "64 KB" not in readme
    assert f"over {INLINE_LIMIT_BYTES:,} bytes of URIs" in readme


def test_bring_your_own_names_its_topic_in_the_stacks_partition(tmp_path: Path) -> None:
    module = runpy.run_path(str(ROOT / "examples/bring_your_own/app.py"))
    stack = module["build"](App(outdir=str(tmp_path / "cdk.out")))
    from aws_cdk.assertions import Template

    text = json.dumps(Template.from_stack(stack).to_json())
    assert not re.search(r'"arn:aws:sns:', text)
    assert "AWS::Partition" in text

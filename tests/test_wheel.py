"""A consumer's view: the built wheel installs, exposes the contract's names, and its
assets hash the same as the source tree's (so `cdk diff` is quiet after `pip install`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONSUMER = """
import json, sys
from aws_cdk import App, Stack
import event_driven_etl
from event_driven_etl import (EventDrivenEtlPipeline, RetryPolicy, TriggerFunction, EtlStateMachine,
                              GlueEtlJob, ValidationError, Batching)
from event_driven_etl.testing import LocalPipeline
app = App(outdir=sys.argv[1])
stack = Stack(app, "Consumer")
EventDrivenEtlPipeline(stack, "Pipeline")
template = app.synth().get_stack_by_name("Consumer").template
def asset(props):
    return props.get("Code", {}).get("S3Key") or props.get("Command", {}).get("ScriptLocation")
kinds = ("AWS::Lambda::Function", "AWS::Glue::Job")
resources = template["Resources"].values()
keys = sorted(json.dumps(asset(r["Properties"])) for r in resources if r["Type"] in kinds)
print(json.dumps({"module": event_driven_etl.__file__, "assets": keys}))
"""


def _consume(pythonpath: Path | None, outdir: Path) -> dict[str, object]:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    result = subprocess.run(
        [sys.executable, "-c", CONSUMER, str(outdir)],
        env=env,
        cwd=outdir.parent,
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_wheel_installs_with_package_data_and_stable_asset_hashes(tmp_path: Path) -> None:
    wheels = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(wheels)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    [wheel] = wheels.glob("event_driven_etl-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    (target / "event_driven_etl" / "runtime" / "trigger" / "__pycache__").mkdir(exist_ok=True)
    (target / "event_driven_etl" / "runtime" / "trigger" / "__pycache__" / "stale.pyc").write_bytes(
        b"x"
    )
    installed = _consume(target, tmp_path / "out-wheel")
    source = _consume(None, tmp_path / "out-source")
    assert str(installed["module"]).startswith(str(target))
    assert not str(source["module"]).startswith(str(target))
    assert installed["assets"] == source["assets"]

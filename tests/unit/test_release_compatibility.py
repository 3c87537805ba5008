"""Logical IDs are kept within a major version (README "Versioning"): an upgrade of the library
must not replace a deployed resource. Compared with the snapshot of the last release.

tests/snapshots/release-logical-ids.json holds release 0.1.0's logical IDs and resource types
(the first release: this baseline was taken when it was cut). A logical ID may be added in a
minor release; removing one or changing its type is a breaking change, so this test fails
until the next major version. At a release, refresh the baseline with
`UPDATE_RELEASE_SNAPSHOT=0.2.0 pytest tests/unit/test_release_compatibility.py` and commit it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aws_cdk import App, Duration, Environment, Stack
from aws_cdk import aws_glue as glue

from event_driven_etl import Batching, EventDrivenEtlPipeline, RetryPolicy

SNAPSHOT = Path(__file__).resolve().parent.parent / "snapshots" / "release-logical-ids.json"
ENV = Environment(account="111111111111", region="eu-west-1")


def _default(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline")


def _maximal(stack: Stack, *, batching: bool = True) -> None:
    """Every option that adds resources or changes settings, at once."""
    EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        key_prefix="incoming/",
        key_suffix=".csv",
        batching=(
            Batching(max_batch_size=500, max_batching_window=Duration.minutes(2))
            if batching
            else None
        ),
        retry_policy=RetryPolicy(max_attempts=5, retry_failed_runs=True),
        dashboard=True,
        freshness_period=Duration.hours(6),
        pipeline_name="orders",
        bad_records="quarantine",
        glue_version=glue.GlueVersion.V6_0,
        execution_class=glue.ExecutionClass.FLEX,
    )


def _per_object_maximal(stack: Stack) -> None:
    _maximal(stack, batching=False)


CONFIGURATIONS = {"default": _default, "maximal": _maximal}


def _logical_ids(tmp_path: Path, name: str) -> dict[str, str]:
    app = App(outdir=str(tmp_path / name))
    stack = Stack(app, "Etl", env=ENV)
    {**CONFIGURATIONS, "per_object_maximal": _per_object_maximal}[name](stack)
    template: dict[str, Any] = app.synth().get_stack_by_name("Etl").template
    return {lid: r["Type"] for lid, r in sorted(template["Resources"].items())}


def test_every_logical_id_of_the_last_release_is_kept(tmp_path: Path) -> None:
    current = {name: _logical_ids(tmp_path, name) for name in CONFIGURATIONS}
    release = os.environ.get("UPDATE_RELEASE_SNAPSHOT")
    if release:
        SNAPSHOT.write_text(json.dumps({"release": release, **current}, indent=2) + "\n")
    baseline = json.loads(SNAPSHOT.read_text())
    for name in CONFIGURATIONS:
        lost = {lid: kind for lid, kind in baseline[name].items() if current[name].get(lid) != kind}
        assert lost == {}, (
            f"{name} pipeline: logical IDs of release {baseline['release']} removed or with "
            f"another type (a breaking change: a deploy would replace these resources)"
        )


def test_the_baseline_is_a_release_and_covers_both_configurations() -> None:
    baseline = json.loads(SNAPSHOT.read_text())
    assert baseline["release"] == "0.1.0"
    assert len(baseline["maximal"]) > len(baseline["default"]) > 40


def test_options_only_add_logical_ids_to_the_default_pipeline(tmp_path: Path) -> None:
    """Turning options on (here all but batching, at once) keeps every logical ID of the
    default pipeline: a deployed pipeline adopts FLEX, Glue 6, a pipeline name, the
    dashboard or quarantine in place."""
    default = _logical_ids(tmp_path, "default")
    maximal = _logical_ids(tmp_path, "per_object_maximal")
    assert {lid: maximal.get(lid) for lid in default} == default


def test_batching_replaces_only_the_per_object_delivery(tmp_path: Path) -> None:
    """With batching the rule feeds a queue instead of invoking the function: the function's
    invoke permission and asynchronous-invoke config go, everything else is kept."""
    default = _logical_ids(tmp_path, "default")
    batched = _logical_ids(tmp_path, "maximal")
    gone = sorted(kind for lid, kind in default.items() if batched.get(lid) != kind)
    assert gone == ["AWS::Lambda::EventInvokeConfig", "AWS::Lambda::Permission"]

"""Construct IDs are API: renaming one replaces a resource on deploy. This guards them.

To accept an intended change: UPDATE_SNAPSHOTS=1 pytest tests/unit/test_construct_ids.py
and review the diff of tests/snapshots/construct_ids.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from aws_cdk import App, CfnElement, Stack

from event_driven_etl import Batching, EventDrivenEtlPipeline

SNAPSHOT = Path(__file__).resolve().parent.parent / "snapshots" / "construct_ids.json"


def _ids(stack: Stack, pipeline: EventDrivenEtlPipeline) -> dict[str, str]:
    base = pipeline.node.path + "/"
    ids = {}
    for construct in pipeline.node.find_all():
        if isinstance(construct, CfnElement):  # asset staging nodes carry path hashes; skip
            ids[construct.node.path.removeprefix(base)] = stack.get_logical_id(construct)
    return dict(sorted(ids.items()))


def test_construct_ids_and_logical_ids_are_stable(app: App, stack: Stack) -> None:
    per_object = EventDrivenEtlPipeline(stack, "Pipeline")
    other = Stack(app, "BatchedStack")
    batched = EventDrivenEtlPipeline(other, "Pipeline", batching=Batching())
    actual = {"per_object": _ids(stack, per_object), "batching": _ids(other, batched)}
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(actual, indent=2) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert actual == expected


def test_construct_ids_are_pascal_case(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", batching=Batching())
    own = [
        "EncryptionKey",
        "AccessLogsBucket",
        "SourceBucket",
        "OutputBucket",
        "NotificationTopic",
        "GlueJob",
        "Workflow",
        "Trigger",
    ]
    assert [c.node.id for c in pipeline.node.children if c.node.id in own] == own
    for child in pipeline.node.children:
        assert child.node.id[0].isupper(), child.node.id

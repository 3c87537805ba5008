"""What a test observes of the offline pipeline: finished runs and Glue runs.

Read-only views over the emulated services; ``LocalPipeline`` exposes them as ``runs()``
and ``glue_runs`` (its notifications are captured by ``_sns``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from ..runtime.glue.event_driven_etl_job.arguments import parse_manifest_lines


@dataclass(frozen=True)
class Run:
    """One finished workflow execution."""

    execution_arn: str
    """The execution's ARN (the ``execution`` field of its notification)."""
    name: str
    """The execution's name: derived from the object's identity (or the batch's)."""
    status: str
    """``"SUCCEEDED"``, ``"FAILED"``, ``"TIMED_OUT"`` or ``"ABORTED"``."""
    objects: list[str]
    """The ``s3://bucket/key`` URIs the run processed (read from the manifest if there is one)."""
    manifest: Optional[str] = None
    """The ``s3://`` URI of the batch's manifest, when the objects did not fit inline."""
    error: Optional[str] = None
    """The execution's error when it did not succeed (e.g. ``EtlPipelineFailed``)."""
    cause: Optional[str] = None
    """The execution's cause when it did not succeed (for a refused object: its reason)."""


@dataclass(frozen=True)
class GlueRun:
    """One Glue job run the workflow started."""

    run_id: str
    """Glue's ``JobRunId``."""
    arguments: dict[str, str]
    """The run's job arguments (``--objects`` or ``--manifest``, ``--batch_id``, ...)."""
    status: str
    """Glue's ``JobRunState`` at the end: ``"SUCCEEDED"``, ``"FAILED"``, ``"TIMEOUT"``..."""
    error_message: Optional[str] = None
    """Glue's ``ErrorMessage`` of a run that did not succeed."""
    written: list[str] = field(default_factory=list)
    """Output keys the run wrote."""


def executions(sfn: Any, machine: str, status: Optional[str] = None) -> list[dict[str, Any]]:
    """Every execution of ``machine`` (all pages), optionally of one status.

    Page by page by hand: ``get_paginator`` loads botocore's paginator model from disk on
    every call, and ``wait_for_runs`` polls this (a fifth of a burst's time)."""
    query: dict[str, Any] = {"stateMachineArn": machine}
    if status is not None:
        query["statusFilter"] = status
    found: list[dict[str, Any]] = []
    while True:
        page = sfn.list_executions(**query)
        found += page["executions"]
        if not page.get("nextToken"):
            return found
        query["nextToken"] = page["nextToken"]


def finished_runs(sfn: Any, s3: Any, machine: str) -> list[Run]:
    """Every finished execution of ``machine``, oldest first, with its objects."""
    runs = []
    for item in sorted(executions(sfn, machine), key=lambda e: e["startDate"]):
        if item["status"] == "RUNNING":
            continue
        described = sfn.describe_execution(executionArn=item["executionArn"])
        payload = json.loads(described.get("input") or "{}")
        runs.append(
            Run(
                execution_arn=item["executionArn"],
                name=item["name"],
                status=item["status"],
                objects=objects_of(s3, payload),
                manifest=payload.get("manifest") or None,
                error=described.get("error"),
                cause=described.get("cause"),
            )
        )
    return runs


def objects_of(s3: Any, payload: dict[str, Any]) -> list[str]:
    """An execution input's objects: inline, or read from its manifest."""
    objects = list(payload.get("objects") or [])
    manifest = payload.get("manifest")
    if manifest:
        bucket, _, key = manifest[5:].partition("/")
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        objects += parse_manifest_lines(text.splitlines())
    return objects

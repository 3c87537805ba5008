"""The notification schema and the retried publish task, defined once.

Both publishers build their messages here: the workflow (``EtlStateMachine``, one message
per finished execution) and the job-state notifier (``_operations``, a failed Glue run the
workflow did not start). Every message is one JSON object in the schema the README's
"Notifications" section documents, with the SNS message attribute ``status`` subscribers
filter on, and the publish is retried while SNS (or its key) is busy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Optional

from aws_cdk import Duration
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from .retry import RetryPolicy, _retry_props

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
"""The ``status`` of a notification (field and message attribute)."""

STATUS_ATTRIBUTE = "status"
"""The SNS message attribute that carries the ``status``, for subscription filters."""

JOB_STATE_CHANGE_SOURCE = "glue-job-state-change"
"""The ``source`` of a failed run that Glue's "Job State Change" event reported."""

PUBLISH_ERRORS = (
    "SNS.ThrottlingException",
    "SNS.ThrottledException",
    "SNS.InternalErrorException",
    "SNS.KMSThrottlingException",
    "SNS.SdkClientException",
)
"""SNS (and its key) busy or failing for a moment: the notifications retry these."""

PUBLISH_RETRY = RetryPolicy(
    max_attempts=6,
    interval=Duration.seconds(2),
    backoff_rate=2.0,
    max_delay=Duration.seconds(60),
    jitter=True,
)
"""About two minutes of patience for a notification, in randomised steps."""

PIPELINE_NAME_LIMIT = 256
"""Longest ``pipeline`` field (and ``pipeline_name`` prop)."""


def default_pipeline_name(path: str) -> str:
    """The construct path, shortened with a hash when it is longer than a name may be."""
    if len(path) <= PIPELINE_NAME_LIMIT:
        return path
    digest = hashlib.sha256(path.encode("utf-8")).hexdigest()[:12]
    return f"{path[: PIPELINE_NAME_LIMIT - 16]}...-{digest}"


def message(
    *,
    pipeline_name: str,
    status: str,
    objects: Any,
    manifest: Any,
    run: Mapping[str, Any],
    source: Optional[str] = None,
    outcome: Optional[Mapping[str, Any]] = None,
) -> dict[str, Any]:
    """One notification, its fields in the schema's order: ``pipeline``, ``status``, the
    ``source`` when not the workflow, ``execution``, ``objects``, ``manifest``, the outcome
    lists (``skipped``, ``quarantined``) when known, then the run's fields
    (``glue_job_run_id`` and, by status, ``glue_job_run_state``, ``rows`` and ``landed`` or
    ``error`` and ``cause``)."""
    return {
        "pipeline": pipeline_name,
        "status": status,
        **({"source": source} if source is not None else {}),
        "execution": sfn.JsonPath.execution_id,
        "objects": objects,
        "manifest": manifest,
        **(outcome or {}),
        **run,
    }


def publish(
    scope: Construct, state_name: str, topic: sns.ITopic, body: dict[str, Any]
) -> tasks.SnsPublish:
    """The task that publishes ``body`` (from :func:`message`) with its ``status`` attribute,
    retried on :data:`PUBLISH_ERRORS`: a throttled or failing publish must not turn a
    finished run into a lost message."""
    task = tasks.SnsPublish(
        scope,
        state_name,
        topic=topic,
        message=sfn.TaskInput.from_object(body),
        message_attributes={STATUS_ATTRIBUTE: tasks.MessageAttribute(value=body["status"])},
        result_path=sfn.JsonPath.DISCARD,
    )
    task.add_retry(**_retry_props(PUBLISH_ERRORS, PUBLISH_RETRY))
    return task

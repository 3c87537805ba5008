"""PipelineLayout: one pipeline read out of a synthesized template, once.

The ids, names and ARNs the emulation uses come from here: the resources' logical ids,
their emulated names and ARNs (through the :class:`~._template.Resolver`), the trigger's
asset and entry point, the Glue script and version, and how Lambda delivers to the trigger
(batch size, window, maximum concurrency, ``FunctionResponseTypes``; retry attempts, event
age and on-failure destination). A resource's own settings (a queue's visibility and
redrive, the function's timeout and environment) are read where it is emulated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ._template import ACCOUNT, REGION, PipelineNotFoundError, Resolver, StackTemplate


class UnresolvableReferenceError(ValueError):
    """The template refers to something outside itself that the emulation cannot know."""


@dataclass(frozen=True)
class PipelineLayout:
    """The pipeline's resources and settings, as synthesized."""

    path: str
    resources: Mapping[str, Any]
    resolver: Resolver
    machine_id: str
    job_id: str
    function_id: str
    rule_id: str
    dlq_id: str
    queue_id: Optional[str]
    table_id: Optional[str]
    notifier_id: Optional[str]
    handler_dir: Path
    handler_entry: str
    glue_version: str
    glue_script: Path
    worker_type: str = "G.1X"
    number_of_workers: int = 2
    job_run_queuing: bool = False
    job_timeout: float = 2880 * 60
    """The job's ``Timeout`` in seconds (Glue's default: 2,880 minutes)."""
    """The job's ``JobRunQueuingEnabled``: runs over ``MaxConcurrentRuns`` wait, not fail."""
    batch_size: int = 1
    retry_attempts: int = 2
    reports_item_failures: bool = False
    pollers: int = 1
    batching_window: float = 0
    """The mapping's ``MaximumBatchingWindowInSeconds`` (batching mode)."""
    max_event_age: float = 6 * 3600
    """The asynchronous invocation's ``MaximumEventAgeInSeconds`` (per-object mode)."""
    failure_destination: Optional[str] = None
    """ARN of the asynchronous invocation's on-failure destination (per-object mode)."""
    maintenance_notifier_id: Optional[str] = None
    """The notifier of the Iceberg table maintenance job's failed runs (``table_maintenance``)."""

    @classmethod
    def read(cls, stack: StackTemplate, path: str) -> PipelineLayout:
        """Read the pipeline at construct ``path`` (``/Stack/Pipeline``) out of ``stack``."""
        path = path.rstrip("/")

        def required(relative: str) -> str:
            logical_id = stack.logical_id(f"{path}/{relative}/Resource")
            if logical_id is None:
                raise PipelineNotFoundError(
                    f"no EventDrivenEtlPipeline at {path}: {relative} not found. "
                    "Pass the pipeline's construct id in that stack, e.g. 'Pipeline'."
                )
            return logical_id

        resources = stack.resources
        resolver = Resolver(resources, fallback=_default_physical_name(resources))
        for logical_id, resource in resources.items():
            name_resource(resolver, logical_id, resource)
        function_id = required("Trigger/Function")
        job_id = required("GlueJob/Job")
        function = resources[function_id]["Properties"]
        job = resources[job_id]["Properties"]
        queue_id = stack.logical_id(f"{path}/Trigger/EventQueue/Resource")
        return cls(
            path=path,
            resources=resources,
            resolver=resolver,
            machine_id=required("Workflow/StateMachine"),
            job_id=job_id,
            function_id=function_id,
            rule_id=required("Trigger/ObjectCreatedRule"),
            dlq_id=required("Trigger/DeadLetterQueue"),
            queue_id=queue_id,
            table_id=stack.logical_id(f"{path}/Trigger/DedupTable/Resource"),
            notifier_id=stack.logical_id(
                f"{path}/Monitoring/JobStateNotifier/StateMachine/Resource"
            ),
            maintenance_notifier_id=stack.logical_id(
                f"{path}/TableMaintenance/JobStateNotifier/StateMachine/Resource"
            ),
            handler_dir=stack.asset_path(resolver.resolve(function["Code"]["S3Key"])),
            handler_entry=function.get("Handler", "handler.handler"),
            glue_version=str(job.get("GlueVersion", "")),
            worker_type=str(job.get("WorkerType", "G.1X")),
            number_of_workers=int(job.get("NumberOfWorkers", 2)),
            job_run_queuing=job.get("JobRunQueuingEnabled") is True,
            job_timeout=float(job.get("Timeout", 2880)) * 60,
            glue_script=stack.asset_path(str(resolver.resolve(job["Command"]["ScriptLocation"]))),
            **_delivery_settings(resources, resolver, function_id),
        )


def _delivery_settings(
    resources: Mapping[str, Any], resolver: Resolver, function_id: str
) -> dict[str, Any]:
    """How Lambda hands events to the trigger: the event-source mapping (batching) or the
    asynchronous-invocation config (per object)."""
    settings: dict[str, Any] = {}
    for resource in resources.values():
        props = resource.get("Properties", {})
        if not refers_to(props.get("FunctionName"), function_id):
            continue
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            settings["batch_size"] = int(props.get("BatchSize", 10))
            settings["batching_window"] = float(props.get("MaximumBatchingWindowInSeconds", 0))
            scaling = props.get("ScalingConfig", {}).get("MaximumConcurrency")
            # Lambda starts 5 pollers for a queue; a maximum concurrency caps them.
            settings["pollers"] = min(int(scaling), 5) if scaling else 5
            # Without ReportBatchItemFailures, Lambda ignores the handler's list of failed
            # records: the batch counts as processed, the bad record is gone.
            settings["reports_item_failures"] = "ReportBatchItemFailures" in props.get(
                "FunctionResponseTypes", []
            )
        elif resource["Type"] == "AWS::Lambda::EventInvokeConfig":
            settings["retry_attempts"] = int(props.get("MaximumRetryAttempts", 2))
            settings["max_event_age"] = float(props.get("MaximumEventAgeInSeconds", 6 * 3600))
            destination = props.get("DestinationConfig", {}).get("OnFailure", {})
            if destination.get("Destination"):
                settings["failure_destination"] = str(resolver.resolve(destination["Destination"]))
    return settings


def name_resource(resolver: Resolver, logical_id: str, resource: Mapping[str, Any]) -> None:
    """Give a template resource its emulated name and ARN."""
    kind = resource["Type"]
    props = resource.get("Properties", {})
    lowered = logical_id.lower()
    physical: Optional[str] = None
    arn: Optional[str] = None
    if kind == "AWS::S3::Bucket":
        physical = str(props.get("BucketName") or f"{lowered[:50]}-local")
    elif kind == "AWS::SNS::Topic":
        physical = arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{logical_id}"
    elif kind == "AWS::SQS::Queue":
        physical = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{logical_id}"
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{logical_id}"
    elif kind == "AWS::StepFunctions::StateMachine":
        physical = arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{logical_id}"
    elif kind == "AWS::Glue::Job":
        physical = str(props.get("Name") or logical_id)
    elif kind == "AWS::DynamoDB::Table":
        physical = str(props.get("TableName") or logical_id)
    elif kind == "AWS::Glue::Database":
        physical = str(props.get("DatabaseInput", {}).get("Name") or lowered)
    if physical is not None:
        resolver.physical[logical_id] = physical
    if arn is not None:
        resolver.arns[logical_id] = arn


def refers_to(value: Any, logical_id: str) -> bool:
    """Whether a resolved-or-not property value names ``logical_id``."""
    return logical_id in json.dumps(value)


def _default_physical_name(resources: Mapping[str, Any]) -> Callable[[str], str]:
    """A resource of the template without a name of its own is named after its logical id;
    a reference to anything else (a parameter, an import) cannot be emulated: it fails."""

    def name(logical_id: str) -> str:
        if logical_id not in resources:
            raise UnresolvableReferenceError(
                f"the template refers to {logical_id!r}, which is not one of its resources "
                "(a parameter or another stack's export?): the emulation cannot resolve it"
            )
        return logical_id.lower()

    return name

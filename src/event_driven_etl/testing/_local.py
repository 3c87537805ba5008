"""LocalPipeline: run a synthesized EventDrivenEtlPipeline in-process, offline.

What is real: the state machine definition from the template (intrinsics resolved to the
emulated resources), the rule's event pattern, the trigger handler loaded from its
synthesized asset directory, and the Glue script run on local PySpark. What is emulated
(moto): S3, EventBridge, SQS, SNS, DynamoDB, the Glue control plane and Step Functions'
interpreter. Lambda is not emulated: the handler is called in-process, with the
asynchronous-invocation retries (per-object mode) or the SQS batch semantics (batching mode)
the template configures. Every call a component makes is checked against the template's
policies (``_access.py``, ``_permissions.py``); waits are scaled (``_time.py``).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, Union, cast
from urllib.parse import quote_plus

from ..runtime.glue.etl_job import parse_manifest_lines
from . import _moto_patches, _spark, _time
from ._access import TASK_GATES, AccessGate, GatedClient, install_task_gates
from ._glue_emulation import ACTIVE_JOBS, glue_hooks, held_job_run_class
from ._lambda_emulation import FaultyClient, LambdaContext, load_handler_module
from ._output import read_table_rows
from ._permissions import AccessDeniedError, Policies
from ._template import (
    ACCOUNT,
    REGION,
    PipelineNotFoundError,
    Resolver,
    StackTemplate,
    load_from_assembly,
)

if TYPE_CHECKING:
    from aws_cdk import Stack

GlueRunner = Callable[[Path, dict[str, str]], None]
"""Runs a Glue script with its job arguments; raising marks the run FAILED."""

DEFAULT_TIME_SCALE = 100.0
"""A local Spark run of seconds stands for a Glue run of minutes, as the waits around it."""
_MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}}
_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/event-driven-etl-local"
_sequencer = itertools.count(1)
_CAPTURE_QUEUE = "local-notifications"
_TOPIC_ARN = re.compile(r"arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w.-]+")


@dataclass(frozen=True)
class Run:
    """One finished workflow execution."""

    execution_arn: str
    name: str
    status: str
    """``"SUCCEEDED"``, ``"FAILED"``, ``"TIMED_OUT"`` or ``"ABORTED"``."""
    objects: list[str]
    """The ``s3://bucket/key`` URIs the run processed (read from the manifest if there is one)."""
    manifest: Optional[str] = None
    error: Optional[str] = None
    cause: Optional[str] = None


@dataclass(frozen=True)
class GlueRun:
    """One Glue job run the workflow started."""

    run_id: str
    arguments: dict[str, str]
    status: str
    error_message: Optional[str] = None
    written: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _GlueFailure:
    error: str
    cause: str
    after_script: bool
    state: str


_FAILED_RUN_STATES = ("FAILED", "TIMEOUT", "ERROR")


@dataclass
class _Faults:
    glue_failures: deque[_GlueFailure] = field(default_factory=deque)
    glue_start_errors: deque[str] = field(default_factory=deque)
    start_execution_errors: deque[str] = field(default_factory=deque)


_CRASH = "LocalInvocationCrash"


class InvocationCrash(BaseException):
    """A Lambda invocation that dies: no ``except Exception`` in the handler sees it."""


class LocalPipeline:
    """A synthesized pipeline running offline, for tests and demos.

    Example::

        with LocalPipeline.from_stack(stack, "Pipeline") as local:
            local.put_object("incoming/a.csv", b"id,name\\n1,x\\n")
            [run] = local.wait_for_runs()
            assert run.status == "SUCCEEDED"
    """

    source_bucket: str
    """Name of the emulated source bucket (the one the rule listens to)."""

    output_bucket: str
    """Name of the emulated output bucket (empty when the job names none)."""

    state_machine_arn: str
    """ARN of the emulated workflow state machine."""

    policies: Policies
    """The template's policies as the emulation evaluates them; ``.checked`` lists every
    evaluation as ``(principal, action, resource, allowed)``."""

    lost_events: list[dict[str, Any]]
    """Events AWS would drop: neither the rule's target nor its dead-letter queue (nor the
    function's on-failure destination) admitted them."""

    def __init__(
        self,
        stack: StackTemplate,
        construct_path: str,
        *,
        glue_runner: Optional[GlueRunner] = None,
        time_scale: float = DEFAULT_TIME_SCALE,
        work_dir: Optional[Union[str, Path]] = None,
    ) -> None:
        """
        :param stack: The synthesized stack (see :meth:`from_stack`).
        :param construct_path: The pipeline's path, e.g. ``/MyStack/Pipeline``.
        :param glue_runner: Runs the Glue script. Default: - the script runs on local PySpark
        :param time_scale: Divide the workflow's waits (retriers with their backoff, cap
            and jitter; Wait states) by this factor; the execution timeout counts real time
            plus the waiting skipped. 1 is real time. Default: 100
        :param work_dir: Folder for the bucket mirrors. Default: - a temporary folder
        """
        self._stack = stack
        self._path = construct_path.rstrip("/")
        self._glue_runner = glue_runner
        if not (isinstance(time_scale, (int, float)) and time_scale >= 1):
            raise ValueError(f"time_scale must be a number of at least 1, got {time_scale!r}")
        self._time_scale = float(time_scale)
        self._work_dir = Path(work_dir) if work_dir else None
        self._faults = _Faults()
        self._events: list[dict[str, Any]] = []
        self._notifications: list[dict[str, Any]] = []
        self._glue_runs: list[GlueRun] = []
        self._glue_workers: list[threading.Thread] = []
        self.deliver_immediately = True
        """Per-object mode: invoke the trigger on each event at once (as Lambda would). Set
        False to hold events until :meth:`flush` or :meth:`wait_for_runs`, e.g. to start a
        whole burst at the same moment."""
        self.glue_concurrency_rejections = 0
        """StartJobRun calls Glue refused because MaxConcurrentRuns runs were running."""
        self._mock: Any = None
        self._env_saved: dict[str, Optional[str]] = {}
        self._tmp: Optional[tempfile.TemporaryDirectory[str]] = None
        self._handler: Optional[ModuleType] = None
        self._lock = threading.RLock()
        self._batch_lock = threading.Lock()
        self._discover()

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_stack(cls, stack: Stack, construct_id: str, **options: Any) -> LocalPipeline:
        """Synthesize ``stack``'s app and run the pipeline with id (or path) ``construct_id``."""
        from aws_cdk import Stage

        stage = Stage.of(stack)
        if stage is None:  # pragma: no cover - every stack lives in an app
            raise ValueError("the stack is not part of an App")
        assembly = stage.synth(force=True)
        artifact = assembly.get_stack_artifact(stack.artifact_id)
        template = load_from_assembly(assembly.directory, artifact.stack_name)
        return cls(template, f"/{stack.node.path}/{construct_id.strip('/')}", **options)

    @classmethod
    def from_cloud_assembly(
        cls, directory: Union[str, Path], stack_name: str, construct_id: str, **options: Any
    ) -> LocalPipeline:
        """Run a pipeline from a ``cdk.out`` directory, e.g. after ``cdk synth``."""
        template = load_from_assembly(directory, stack_name)
        return cls(template, f"/{stack_name}/{construct_id.strip('/')}", **options)

    def _required_id(self, relative: str) -> str:
        logical_id = self._stack.logical_id(f"{self._path}/{relative}/Resource")
        if logical_id is None:
            raise PipelineNotFoundError(
                f"no EventDrivenEtlPipeline at {self._path}: {relative} not found. "
                "Pass the pipeline's construct id in that stack, e.g. 'Pipeline'."
            )
        return logical_id

    def _discover(self) -> None:
        resources = self._stack.resources
        self._resources = resources
        self._machine_id = self._required_id("Workflow/StateMachine")
        self._job_id = self._required_id("GlueJob/Job")
        self._function_id = self._required_id("Trigger/Function")
        self._rule_id = self._required_id("Trigger/ObjectCreatedRule")
        self._dlq_id = self._required_id("Trigger/DeadLetterQueue")
        self._queue_id = self._stack.logical_id(f"{self._path}/Trigger/EventQueue/Resource")
        self._table_id = self._stack.logical_id(f"{self._path}/Trigger/DedupTable/Resource")
        self._notifier_id = self._stack.logical_id(
            f"{self._path}/Monitoring/JobStateNotifier/StateMachine/Resource"
        )
        self._resolver = Resolver(resources, fallback=_default_physical_name(resources))
        for logical_id, resource in resources.items():
            self._name_resource(logical_id, resource)

        function = resources[self._function_id]["Properties"]
        self.handler_dir = self._stack.asset_path(self._resolve(function["Code"]["S3Key"]))
        self._handler_entry = function.get("Handler", "handler.handler")
        job = resources[self._job_id]["Properties"]
        self.glue_version = str(resources[self._job_id]["Properties"].get("GlueVersion", ""))
        """The job's Glue version, as synthesized (``"5.1"``)."""
        self.glue_script = self._stack.asset_path(
            str(self._resolve(job["Command"]["ScriptLocation"]))
        )
        self._batch_size, self._max_receive = 1, 1
        self._retry_attempts = 2
        self._reports_item_failures = False
        self._pollers = 1
        for resource in resources.values():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::Lambda::EventSourceMapping" and _refers_to(
                props.get("FunctionName"), self._function_id
            ):
                self._batch_size = int(props.get("BatchSize", 10))
                scaling = props.get("ScalingConfig", {}).get("MaximumConcurrency")
                self._pollers = min(int(scaling), 5) if scaling else 5
                # Without ReportBatchItemFailures, Lambda ignores the handler's list of
                # failed records: the batch counts as processed, the bad record is gone.
                self._reports_item_failures = "ReportBatchItemFailures" in props.get(
                    "FunctionResponseTypes", []
                )
            if resource["Type"] == "AWS::Lambda::EventInvokeConfig" and _refers_to(
                props.get("FunctionName"), self._function_id
            ):
                self._retry_attempts = int(props.get("MaximumRetryAttempts", 2))
        if self._queue_id:
            redrive = resources[self._queue_id]["Properties"].get("RedrivePolicy", {})
            self._max_receive = int(redrive.get("maxReceiveCount", 5))

    def _name_resource(self, logical_id: str, resource: dict[str, Any]) -> None:
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
            self._resolver.physical[logical_id] = physical
        if arn is not None:
            self._resolver.arns[logical_id] = arn

    def _resolve(self, value: Any) -> Any:
        return self._resolver.resolve(value)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalPipeline:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the emulation and create the pipeline's resources in it."""
        from moto import mock_aws

        _moto_patches.apply()
        _time.set_scale(self._time_scale)
        self._set_environment()
        self._tmp = tempfile.TemporaryDirectory(prefix="event-driven-etl-")
        self._mirror = _spark.BucketMirror(self._work_dir or Path(self._tmp.name) / "s3")
        self._mock = mock_aws(config=cast(Any, _MOTO_CONFIG))
        self._mock.start()
        try:
            self._provision()
        except BaseException:
            self.stop()  # a half-started emulation must not outlive the error
            raise

    def _provision(self) -> None:
        import boto3

        self._s3 = boto3.client("s3", region_name=REGION)
        self._sqs = boto3.client("sqs", region_name=REGION)
        self._sfn = boto3.client("stepfunctions", region_name=REGION)
        self._create_resources()
        self._create_access_gate()
        glue_hooks.install()
        ACTIVE_JOBS[self.glue_job_name] = self
        self._handler = self._load_handler()
        self._install_client_faults()

    def _create_access_gate(self) -> None:
        """Every call a component makes is checked against the template's policies."""
        self.policies = Policies.from_template(
            self._resources,
            self._resolver,
            stack_account=self._stack.account,
            stack_region=self._stack.region,
        )
        self.access = AccessGate(self._resources, self._resolver, self.policies)
        install_task_gates()
        TASK_GATES[self.state_machine_arn] = self.access.task_gate(
            self.access.role_of(self._machine_id), _glue_job_arn
        )
        if self._notifier_id and self._notifier_arn:
            TASK_GATES[self._notifier_arn] = self.access.task_gate(
                self.access.role_of(self._notifier_id), _glue_job_arn
            )
        self._glue_role = self.access.role_of(self._job_id)
        self._trigger_role = self.access.role_of(self._function_id)

    def stop(self) -> None:
        """Stop the emulation; everything created in it is gone."""
        for machine in (getattr(self, "state_machine_arn", ""), getattr(self, "_notifier_arn", "")):
            TASK_GATES.pop(machine or "", None)
        ACTIVE_JOBS.pop(getattr(self, "glue_job_name", ""), None)
        if not ACTIVE_JOBS:
            glue_hooks.uninstall()
        if self._mock is not None:
            self._wait_quietly()
            for worker in self._glue_workers:
                worker.join(timeout=30)
            self._mock.stop()
            self._mock = None
            _time.set_scale(1)
        for name, value in self._env_saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._env_saved = {}
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _wait_quietly(self) -> None:
        try:
            self._wait_idle(timeout=30)
        except Exception:
            return

    def _set_environment(self) -> None:
        fake = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }
        for name, value in fake.items():
            self._env_saved.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        # Set now, before any workflow thread runs: changing os.environ while those threads
        # copy it (to create clients) is a race.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    # ------------------------------------------------------------------ resources

    def _create_resources(self) -> None:
        import boto3

        for logical_id, resource in self._resources.items():
            if resource["Type"] == "AWS::S3::Bucket":
                self._create_bucket(self._resolver.physical[logical_id], resource)
        self._create_catalog_databases()
        rule = self._resources[self._rule_id]["Properties"]
        self.rule_pattern: dict[str, Any] = self._resolve(rule["EventPattern"])
        self.source_bucket = str(self.rule_pattern["detail"]["bucket"]["name"][0])
        self._create_bucket(self.source_bucket, None)
        job = self._resources[self._job_id]["Properties"]
        self.glue_job_name = str(self._resolver.physical[self._job_id])
        default_arguments = {
            k: str(v) for k, v in self._resolve(job.get("DefaultArguments", {})).items()
        }
        output_path = default_arguments.get("--output_path", "")
        self.output_bucket = (
            output_path[5:].split("/", 1)[0] if output_path.startswith("s3://") else ""
        )
        if self.output_bucket:
            self._create_bucket(self.output_bucket, None)
        boto3.client("glue", region_name=REGION).create_job(
            Name=self.glue_job_name,
            Role=_ROLE_ARN,
            Command={
                "Name": "glueetl",
                "ScriptLocation": f"s3://local-assets/{self.glue_script.name}",
            },
            DefaultArguments=default_arguments,
            ExecutionProperty={
                "MaxConcurrentRuns": int(
                    job.get("ExecutionProperty", {}).get("MaxConcurrentRuns", 1)
                )
            },
            MaxRetries=int(job.get("MaxRetries", 0)),
        )
        self._create_queues()
        self._create_table()
        self._create_topic_capture()
        self._create_state_machine()
        self._create_rule()

    def _create_catalog_databases(self) -> None:
        """The template's Glue databases, and a database the job names that another stack
        owns (brought by the user), so the script's catalog calls meet a real catalog."""
        import boto3

        glue = boto3.client("glue", region_name=REGION)
        names = {
            str(self._resolver.physical[lid])
            for lid, r in self._resources.items()
            if r["Type"] == "AWS::Glue::Database"
        }
        job = self._resources[self._job_id]["Properties"]
        arguments = self._resolve(job.get("DefaultArguments", {}))
        self.catalog_database: Optional[str] = arguments.get("--catalog_database") or None
        self.catalog_table: Optional[str] = arguments.get("--catalog_table") or None
        if self.catalog_database:
            names.add(self.catalog_database)
        for name in sorted(names):
            glue.create_database(DatabaseInput={"Name": name})

    def _create_bucket(self, name: str, resource: Optional[dict[str, Any]]) -> None:
        existing = {b["Name"] for b in self._s3.list_buckets().get("Buckets", [])}
        if name in existing:
            return
        self._s3.create_bucket(Bucket=name)
        versioning = (resource or {}).get("Properties", {}).get("VersioningConfiguration", {})
        if versioning.get("Status") == "Enabled":
            self._s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Enabled"}
            )

    def _create_queues(self) -> None:
        self.dead_letter_queue_url = self._sqs.create_queue(QueueName=self._dlq_id)["QueueUrl"]
        dlq_arn = self._resolver.arns[self._dlq_id]
        self.event_queue_url: Optional[str] = None
        if self._queue_id:
            self.event_queue_url = self._sqs.create_queue(
                QueueName=self._queue_id,
                Attributes={
                    "VisibilityTimeout": str(
                        self._scaled(
                            self._resources[self._queue_id]["Properties"].get(
                                "VisibilityTimeout", 30
                            )
                        )
                    ),
                    "RedrivePolicy": json.dumps(
                        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": self._max_receive}
                    ),
                },
            )["QueueUrl"]
        # Per-object mode: EventBridge's Lambda target, observed through a queue.
        self._delivery_queue_url = self._sqs.create_queue(QueueName="local-lambda-deliveries")[
            "QueueUrl"
        ]

    def _create_table(self) -> None:
        if not self._table_id:
            return
        import boto3

        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=self._resolver.physical[self._table_id],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    def _create_topic_capture(self) -> None:
        import boto3

        sns = boto3.client("sns", region_name=REGION)
        definition = json.dumps(
            [self._resources[i]["Properties"] for i in (self._machine_id, self._notifier_id) if i]
        )
        self._topic_arns = []
        for logical_id, resource in self._resources.items():
            if resource["Type"] == "AWS::SNS::Topic" and logical_id in definition:
                self._topic_arns.append(sns.create_topic(Name=logical_id)["TopicArn"])
        self._capture_queue_url = self._sqs.create_queue(QueueName=_CAPTURE_QUEUE)["QueueUrl"]
        for topic_arn in self._topic_arns:
            _subscribe_capture_queue(sns, topic_arn)

    def _create_state_machine(self) -> None:
        definition = self._machine_definition(self._machine_id)
        self.definition = json.loads(definition)
        self.state_machine_arn = self._sfn.create_state_machine(
            name=self._machine_id, definition=definition, roleArn=_ROLE_ARN
        )["stateMachineArn"]
        self._notifier_arn: Optional[str] = None
        self._job_state_pattern: Optional[dict[str, Any]] = None
        if self._notifier_id:
            self._notifier_arn = self._sfn.create_state_machine(
                name=self._notifier_id,
                definition=self._machine_definition(self._notifier_id),
                roleArn=_ROLE_ARN,
            )["stateMachineArn"]
            self._job_state_pattern = self._pattern_of_rule_targeting(self._notifier_id)

    def _machine_definition(self, logical_id: str) -> str:
        props = self._resources[logical_id]["Properties"]
        definition = str(self._resolve(props["DefinitionString"]))
        for name, value in self._resolve(props.get("DefinitionSubstitutions", {})).items():
            definition = definition.replace("${" + name + "}", str(value))
        return self._emulate_imported_topics(definition)

    def _pattern_of_rule_targeting(self, logical_id: str) -> dict[str, Any]:
        for resource in self._resources.values():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::Events::Rule" and any(
                _refers_to(t.get("Arn"), logical_id) for t in props.get("Targets", [])
            ):
                return dict(self._resolve(props["EventPattern"]))
        raise ValueError(f"no rule in the template targets {logical_id}")

    def _emulate_imported_topics(self, definition: str) -> str:
        """A topic imported by ARN (any account or region) becomes an emulated topic of the
        same name, subscribed to the capture queue; the definition is pointed at it."""
        import boto3

        sns = boto3.client("sns", region_name=REGION)
        for arn in sorted(set(_TOPIC_ARN.findall(definition)) - set(self._topic_arns)):
            emulated = sns.create_topic(Name=arn.rsplit(":", 1)[-1])["TopicArn"]
            if emulated not in self._topic_arns:
                _subscribe_capture_queue(sns, emulated)
                self._topic_arns.append(emulated)
            definition = definition.replace(arn, emulated)
        return definition

    def _create_rule(self) -> None:
        import boto3

        rule = self._resources[self._rule_id]["Properties"]
        [target] = rule.get("Targets", [None])[:1] or [None]
        if target is None:
            raise ValueError(f"the rule {self._rule_id} has no target")
        self._rule_target: dict[str, Any] = self._resolve(target)
        self._rule_arn = str(self._resolver.get_att(self._rule_id, "Arn"))
        self.lost_events = []

        events = boto3.client("events", region_name=REGION)
        events.put_rule(Name="object-created", EventPattern=json.dumps(self.rule_pattern))
        target_queue = self.event_queue_url or self._delivery_queue_url
        target_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{target_queue.rsplit('/', 1)[-1]}"
        events.put_targets(Rule="object-created", Targets=[{"Id": "Target0", "Arn": target_arn}])
        self._events_client = events

    # ------------------------------------------------------------------ the handler

    def _load_handler(self) -> ModuleType:
        module_file = self._handler_entry.rpartition(".")[0]
        variables = (
            self._resources[self._function_id]["Properties"]
            .get("Environment", {})
            .get("Variables", {})
        )
        environment = {k: str(v) for k, v in self._resolve(variables).items()}
        if "LEASE_SECONDS" in environment:  # a wait like any other: scaled, at least 1 s
            environment["LEASE_SECONDS"] = str(self._scaled(int(environment["LEASE_SECONDS"])))
        return load_handler_module(self.handler_dir, module_file, environment)

    def _scaled(self, seconds: float) -> int:
        """A wait of the template divided by the time scale: whole seconds, never 0 unless
        it was 0 (SQS and the lease count whole seconds)."""
        return 0 if seconds <= 0 else max(1, math.ceil(seconds / self._time_scale))

    def _invoke_handler(self, event: dict[str, Any]) -> Any:
        assert self._handler is not None
        entry = self._handler_entry.rpartition(".")[2]
        return getattr(self._handler, entry)(event, LambdaContext())

    def _install_client_faults(self) -> None:
        handler = self._handler
        if handler is None or not hasattr(handler, "set_clients"):
            return
        import boto3

        role, check = self._trigger_role, self.policies.check

        def table_call(action: str) -> Callable[[Any], None]:
            def checked(call: Any) -> None:
                name = str(call["TableName"])
                key = self.access.table_keys.get(name)
                check(
                    role,
                    action,
                    f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
                    key=key,
                    key_actions=("kms:Decrypt",) if key else (),
                    key_context={"kms:ViaService": f"dynamodb.{REGION}.amazonaws.com"},
                )

            return checked

        def start_execution(call: Mapping[str, Any]) -> None:
            check(role, "states:StartExecution", str(call["stateMachineArn"]))
            check_start_execution_limits(call)

        handler.set_clients(
            handler.Clients(
                stepfunctions=GatedClient(
                    FaultyClient(
                        boto3.client("stepfunctions", region_name=REGION),
                        "start_execution",
                        self._faults.start_execution_errors,
                    ),
                    {"start_execution": start_execution},
                ),
                dynamodb=GatedClient(
                    boto3.client("dynamodb", region_name=REGION),
                    {
                        f"{op}_item": table_call(f"dynamodb:{op.title()}Item")
                        for op in ("get", "put", "update", "delete")
                    },
                ),
                s3=GatedClient(
                    boto3.client("s3", region_name=REGION),
                    {
                        "put_object": lambda call: self.access.check_s3(
                            role, "s3:PutObject", str(call["Bucket"]), str(call["Key"])
                        ),
                        "get_object": lambda call: self.access.check_s3(
                            role, "s3:GetObject", str(call["Bucket"]), str(call["Key"])
                        ),
                    },
                ),
            )
        )

    # ------------------------------------------------------------------ events in

    def put_object(self, key: str, body: bytes, *, bucket: Optional[str] = None) -> dict[str, Any]:
        """Upload into the source bucket and emit its "Object Created" event via EventBridge.

        The event is realistic: URL-encoded key, a unique sequencer, the ETag, and the
        version id when the bucket is versioned. Returns the event.
        """
        bucket = bucket or self.source_bucket
        response = self._s3.put_object(Bucket=bucket, Key=key, Body=body)
        detail_object: dict[str, Any] = {
            "key": quote_plus(key, safe="/"),
            "size": len(body),
            "etag": response["ETag"].strip('"'),
            "sequencer": f"{next(_sequencer):018X}",
        }
        if response.get("VersionId") and response["VersionId"] != "null":
            detail_object["version-id"] = response["VersionId"]
        event = _event(
            "aws.s3",
            "Object Created",
            resources=[f"arn:aws:s3:::{bucket}"],
            detail={
                "version": "0",
                "bucket": {"name": bucket},
                "object": detail_object,
                "request-id": uuid.uuid4().hex[:16].upper(),
                "requester": ACCOUNT,
                "reason": "PutObject",
            },
        )
        if self._sends_to_eventbridge(bucket):
            self.send_event(event)
        return event

    def _sends_to_eventbridge(self, bucket: str) -> bool:
        """Whether the template turns on EventBridge for ``bucket`` (on the bucket itself, or
        through CDK's bucket-notifications custom resource for a bucket it imports)."""
        for logical_id, resource in self._resources.items():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::S3::Bucket":
                if self._resolver.physical.get(logical_id) != bucket:
                    continue
                config = props.get("NotificationConfiguration", {})
                if config.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
                    return True
            elif resource["Type"] == "Custom::S3BucketNotifications":
                if str(self._resolve(props.get("BucketName"))) != bucket:
                    continue
                if "EventBridgeConfiguration" in props.get("NotificationConfiguration", {}):
                    return True
        return False

    def redeliver(self, event: Optional[dict[str, Any]] = None) -> None:
        """Deliver an event again (the last one by default), as EventBridge may."""
        event = event or self._events[-1]
        self.send_event({**event, "id": str(uuid.uuid4())})

    def send_event(self, event: dict[str, Any]) -> None:
        """Put any event on the bus; the rule decides whether the pipeline sees it.

        EventBridge delivers to the rule's target only if the target's policies let it
        (the function's permission, the queue's policy and key); otherwise, after its
        retries, the event goes to the target's dead-letter queue.
        """
        self._events.append(event)
        from moto.events.models import EventPattern

        if not EventPattern.load(json.dumps(self.rule_pattern)).matches_event(cast(Any, event)):
            return
        target = self._rule_target
        try:
            self.access.check_event_delivery(self._rule_arn, str(target["Arn"]))
        except AccessDeniedError as denied:
            self._dead_letter_event(event, target, denied)
            return
        self._events_client.put_events(
            Entries=[
                {
                    "Source": event.get("source", "custom"),
                    "DetailType": event.get("detail-type", "custom"),
                    "Detail": json.dumps(event.get("detail", {})),
                    "Resources": event.get("resources", []),
                }
            ]
        )
        if not self.event_queue_url and self.deliver_immediately:
            self._dispatch_per_object()

    def _dead_letter_event(
        self, event: dict[str, Any], target: dict[str, Any], denied: AccessDeniedError
    ) -> None:
        """EventBridge's dead-letter delivery: the event, with why in its attributes."""
        dead_letter_arn = target.get("DeadLetterConfig", {}).get("Arn")
        if not dead_letter_arn:
            self.lost_events.append(event)
            return
        try:
            self.access.check_event_delivery(self._rule_arn, str(dead_letter_arn))
        except AccessDeniedError:
            self.lost_events.append(event)
            return
        self._sqs.send_message(
            QueueUrl=self.dead_letter_queue_url,
            MessageBody=json.dumps(event),
            MessageAttributes={
                "ERROR_CODE": {"DataType": "String", "StringValue": "NO_PERMISSIONS"},
                "ERROR_MESSAGE": {"DataType": "String", "StringValue": str(denied)[:1000]},
                "RULE_ARN": {"DataType": "String", "StringValue": self._rule_arn},
            },
        )

    def _dispatch_per_object(self) -> None:
        """Invoke the handler for each delivered event, like Lambda's asynchronous invoke."""
        for body in self._drain(self._delivery_queue_url):
            event = json.loads(body)
            last_error: Optional[BaseException] = None
            for _attempt in range(1 + self._retry_attempts):
                try:
                    self._invoke_handler(event)
                    last_error = None
                    break
                except Exception as error:
                    last_error = error
            if last_error is not None:
                try:  # Lambda sends to the on-failure destination as the function's role
                    self.access.check_queue_send(
                        self._trigger_role, str(self._resolver.arns[self._dlq_id])
                    )
                except AccessDeniedError:
                    self.lost_events.append(event)
                    continue
                self._sqs.send_message(
                    QueueUrl=self.dead_letter_queue_url,
                    MessageBody=json.dumps(
                        {
                            "requestContext": {"condition": "RetriesExhausted"},
                            "requestPayload": event,
                            "responsePayload": {
                                "errorType": type(last_error).__name__,
                                "errorMessage": str(last_error),
                            },
                        }
                    ),
                )

    def _dispatch_batches(self) -> None:
        """Hand the event queue to the handler in batches, as the SQS event source does:
        several pollers at once (the mapping's maximum concurrency, else Lambda's first 5),
        each invocation's failed records left to reappear after the (scaled) visibility
        timeout, a crashed invocation's records too. Returns when the queue is empty."""
        pollers = [
            threading.Thread(target=self._poll_event_queue, name=f"sqs-poller-{i}", daemon=True)
            for i in range(self._pollers)
        ]
        for poller in pollers:
            poller.start()
        for poller in pollers:
            poller.join()

    def _poll_event_queue(self) -> None:
        assert self.event_queue_url is not None
        while True:
            # The batching window fills one batch at a time (up to the batch size); the
            # invocations then run side by side.
            with self._batch_lock:
                messages = self._receive(self.event_queue_url, self._batch_size)
            if not messages:
                if self._queue_drained():
                    return
                time.sleep(0.05)
                continue
            self._invoke_batch(messages)

    def _queue_drained(self) -> bool:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.event_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return all(int(v) == 0 for v in attributes.values())

    def _invoke_batch(self, messages: list[dict[str, Any]]) -> None:
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "eventSource": "aws:sqs",
            }
            for m in messages
        ]
        try:
            response = self._invoke_handler({"Records": records}) or {}
        except InvocationCrash:
            return  # the records stay in flight and reappear after the visibility timeout
        except Exception:
            return  # an error fails the whole batch: every record reappears
        failed = (
            {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            if self._reports_item_failures
            else set()
        )
        done = [m for m in messages if m["MessageId"] not in failed]
        for chunk in range(0, len(done), 10):
            self._sqs.delete_message_batch(
                QueueUrl=self.event_queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[chunk : chunk + 10])
                ],
            )

    def _receive(self, queue_url: str, limit: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < limit:
            batch = self._sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(10, limit - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                break
            messages += batch
        return messages

    def _drain(self, queue_url: str) -> list[str]:
        bodies = []
        for message in self._receive(queue_url, 1_000_000):
            bodies.append(message["Body"])
            self._sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return bodies

    def flush(self) -> None:
        """Deliver everything waiting (in batching mode: the batching window ends now)."""
        if self.event_queue_url:
            self._dispatch_batches()
        else:
            self._dispatch_per_object()

    # ------------------------------------------------------------------ results

    def wait_for_runs(self, timeout: float = 60) -> list[Run]:
        """Deliver pending events, wait until no execution is in flight, return all runs.

        Raises :class:`TimeoutError` if executions are still running after ``timeout`` seconds.
        """
        self.flush()
        self._wait_idle(timeout)
        return self.runs()

    def _wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        machines = [self.state_machine_arn] + ([self._notifier_arn] if self._notifier_arn else [])
        while True:
            running = [
                execution
                for machine in machines
                for execution in self._executions(machine, status="RUNNING")
            ]
            with self._lock:
                glue_busy = any(w.is_alive() for w in self._glue_workers)
            if not running and not glue_busy:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(running)} execution(s) still running after {timeout} seconds"
                )
            time.sleep(0.1)

    def _executions(self, machine: str, status: Optional[str] = None) -> list[dict[str, Any]]:
        """Every execution of ``machine`` (all pages)."""
        paginator = self._sfn.get_paginator("list_executions")
        query: dict[str, Any] = {"stateMachineArn": machine}
        if status is not None:
            query["statusFilter"] = status
        return [e for page in paginator.paginate(**query) for e in page["executions"]]

    def runs(self) -> list[Run]:
        """Every finished execution so far, oldest first."""
        executions = self._executions(self.state_machine_arn)
        runs = []
        for item in sorted(executions, key=lambda e: e["startDate"]):
            if item["status"] == "RUNNING":
                continue
            described = self._sfn.describe_execution(executionArn=item["executionArn"])
            payload = json.loads(described.get("input") or "{}")
            runs.append(
                Run(
                    execution_arn=item["executionArn"],
                    name=item["name"],
                    status=item["status"],
                    objects=self._objects_of(payload),
                    manifest=payload.get("manifest") or None,
                    error=described.get("error"),
                    cause=described.get("cause"),
                )
            )
        return runs

    def _objects_of(self, payload: dict[str, Any]) -> list[str]:
        objects = list(payload.get("objects") or [])
        manifest = payload.get("manifest")
        if manifest:
            bucket, _, key = manifest[5:].partition("/")
            text = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
            objects += parse_manifest_lines(text.splitlines())
        return objects

    @property
    def notifications(self) -> list[dict[str, Any]]:
        """Parsed JSON messages published to the notification topic, oldest first."""
        for message in self._receive(self._capture_queue_url, 1_000_000):
            body = json.loads(message["Body"])
            attributes = {
                k: v.get("StringValue") for k, v in message.get("MessageAttributes", {}).items()
            }
            self._notifications.append({**body, "_attributes": attributes} if attributes else body)
            self._sqs.delete_message(
                QueueUrl=self._capture_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        return [{k: v for k, v in n.items() if k != "_attributes"} for n in self._notifications]

    @property
    def notification_attributes(self) -> list[dict[str, Any]]:
        """The SNS message attributes of each notification (``{"status": ...}``)."""
        _ = self.notifications
        return [dict(n.get("_attributes", {})) for n in self._notifications]

    @property
    def glue_runs(self) -> list[GlueRun]:
        """Glue job runs started so far, with their arguments and outcome."""
        return list(self._glue_runs)

    def output_keys(self) -> list[str]:
        """Keys in the output bucket (manifests excluded), sorted."""
        keys = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.output_bucket):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return sorted(k for k in keys if not k.startswith("manifests/"))

    def read_output_rows(self, prefix: str = "processed/") -> list[dict[str, Any]]:
        """Every row of every Parquet file under ``prefix``, with every column of every file
        (``ingestion_date`` from the partition path).

        Read with pyarrow, not Spark: the files must agree on one type per column, as a
        table reader needs; a column whose type differs between files raises
        ``pyarrow.ArrowTypeError``. Files and folders whose names start with ``_`` or ``.``
        (run reports, the schema file) are not data and are left out, as Athena does.
        """
        self._mirror.pull(self._s3, [self.output_bucket])
        return read_table_rows(self._mirror.folder(self.output_bucket) / prefix)

    def catalog_table_definition(self) -> dict[str, Any]:
        """The output table as the (emulated) Glue Data Catalog holds it (``get_table``)."""
        import boto3

        if not (self.catalog_database and self.catalog_table):
            raise LookupError("this pipeline keeps no catalog table (catalog=False)")
        glue = boto3.client("glue", region_name=REGION)
        table: dict[str, Any] = glue.get_table(
            DatabaseName=self.catalog_database, Name=self.catalog_table
        )["Table"]
        return table

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run SQL against the output table through its catalog definition, as Athena would
        see it: DuckDB reads the table's location with the catalog's column types and its
        partition column. Name the table as ``<table>`` or ``<database>.<table>``."""
        from ._query import query_table

        table = self.catalog_table_definition()
        self._mirror.pull(self._s3, [self.output_bucket])
        location = str(table["StorageDescriptor"]["Location"])
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        return query_table(
            sql,
            database=str(self.catalog_database),
            table=table,
            folder=self._mirror.folder(bucket) / prefix,
        )

    def fire_alarm(self, name: str) -> bool:
        """Put one of the pipeline's alarms into ALARM: CloudWatch publishes the state change
        to the alarm's actions as ``cloudwatch.amazonaws.com``, and the topic's policy and
        key decide. Returns whether the message was delivered (then it is among the
        :attr:`notifications`). ``name`` is the alarm's construct id, e.g.
        ``"ExecutionsFailedAlarm"``, or its logical id."""
        logical_id = self._stack.logical_id(f"{self._path}/Monitoring/{name}/Resource") or name
        alarm = self._resources.get(logical_id)
        if alarm is None or alarm["Type"] != "AWS::CloudWatch::Alarm":
            raise KeyError(f"no alarm {name!r} in the pipeline")
        import boto3

        sns = boto3.client("sns", region_name=REGION)
        alarm_arn = str(self._resolver.get_att(logical_id, "Arn"))
        delivered = False
        for topic_arn in self._resolve(alarm["Properties"].get("AlarmActions", [])):
            try:
                self.access.check_alarm_publish(alarm_arn, str(topic_arn))
            except AccessDeniedError:
                continue
            message = {"AlarmName": logical_id, "AlarmArn": alarm_arn, "NewStateValue": "ALARM"}
            sns.publish(TopicArn=str(topic_arn), Message=json.dumps(message))
            delivered = True
        return delivered

    def dead_letters(self) -> list[dict[str, Any]]:
        """Messages in the dead-letter queue (consumed by reading)."""
        return [json.loads(b) for b in self._drain(self.dead_letter_queue_url)]

    # ------------------------------------------------------------------ fault injection

    def fail_next_glue_run(
        self,
        error: str = "GlueJobFailed",
        cause: str = "injected failure",
        *,
        after_script: bool = False,
        state: str = "FAILED",
    ) -> None:
        """The next Glue run ends FAILED with ``error: cause`` as its error message.

        With ``after_script=True`` the script runs first and writes its output, then the run
        fails (as when Glue loses the driver after the write): a retry must not add rows.
        ``state`` is the run's final state: ``"FAILED"``, ``"TIMEOUT"`` or ``"ERROR"``.
        """
        if state not in _FAILED_RUN_STATES:
            raise ValueError(f"state must be one of {_FAILED_RUN_STATES}, got {state!r}")
        self._faults.glue_failures.append(_GlueFailure(error, cause, after_script, state))

    def fail_glue_start(self, error_code: str, times: int = 1) -> None:
        """The next ``times`` StartJobRun calls fail with ``Glue.<error_code>``."""
        self._faults.glue_start_errors.extend([error_code] * times)

    def concurrent_runs_exceeded(self, times: int = 1) -> None:
        """The next ``times`` StartJobRun calls fail with ``ConcurrentRunsExceededException``."""
        self.fail_glue_start("ConcurrentRunsExceededException", times)

    def crash_trigger_before_start(self, times: int = 1) -> None:
        """The trigger's next ``times`` invocations die after claiming their objects and
        before starting the execution (a Lambda timeout or out-of-memory): no error is
        reported, the records reappear after the visibility timeout."""
        self._faults.start_execution_errors.extend([_CRASH] * times)

    def slow_start_execution(self, seconds: float, times: int = 1) -> None:
        """The trigger's next ``times`` StartExecution calls take ``seconds`` (real time)
        before going through: the invocation holds its claimed objects meanwhile."""
        self._faults.start_execution_errors.extend([f"LocalDelay:{seconds}"] * times)

    def throttle_start_execution(self, times: int = 1) -> None:
        """The trigger's next ``times`` StartExecution calls are throttled."""
        self._faults.start_execution_errors.extend(["ThrottlingException"] * times)

    # ------------------------------------------------------------------ the Glue run

    def start_glue_run(self, original: Callable[..., str], job: Any, kwargs: dict[str, Any]) -> str:
        from moto.core.exceptions import JsonRESTError

        with self._lock:
            if self._faults.glue_start_errors:
                code = self._faults.glue_start_errors.popleft()
                raise JsonRESTError(code, f"{code} (injected by LocalPipeline)")
            failure = self._faults.glue_failures.popleft() if self._faults.glue_failures else None
        try:
            run_id = str(original(job, **kwargs))
        except Exception as error:
            if type(error).__name__ == "ConcurrentRunsExceededException":
                with self._lock:
                    self.glue_concurrency_rejections += 1
            raise
        fake_run = next(r for r in job.job_runs if r.job_run_id == run_id)
        fake_run.__class__ = held_job_run_class()  # its state is ours to set, not moto's clock
        fake_run.status = "RUNNING"
        arguments = {str(k): str(v) for k, v in (fake_run.arguments or {}).items()}
        # The run goes on after StartJobRun returns, as on Glue: while it runs it counts
        # against the job's MaxConcurrentRuns, so a burst really meets Glue's limit.
        worker = threading.Thread(
            target=self._finish_glue_run,
            args=(fake_run, run_id, arguments, failure),
            name=f"glue-run-{run_id[:12]}",
            daemon=True,
        )
        self._glue_workers.append(worker)
        worker.start()
        return run_id

    def _finish_glue_run(
        self,
        fake_run: Any,
        run_id: str,
        arguments: dict[str, str],
        failure: Optional[_GlueFailure],
    ) -> None:
        status, message, written = "SUCCEEDED", None, []
        if failure is None or failure.after_script:
            try:
                self._check_glue_reads(arguments)
                written = self._run_script(arguments, run_id)
                self._check_glue_writes(written, getattr(self._mirror, "deleted", []))
            except Exception as error:
                status, message = "FAILED", f"{type(error).__name__}: {error}"
        if failure is not None and status == "SUCCEEDED":
            status, message = failure.state, f"{failure.error}: {failure.cause}"
        fake_run.error_message = message
        with self._lock:
            self._glue_runs.append(GlueRun(run_id, arguments, status, message, written))
        fake_run.status = status
        if status in _FAILED_RUN_STATES:
            self._emit_job_state_change(run_id, status, message or "")

    def _emit_job_state_change(self, run_id: str, state: str, message: str) -> None:
        """Glue's "Job State Change" event, through the template's rule to its target."""
        if self._notifier_arn is None or self._job_state_pattern is None:
            return
        event = _event(
            "aws.glue",
            "Glue Job State Change",
            detail={
                "jobName": self.glue_job_name,
                "severity": "ERROR",
                "state": state,
                "jobRunId": run_id,
                "message": message,
            },
        )
        from moto.events.models import EventPattern

        # moto's own matcher (its TestEventPattern API answers nothing).
        if EventPattern.load(json.dumps(self._job_state_pattern)).matches_event(cast(Any, event)):
            self._sfn.start_execution(
                stateMachineArn=self._notifier_arn, name=event["id"], input=json.dumps(event)
            )

    def run_glue_job_directly(self, arguments: Optional[dict[str, str]] = None) -> str:
        """Start a run of the job outside the workflow (by hand, as from the console);
        return its run id. Its failure reaches the alarm topic through the job-state rule."""
        import boto3

        glue = boto3.client("glue", region_name=REGION)
        return str(
            glue.start_job_run(JobName=self.glue_job_name, Arguments=arguments or {})["JobRunId"]
        )

    def _check_glue_reads(self, arguments: dict[str, str]) -> None:
        """The objects of the run (and its manifest), read as the job's role."""
        uris = list(json.loads(arguments.get("--objects") or "[]"))
        manifest = arguments.get("--manifest") or ""
        if manifest:
            bucket, _, key = manifest.removeprefix("s3://").partition("/")
            self.access.check_s3(self._glue_role, "s3:GetObject", bucket, key)
            text = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
            uris += parse_manifest_lines(text.splitlines())
        for uri in uris:
            bucket, _, key = str(uri).removeprefix("s3://").partition("/")
            self.access.check_s3(self._glue_role, "s3:GetObject", bucket, key)

    def _check_glue_writes(self, written: list[str], deleted: list[str]) -> None:
        for action, uris in (("s3:PutObject", written), ("s3:DeleteObject", deleted)):
            for uri in uris:
                bucket, _, key = uri.removeprefix("s3://").partition("/")
                self.access.check_s3(self._glue_role, action, bucket, key)

    def _run_script(self, arguments: dict[str, str], run_id: str) -> list[str]:
        if self._glue_runner is not None:
            self._glue_runner(self.glue_script, arguments)
            return []
        _spark.check_spark_line(self.glue_version)
        # Glue adds its own arguments before the job's: scripts must parse them as Glue does.
        arguments = {
            "--JOB_ID": f"j_{self.glue_job_name}",
            "--JOB_RUN_ID": run_id,
            "--JOB_NAME": self.glue_job_name,
            "--TempDir": f"s3://aws-glue-assets-{ACCOUNT}-{REGION}/temporary/",
            "--job-bookmark-option": "job-bookmark-disable",
            **arguments,
        }
        buckets = [b["Name"] for b in self._s3.list_buckets().get("Buckets", [])]
        with _spark._lock:
            spark = _spark.spark_session()
            self._mirror.pull(self._s3, buckets)
            for bucket in buckets:
                _spark.mount_bucket(spark, bucket, self._mirror.folder(bucket))
            try:
                _spark.run_script(self.glue_script, arguments)
            finally:
                written = self._mirror.push(self._s3, buckets)
        return written


def _subscribe_capture_queue(sns: Any, topic_arn: str) -> None:
    """Deliver the topic's messages, raw and with their attributes, to the capture queue."""
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:{_CAPTURE_QUEUE}",
        Attributes={"RawMessageDelivery": "true"},
    )


def _refers_to(value: Any, logical_id: str) -> bool:
    return logical_id in json.dumps(value)


EXECUTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
"""Step Functions' execution names: 1 to 80 characters (these are safe in every API)."""
EXECUTION_INPUT_LIMIT = 262_144
"""Step Functions' largest execution input, in bytes (256 KB)."""


def check_start_execution_limits(call: Mapping[str, Any]) -> None:
    """Refuse what Step Functions refuses: a name over 80 characters (or with characters
    outside ``A-Za-z0-9_-``), an input over 256 KB."""
    from botocore.exceptions import ClientError

    name = str(call.get("name", ""))
    if name and not EXECUTION_NAME.fullmatch(name):
        raise ClientError(
            {"Error": {"Code": "InvalidName", "Message": f"Invalid Name: '{name}'"}},
            "StartExecution",
        )
    size = len(str(call.get("input", "")).encode("utf-8"))
    if size > EXECUTION_INPUT_LIMIT:
        raise ClientError(
            {
                "Error": {
                    "Code": "InvalidExecutionInput",
                    "Message": f"input of {size} bytes exceeds {EXECUTION_INPUT_LIMIT}",
                }
            },
            "StartExecution",
        )


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


class UnresolvableReferenceError(ValueError):
    """The template refers to something outside itself that the emulation cannot know."""


def _event(
    source: str, detail_type: str, *, detail: dict[str, Any], resources: Optional[list[str]] = None
) -> dict[str, Any]:
    """An EventBridge event as AWS services put them on the default bus."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": resources or [],
        "detail": detail,
    }


def _glue_job_arn(job_name: str) -> str:
    return f"arn:aws:glue:{REGION}:{ACCOUNT}:job/{job_name}"

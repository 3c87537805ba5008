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
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, Union, cast
from urllib.parse import quote_plus

from . import _moto_patches, _spark, _time
from ._access import TASK_GATES, AccessGate, GatedClient, install_task_gates
from ._definition import machine_definition, pattern_of_rule_targeting, point_at_emulated_topics
from ._faults import Faults
from ._glue_emulation import ACTIVE_JOBS, GlueEmulator, GlueRunner, glue_hooks
from ._lambda_emulation import (
    AsyncInvoker,
    FaultyClient,
    LambdaContext,
    SerialClient,
    SqsPoller,
    drain,
    load_handler_module,
)
from ._layout import PipelineLayout
from ._observation import GlueRun, NotificationCapture, Run, executions, finished_runs
from ._output import read_table_rows
from ._permissions import AccessDeniedError, Policies
from ._template import (
    ACCOUNT,
    REGION,
    StackTemplate,
    load_from_assembly,
)

if TYPE_CHECKING:
    from aws_cdk import Stack


DEFAULT_TIME_SCALE = 100.0
"""A local Spark run of seconds stands for a Glue run of minutes, as the waits around it."""
_MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}}
_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/event-driven-etl-local"
_sequencer = itertools.count(1)
_CAPTURE_QUEUE = "local-notifications"


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
        self.faults = Faults()
        """Fault injection: ``local.faults.glue_run_fails(...)`` and the other verbs."""
        self._events: list[dict[str, Any]] = []
        self._glue: Optional[GlueEmulator] = None
        self.deliver_immediately = True
        """Per-object mode: invoke the trigger on each event at once (as Lambda would). Set
        False to hold events until :meth:`flush` or :meth:`wait_for_runs`, e.g. to start a
        whole burst at the same moment."""
        self._mock: Any = None
        self._env_saved: dict[str, Optional[str]] = {}
        self._tmp: Optional[tempfile.TemporaryDirectory[str]] = None
        self._handler: Optional[ModuleType] = None
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

    def _discover(self) -> None:
        layout = PipelineLayout.read(self._stack, self._path)
        self.layout = layout
        """The pipeline as synthesized: ids, names, ARNs and delivery settings."""
        self._resources = dict(layout.resources)
        self._resolver = layout.resolver
        self._machine_id, self._job_id = layout.machine_id, layout.job_id
        self._function_id, self._rule_id = layout.function_id, layout.rule_id
        self._dlq_id, self._queue_id = layout.dlq_id, layout.queue_id
        self._table_id, self._notifier_id = layout.table_id, layout.notifier_id
        self.handler_dir, self._handler_entry = layout.handler_dir, layout.handler_entry
        self.glue_version = layout.glue_version
        """The job's Glue version, as synthesized (``"5.1"``)."""
        self.glue_script = layout.glue_script
        self._batch_size, self._max_receive = layout.batch_size, layout.max_receive
        self._retry_attempts = layout.retry_attempts
        self._reports_item_failures = layout.reports_item_failures
        self._pollers = layout.pollers

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
        self._sqs = SerialClient(boto3.client("sqs", region_name=REGION))
        self._sfn = boto3.client("stepfunctions", region_name=REGION)
        self._create_resources()
        self._create_access_gate()
        self._glue = GlueEmulator(
            job_name=self.glue_job_name,
            script=self.glue_script,
            glue_version=self.glue_version,
            runner=self._glue_runner,
            faults=self.faults,
            access=self.access,
            role=self.access.role_of(self._job_id),
            s3=self._s3,
            mirror=self._mirror,
            on_failed=self._emit_job_state_change,
        )
        glue_hooks.install()
        ACTIVE_JOBS[self.glue_job_name] = self._glue
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
            for worker in self._glue.workers if self._glue else []:
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
        capture_url = self._sqs.create_queue(QueueName=_CAPTURE_QUEUE)["QueueUrl"]
        self._capture = NotificationCapture(self._sqs, capture_url)
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
        definition = machine_definition(self._resources, self._resolver, logical_id)
        return point_at_emulated_topics(definition, self._topic_arns, self._emulate_topic)

    def _pattern_of_rule_targeting(self, logical_id: str) -> dict[str, Any]:
        return pattern_of_rule_targeting(self._resources, self._resolver, logical_id)

    def _emulate_topic(self, arn: str) -> str:
        """A topic imported by ARN becomes an emulated topic of the same name, subscribed to
        the capture queue."""
        import boto3

        sns = boto3.client("sns", region_name=REGION)
        emulated = str(sns.create_topic(Name=arn.rsplit(":", 1)[-1])["TopicArn"])
        if emulated not in self._topic_arns:
            _subscribe_capture_queue(sns, emulated)
            self._topic_arns.append(emulated)
        return emulated

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
        self._events_client = SerialClient(events)

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
                        SerialClient(boto3.client("stepfunctions", region_name=REGION)),
                        "start_execution",
                        self.faults.start_execution_errors,
                    ),
                    {"start_execution": start_execution},
                ),
                dynamodb=GatedClient(
                    SerialClient(boto3.client("dynamodb", region_name=REGION)),
                    {
                        f"{op}_item": table_call(f"dynamodb:{op.title()}Item")
                        for op in ("get", "put", "update", "delete")
                    },
                ),
                s3=GatedClient(
                    SerialClient(boto3.client("s3", region_name=REGION)),
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
        AsyncInvoker(
            self._sqs,
            self._delivery_queue_url,
            self._invoke_handler,
            retry_attempts=self._retry_attempts,
            on_failure=self._send_to_failure_destination,
        ).run()

    def _send_to_failure_destination(self, event: dict[str, Any], error: BaseException) -> None:
        """Lambda sends a failed event to the on-failure destination as the function's
        role; a destination the role may not send to loses it."""
        try:
            self.access.check_queue_send(self._trigger_role, str(self._resolver.arns[self._dlq_id]))
        except AccessDeniedError:
            self.lost_events.append(event)
            return
        self._sqs.send_message(
            QueueUrl=self.dead_letter_queue_url,
            MessageBody=json.dumps(
                {
                    "requestContext": {"condition": "RetriesExhausted"},
                    "requestPayload": event,
                    "responsePayload": {
                        "errorType": type(error).__name__,
                        "errorMessage": str(error),
                    },
                }
            ),
        )

    def _dispatch_batches(self) -> None:
        """Hand the event queue to the handler in batches, as the SQS event source does."""
        assert self.event_queue_url is not None
        SqsPoller(
            self._sqs,
            self.event_queue_url,
            self._invoke_handler,
            pollers=self._pollers,
            batch_size=self._batch_size,
            reports_item_failures=self._reports_item_failures,
        ).run()

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
            glue_busy = self._glue is not None and self._glue.busy()
            if not running and not glue_busy:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(running)} execution(s) still running after {timeout} seconds"
                )
            time.sleep(0.1)

    def _executions(self, machine: str, status: Optional[str] = None) -> list[dict[str, Any]]:
        return executions(self._sfn, machine, status)

    def runs(self) -> list[Run]:
        """Every finished execution so far, oldest first."""
        return finished_runs(self._sfn, self._s3, self.state_machine_arn)

    @property
    def notifications(self) -> list[dict[str, Any]]:
        """Parsed JSON messages published to the notification topic, oldest first."""
        return self._capture.messages

    @property
    def notification_attributes(self) -> list[dict[str, Any]]:
        """The SNS message attributes of each notification (``{"status": ...}``)."""
        return self._capture.attributes

    @property
    def glue_runs(self) -> list[GlueRun]:
        """Glue job runs that ended so far, with their arguments and outcome."""
        return list(self._glue.runs) if self._glue else []

    @property
    def glue_concurrency_rejections(self) -> int:
        """StartJobRun calls Glue refused because MaxConcurrentRuns runs were running."""
        return self._glue.concurrency_rejections if self._glue else 0

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
        return [json.loads(b) for b in drain(self._sqs, self.dead_letter_queue_url)]

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
        (The same as ``faults.glue_run_fails``.)
        """
        self.faults.glue_run_fails(error, cause, after_script=after_script, state=state)

    def fail_glue_start(self, error_code: str, times: int = 1) -> None:
        """``faults.glue_start_fails``: StartJobRun fails with ``Glue.<error_code>``."""
        self.faults.glue_start_fails(error_code, times)

    def concurrent_runs_exceeded(self, times: int = 1) -> None:
        """``faults.glue_concurrency_exceeded``: Glue refuses the next StartJobRun calls."""
        self.faults.glue_concurrency_exceeded(times)

    def throttle_start_execution(self, times: int = 1) -> None:
        """``faults.start_execution_throttled``: the trigger's StartExecution is throttled."""
        self.faults.start_execution_throttled(times)

    def slow_start_execution(self, seconds: float, times: int = 1) -> None:
        """``faults.start_execution_slow``: the trigger's StartExecution takes ``seconds``."""
        self.faults.start_execution_slow(seconds, times)

    def crash_trigger_before_start(self, times: int = 1) -> None:
        """``faults.trigger_crashes_before_start``: the invocation dies holding its claims."""
        self.faults.trigger_crashes_before_start(times)

    # ------------------------------------------------------------------ the Glue run

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


def _subscribe_capture_queue(sns: Any, topic_arn: str) -> None:
    """Deliver the topic's messages, raw and with their attributes, to the capture queue."""
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:{_CAPTURE_QUEUE}",
        Attributes={"RawMessageDelivery": "true"},
    )


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

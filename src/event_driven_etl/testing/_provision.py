"""Create one pipeline's resources in the emulated services (moto), from its layout.

:func:`provision` makes what the template makes, named as the layout names it: the buckets
(versioned as synthesized), the catalog databases, the Glue job (arguments, concurrency,
retries), the queues (visibility and redrive as synthesized), the deduplication table,
the topics (each subscribed to a capture queue the test reads), the state machines and the
object-created rule. It returns where each ended up, as an :class:`Emulation`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

from .._contract import (
    CATALOG_DATABASE_ARGUMENT,
    CATALOG_TABLE_ARGUMENT,
    OUTPUT_PATH_ARGUMENT,
)
from ._clients import emulated_client
from ._definition import (
    check_intrinsic_literals,
    machine_definition,
    pattern_of_rule_targeting,
    point_at_emulated_topics,
)
from ._layout import PipelineLayout
from ._sns import NotificationCapture
from ._template import ACCOUNT, REGION

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/event-driven-etl-local"
"""The role moto records on what it creates; the real roles are checked by ``_iam``."""
CAPTURE_QUEUE = "local-notifications"
DELIVERY_QUEUE = "local-lambda-deliveries"
"""Per-object mode: what EventBridge hands the function, observed through a queue."""


@dataclass(frozen=True)
class Emulation:
    """Where the pipeline's resources are in the emulated services."""

    source_bucket: str
    output_bucket: str
    glue_job_name: str
    catalog_database: Optional[str]
    catalog_table: Optional[str]
    dead_letter_queue_url: str
    event_queue_url: Optional[str]
    delivery_queue_url: str
    state_machine_arn: str
    notifier_arn: Optional[str]
    job_state_pattern: Optional[dict[str, Any]]
    rule_pattern: dict[str, Any]
    rule_target: dict[str, Any]
    rule_arn: str
    capture: NotificationCapture
    maintenance_notifier_arn: Optional[str] = None
    maintenance_job_state_pattern: Optional[dict[str, Any]] = None
    """The table maintenance job's failed-run notifier and its rule's pattern (or None)."""


def provision(layout: PipelineLayout, *, sqs: Any) -> Emulation:
    """Create the pipeline's resources (moto must be running); ``sqs`` is the client every
    queue call goes through (serialised, see ``_clients.SerialClient``)."""
    return _Provisioner(layout, sqs).run()


class _Provisioner:
    def __init__(self, layout: PipelineLayout, sqs: Any) -> None:
        self._layout = layout
        self._resources = layout.resources
        self._resolver = layout.resolver
        self._sqs = sqs
        self._s3 = emulated_client("s3")
        self._sns = emulated_client("sns")
        self._sfn = emulated_client("stepfunctions")
        self._glue = emulated_client("glue")
        self._topic_arns: list[str] = []

    def _props(self, logical_id: str) -> dict[str, Any]:
        return dict(self._resources[logical_id].get("Properties", {}))

    def run(self) -> Emulation:
        layout = self._layout
        for logical_id, resource in self._resources.items():
            if resource["Type"] == "AWS::S3::Bucket":
                self._bucket(self._resolver.physical[logical_id], resource)
        rule = self._props(layout.rule_id)
        rule_pattern: dict[str, Any] = self._resolver.resolve(rule["EventPattern"])
        source_bucket = str(rule_pattern["detail"]["bucket"]["name"][0])
        self._bucket(source_bucket, None)
        arguments = {
            str(k): str(v)
            for k, v in self._resolver.resolve(
                self._props(layout.job_id).get("DefaultArguments", {})
            ).items()
        }
        output_path = arguments.get(OUTPUT_PATH_ARGUMENT, "")
        output_bucket = output_path[5:].split("/", 1)[0] if output_path.startswith("s3://") else ""
        if output_bucket:
            self._bucket(output_bucket, None)
        catalog_database = arguments.get(CATALOG_DATABASE_ARGUMENT) or None
        self._databases(catalog_database)
        glue_job_name = self._glue_job(arguments)
        dead_letter_queue_url, event_queue_url = self._queues()
        delivery_queue_url = self._sqs.create_queue(QueueName=DELIVERY_QUEUE)["QueueUrl"]
        self._table()
        capture = self._topics_and_capture()
        state_machine_arn = self._state_machine(layout.machine_id)
        notifier_arn, job_state_pattern = None, None
        if layout.notifier_id:
            notifier_arn = self._state_machine(layout.notifier_id)
            job_state_pattern = pattern_of_rule_targeting(
                self._resources, self._resolver, layout.notifier_id
            )
        rule_target = self._rule_target()
        maintenance_notifier, maintenance_pattern = None, None
        if layout.maintenance_notifier_id:
            maintenance_notifier = self._state_machine(layout.maintenance_notifier_id)
            maintenance_pattern = pattern_of_rule_targeting(
                self._resources, self._resolver, layout.maintenance_notifier_id
            )
        return Emulation(
            source_bucket=source_bucket,
            output_bucket=output_bucket,
            glue_job_name=glue_job_name,
            catalog_database=catalog_database,
            catalog_table=arguments.get(CATALOG_TABLE_ARGUMENT) or None,
            dead_letter_queue_url=dead_letter_queue_url,
            event_queue_url=event_queue_url,
            delivery_queue_url=delivery_queue_url,
            state_machine_arn=state_machine_arn,
            notifier_arn=notifier_arn,
            job_state_pattern=job_state_pattern,
            rule_pattern=rule_pattern,
            rule_target=rule_target,
            rule_arn=str(self._resolver.get_att(layout.rule_id, "Arn")),
            capture=capture,
            maintenance_notifier_arn=maintenance_notifier,
            maintenance_job_state_pattern=maintenance_pattern,
        )

    # ------------------------------------------------------------------ storage

    def _bucket(self, name: str, resource: Optional[dict[str, Any]]) -> None:
        existing = {b["Name"] for b in self._s3.list_buckets().get("Buckets", [])}
        if name in existing:
            return
        self._s3.create_bucket(Bucket=name)
        versioning = (resource or {}).get("Properties", {}).get("VersioningConfiguration", {})
        if versioning.get("Status") == "Enabled":
            self._s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Enabled"}
            )

    def _databases(self, job_database: Optional[str]) -> None:
        """The template's Glue databases, and a database the job names that another stack
        owns (brought by the user), so the script's catalog calls meet a real catalog."""
        names = {
            str(self._resolver.physical[lid])
            for lid, r in self._resources.items()
            if r["Type"] == "AWS::Glue::Database"
        }
        if job_database:
            names.add(job_database)
        for name in sorted(names):
            self._glue.create_database(DatabaseInput={"Name": name})

    def _glue_job(self, arguments: dict[str, str]) -> str:
        layout = self._layout
        job = self._props(layout.job_id)
        name = str(self._resolver.physical[layout.job_id])
        self._glue.create_job(
            Name=name,
            Role=ROLE_ARN,
            Command={
                "Name": "glueetl",
                "ScriptLocation": f"s3://local-assets/{layout.glue_script.name}",
            },
            DefaultArguments=arguments,
            ExecutionProperty={
                "MaxConcurrentRuns": int(
                    job.get("ExecutionProperty", {}).get("MaxConcurrentRuns", 1)
                )
            },
            MaxRetries=int(job.get("MaxRetries", 0)),
        )
        return name

    def _table(self) -> None:
        if not self._layout.table_id:
            return

        emulated_client("dynamodb").create_table(
            TableName=self._resolver.physical[self._layout.table_id],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    # ------------------------------------------------------------------ messaging

    def _queues(self) -> tuple[str, Optional[str]]:
        """The dead-letter queue, and the event queue (batching mode) with its visibility
        timeout and its redrive as synthesized."""
        layout = self._layout
        dead_letter_url = self._sqs.create_queue(QueueName=layout.dlq_id)["QueueUrl"]
        if not layout.queue_id:
            return dead_letter_url, None
        props = self._props(layout.queue_id)
        # As synthesized: moto's SQS reads the virtual clock (``_sqs``).
        attributes = {"VisibilityTimeout": str(int(props.get("VisibilityTimeout", 30)))}
        redrive = self._resolver.resolve(props.get("RedrivePolicy"))
        if redrive:  # as synthesized: without one, a failing record is received for ever
            target_name = str(redrive["deadLetterTargetArn"]).rsplit(":", 1)[-1]
            self._sqs.create_queue(QueueName=target_name)
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{target_name}",
                    "maxReceiveCount": int(redrive["maxReceiveCount"]),
                }
            )
        event_queue_url = self._sqs.create_queue(QueueName=layout.queue_id, Attributes=attributes)[
            "QueueUrl"
        ]
        return dead_letter_url, event_queue_url

    def _topics_and_capture(self) -> NotificationCapture:
        """The topics the workflows publish to, each delivering to the capture queue."""
        layout = self._layout
        machines = json.dumps(
            [self._props(i) for i in (layout.machine_id, layout.notifier_id) if i]
        )
        capture_url = self._sqs.create_queue(QueueName=CAPTURE_QUEUE)["QueueUrl"]
        for logical_id, resource in self._resources.items():
            if resource["Type"] == "AWS::SNS::Topic" and logical_id in machines:
                self._captured_topic(logical_id)
        return NotificationCapture(self._sqs, capture_url)

    def _captured_topic(self, name: str) -> str:
        arn = str(self._sns.create_topic(Name=name)["TopicArn"])
        if arn not in self._topic_arns:
            self._sns.subscribe(
                TopicArn=arn,
                Protocol="sqs",
                Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:{CAPTURE_QUEUE}",
                Attributes={"RawMessageDelivery": "true"},
            )
            self._topic_arns.append(arn)
        return arn

    # ------------------------------------------------------------------ orchestration

    def _state_machine(self, logical_id: str) -> str:
        definition = point_at_emulated_topics(
            machine_definition(self._resources, self._resolver, logical_id),
            self._topic_arns,
            # A topic imported by ARN becomes an emulated topic of the same name.
            lambda arn: self._captured_topic(arn.rsplit(":", 1)[-1]),
        )
        check_intrinsic_literals(definition)  # moto's parser accepts what AWS refuses
        arn = self._sfn.create_state_machine(
            name=logical_id, definition=definition, roleArn=ROLE_ARN
        )["stateMachineArn"]
        return str(arn)

    def _rule_target(self) -> dict[str, Any]:
        """The object-created rule's target as synthesized (retry policy, dead-letter queue,
        input); the rule itself is emulated in ``_events``."""
        rule_id = self._layout.rule_id
        targets = self._props(rule_id).get("Targets", [])
        if not targets:
            raise ValueError(f"the rule {rule_id} has no target")
        target: dict[str, Any] = self._resolver.resolve(targets[0])
        return target

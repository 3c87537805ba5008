"""TriggerFunction: the Lambda that turns S3 object events into workflow executions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import jsii
from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.interfaces import aws_events as events_refs
from constructs import Construct

from . import _defaults, _hygiene, _validation
from ._contract import (
    EVENTBRIDGE_MAX_EVENT_AGE_SECONDS,
    EVENTBRIDGE_MAX_RETRY_ATTEMPTS,
    INLINE_LIMIT_BYTES,
    MANIFEST_PREFIX,
)
from ._docs import public
from ._problems import is_unresolved
from .retry import Batching
from .runtime.trigger.s3_events import encode_key

__all__ = ["TriggerFunction"]

_HANDLER_DIR = Path(__file__).parent / "runtime" / "trigger"
"""The handler's source, deployed as the function's code. The asset holds only this
directory, so the handler cannot import ``event_driven_etl._contract``: the contract values
it needs reach it in the function's environment (``INLINE_LIMIT_BYTES``, ``MANIFEST_PREFIX``)."""

_ASSET_EXCLUDES = ["__pycache__", "*.pyc", "__init__.py"]
"""Kept out of the asset so its hash is the same before and after ``pip install``."""

_TRIGGER_MAX_CONCURRENCY = 2
"""Most concurrent trigger invocations in batching mode (the event source's
``ScalingConfig.MaximumConcurrency``; 2 is the lowest SQS allows)."""

_MAX_RECEIVE_COUNT = 5
"""Deliveries of one SQS message before it moves to the dead-letter queue."""


@public
class TriggerFunction(Construct):
    """The trigger Lambda, and (with ``source_bucket``) the EventBridge rule that feeds it.

    Per-object mode (no ``batching``): the rule invokes the function asynchronously for each
    "Object Created" event; each object starts one execution whose name is derived from the
    object's identity, so a redelivered event starts nothing new. Events that fail after
    ``retry_attempts`` (or are older than ``max_event_age``) go to ``dead_letter_queue``.

    Batching mode: the rule sends events to ``queue``; the function reads batches, drops
    objects already taken (a DynamoDB mark per object version), and starts one execution per
    batch. Messages it cannot process are returned as batch item failures and, after
    5 receives, land in ``dead_letter_queue``.

    Example::

        TriggerFunction(self, "Trigger", state_machine=workflow.state_machine,
                        source_bucket=bucket, key_prefix="incoming/")
    """

    function: lambda_.IFunction
    """The trigger Lambda (Python, ARM64)."""

    dead_letter_queue: sqs.IQueue
    """Where events end that could not start an execution; alarm on it."""

    rule: Optional[events.IRule]
    """The "Object Created" rule (only when ``source_bucket`` is given)."""

    queue: Optional[sqs.IQueue]
    """The event queue between the rule and the function (batching mode only)."""

    dedup_table: Optional[dynamodb.ITable]
    """Marks of objects already taken by a batch (batching mode only)."""

    log_group: logs.ILogGroup
    """The function's log group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        source_bucket: Optional[s3.IBucket] = None,
        key_prefix: Optional[str] = None,
        key_suffix: Optional[str] = None,
        batching: Optional[Batching] = None,
        manifest_bucket: Optional[s3.IBucket] = None,
        manifest_prefix: str = MANIFEST_PREFIX,
        timeout: Optional[Duration] = None,
        retry_attempts: int = 2,
        max_event_age: Duration = Duration.hours(6),
        encryption_key: Optional[kms.IKey] = None,
        log_retention: logs.RetentionDays = _defaults.DEFAULT_LOG_RETENTION,
        ignored_locations: Optional[Sequence[str]] = None,
    ) -> None:
        """
        :param state_machine: The workflow each object (or batch) starts.
        :param source_bucket: The bucket whose "Object Created" events start the workflow; a
            rule for it is created and events for other buckets are skipped.
            Default: - no rule; events for any bucket are accepted
        :param key_prefix: Only keys starting with this (as stored in S3) start the workflow.
            Default: - any key
        :param key_suffix: Only keys ending with this start the workflow; with ``key_prefix``
            both must hold. Default: - any key
        :param batching: Group events into one execution per batch through an SQS queue.
            Default: - one execution per object
        :param manifest_bucket: Where a batch too large to pass inline is written as a
            manifest (batching mode). Default: - no manifests; batches are always inline
        :param manifest_prefix: Key prefix of manifests. Default: "manifests/"
        :param ignored_locations: ``s3://bucket/prefix`` locations the pipeline itself writes
            (output, manifests, quarantine): events under them are skipped, so the pipeline
            can never trigger itself. Default: - none
        :param timeout: Function timeout. Default: - 1 minute, 5 minutes with batching
        :param retry_attempts: Lambda retries of a failed asynchronous invocation (per-object
            mode), 0 to 2. Default: 2
        :param max_event_age: Oldest event Lambda still tries (per-object mode), 1 minute to
            6 hours. Default: 6 hours
        :param encryption_key: Key for the queues, the deduplication table and the log group.
            Default: - SQS-, DynamoDB- and CloudWatch-Logs-managed encryption
        :param log_retention: Retention of the function's log group. Default: one year
        """
        _validation.validate_trigger(construct_id, locals(), TriggerFunction.__init__)
        super().__init__(scope, construct_id)
        timeout = timeout or (Duration.minutes(5) if batching else Duration.minutes(1))
        self.log_group = _defaults.new_log_group(
            self,
            "LogGroup",
            log_group_name=None,
            retention=log_retention,
            encryption_key=encryption_key,
        )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="event-driven-etl trigger: start the workflow, write own logs",
        )
        self.dead_letter_queue = _defaults.new_queue(
            self, "DeadLetterQueue", encryption_key=encryption_key
        )
        function = self._create_function(
            role,
            timeout,
            encryption_key,
            self._environment(state_machine, source_bucket, ignored_locations),
        )
        self.function = function
        self.log_group.grant_write(role)
        state_machine.grant_start_execution(function)
        self.queue = None
        self.dedup_table = None
        self.rule = None
        if batching is not None:
            queue = self._wire_batching(function, timeout, encryption_key)
            if manifest_bucket is not None:
                self._allow_manifests(function, manifest_bucket, manifest_prefix)
            self._add_event_source(function, queue, batching)
        else:
            self._wire_asynchronous_invocation(function, retry_attempts, max_event_age)
        if encryption_key is not None:
            # EventBridge delivers into the encrypted queues (the event queue, and the
            # dead-letter queue of every rule target) with its own principal.
            _defaults.allow_eventbridge_to_use_key_for_queues(encryption_key)
        if source_bucket is not None:
            self.rule = self._object_created_rule(
                source_bucket,
                key_prefix,
                key_suffix,
                retry_attempts=EVENTBRIDGE_MAX_RETRY_ATTEMPTS,
                max_event_age=Duration.seconds(EVENTBRIDGE_MAX_EVENT_AGE_SECONDS),
            )
            _hygiene.tidy_bucket_notifications_handler(self)
            # A bucket of another stack gets CDK's notifications handler in *its* stack.
            _hygiene.tidy_bucket_notifications_handler(source_bucket)
        _hygiene.depend_only_on_role_policy(function.node.default_child, role)
        _hygiene.acknowledge_necessary_wildcards(role)

    def metric_errors(self, *, period: Optional[Duration] = None) -> cloudwatch.Metric:
        """Invocations that failed. Sum over 5 minutes by default."""
        return self.function.metric_errors(period=period or Duration.minutes(5), statistic="Sum")

    def metric_throttles(self, *, period: Optional[Duration] = None) -> cloudwatch.Metric:
        """Invocations that were throttled. Sum over 5 minutes by default."""
        return self.function.metric_throttles(period=period or Duration.minutes(5), statistic="Sum")

    def _environment(
        self,
        state_machine: sfn.IStateMachine,
        source_bucket: Optional[s3.IBucket],
        ignored_locations: Optional[Sequence[str]],
    ) -> dict[str, str]:
        """The handler's configuration; ``INLINE_LIMIT_BYTES`` is the contract's, passed here
        because the handler's asset cannot import it."""
        environment = {
            "STATE_MACHINE_ARN": state_machine.state_machine_arn,
            "INLINE_LIMIT_BYTES": str(INLINE_LIMIT_BYTES),
        }
        if source_bucket is not None:
            environment["SOURCE_BUCKET"] = source_bucket.bucket_name
        if ignored_locations:
            environment["IGNORED_LOCATIONS"] = Stack.of(self).to_json_string(
                list(ignored_locations)
            )
        return environment

    def _create_function(
        self,
        role: iam.IRole,
        timeout: Duration,
        encryption_key: Optional[kms.IKey],
        environment: dict[str, str],
    ) -> lambda_.Function:
        function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(_HANDLER_DIR), exclude=_ASSET_EXCLUDES),
            timeout=timeout,
            memory_size=256,
            role=role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.TEXT,
            environment=environment,
            environment_encryption=encryption_key,
            description="event-driven-etl: start the ETL workflow for new S3 objects",
        )
        resource = function.node.default_child
        if isinstance(resource, CfnResource):
            skips = [*_hygiene.LAMBDA_CHECKOV_SKIPS, *([] if encryption_key else ["CKV_AWS_173"])]
            _hygiene.skip_checkov(resource, *skips)
        return function

    def _wire_asynchronous_invocation(
        self, function: lambda_.Function, retry_attempts: int, max_event_age: Duration
    ) -> None:
        """Per-object mode: Lambda retries a failed invocation, then sends the event to the
        dead-letter queue."""
        function.configure_async_invoke(
            retry_attempts=retry_attempts,
            max_event_age=max_event_age,
            on_failure=_QueueDestination(self.dead_letter_queue),
        )
        _hygiene.acknowledge_destination_queue(self.dead_letter_queue)

    def _wire_batching(
        self, function: lambda_.Function, timeout: Duration, encryption_key: Optional[kms.IKey]
    ) -> sqs.Queue:
        """The event queue the rule feeds and the deduplication table of the batches."""
        # AWS recommends a visibility timeout of six times the function timeout for SQS sources.
        visibility = Duration.seconds(min(6 * timeout.to_seconds(), 12 * 3600))
        queue = _defaults.new_queue(
            self,
            "EventQueue",
            encryption_key=encryption_key,
            visibility_timeout=visibility,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=_MAX_RECEIVE_COUNT
            ),
        )
        self.queue = queue
        table = self._dedup_table(encryption_key)
        table.grant(function, "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
        if encryption_key is not None:
            # DynamoDB uses a customer managed key on the caller's behalf: the writer needs
            # these (AWS: "Authorizing use of your customer managed key").
            encryption_key.grant(
                function,
                "kms:Decrypt",
                "kms:Encrypt",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:DescribeKey",
            )
        self.dedup_table = table
        function.add_environment("DEDUP_TABLE", table.table_name)
        # A pending mark outlives the invocation that wrote it, then may be taken over.
        function.add_environment("LEASE_SECONDS", str(int(timeout.to_seconds()) + 60))
        return queue

    def _dedup_table(self, encryption_key: Optional[kms.IKey]) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            "DedupTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expires_at",
            encryption=(
                dynamodb.TableEncryption.CUSTOMER_MANAGED
                if encryption_key
                else dynamodb.TableEncryption.AWS_MANAGED
            ),
            encryption_key=encryption_key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # Only short-lived deduplication marks live here.
            removal_policy=RemovalPolicy.DESTROY,
        )

    @staticmethod
    def _allow_manifests(
        function: lambda_.Function, manifest_bucket: s3.IBucket, manifest_prefix: str
    ) -> None:
        """Batches too large to pass inline go to the job as a manifest file."""
        manifest_bucket.grant_put(function, f"{manifest_prefix}*")
        function.add_environment("MANIFEST_BUCKET", manifest_bucket.bucket_name)
        function.add_environment("MANIFEST_PREFIX", manifest_prefix)

    @staticmethod
    def _add_event_source(
        function: lambda_.Function, queue: sqs.IQueue, batching: Batching
    ) -> None:
        function.add_event_source(
            event_sources.SqsEventSource(
                queue,
                batch_size=batching.max_batch_size,
                max_batching_window=batching.max_batching_window,
                report_batch_item_failures=True,
                # Without a cap Lambda scales pollers up under load, and each takes its share
                # of the queue: batches shrink below max_batch_size and Glue runs multiply.
                # Two (SQS's lowest MaximumConcurrency) keep batches full; starting an
                # execution takes the function a moment.
                max_concurrency=_TRIGGER_MAX_CONCURRENCY,
            )
        )

    def _object_created_rule(
        self,
        bucket: s3.IBucket,
        key_prefix: Optional[str],
        key_suffix: Optional[str],
        *,
        retry_attempts: int,
        max_event_age: Duration,
    ) -> events.Rule:
        """The rule for the bucket's new objects (prefix AND suffix), delivering to the queue
        or the function with ``retry_attempts`` and ``max_event_age`` (EventBridge's own
        retries of the target, not Lambda's), then to the dead-letter queue."""
        _enable_event_bridge(bucket)
        detail: dict[str, object] = {"bucket": {"name": [bucket.bucket_name]}}
        key_matcher = _object_key_matcher(key_prefix, key_suffix)
        if key_matcher is not None:
            detail["object"] = {"key": key_matcher}
        rule = events.Rule(
            self,
            "ObjectCreatedRule",
            description="event-driven-etl: new objects in the source bucket",
            event_pattern=events.EventPattern(
                source=["aws.s3"], detail_type=["Object Created"], detail=detail
            ),
        )
        target: events.IRuleTarget = (
            _QueueTarget(
                self.queue,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=retry_attempts,
                max_event_age=max_event_age,
            )
            if self.queue is not None
            else targets.LambdaFunction(
                self.function,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=retry_attempts,
                max_event_age=max_event_age,
            )
        )
        rule.add_target(target)
        return rule


def _object_key_matcher(
    key_prefix: Optional[str], key_suffix: Optional[str]
) -> Optional[list[object]]:
    """EventBridge matcher for the event's (URL-encoded) key.

    Two matchers in one array mean OR in EventBridge, so prefix AND suffix become a single
    wildcard ``prefix*suffix``.
    """
    if not key_prefix and not key_suffix:
        return None
    prefix = _encoded(key_prefix)
    suffix = _encoded(key_suffix)
    if prefix and suffix:
        return [{"wildcard": f"{_escape_wildcard(prefix)}*{_escape_wildcard(suffix)}"}]
    if prefix:
        return [{"prefix": prefix}]
    return [{"suffix": suffix}]


def _encoded(value: Optional[str]) -> str:
    if not value:
        return ""
    return value if is_unresolved(value) else encode_key(value)


def _escape_wildcard(value: str) -> str:
    return value.replace("\\", "\\\\").replace("*", "\\*")


def _enable_event_bridge(bucket: s3.IBucket) -> None:
    """Turn on EventBridge notifications, also on a bucket the user brings (not overridable).

    Idempotent: a bucket created with ``event_bridge_enabled=True`` is left as it is.
    """
    bucket.enable_event_bridge_notification()


@jsii.implements(lambda_.IDestination)
class _QueueDestination:
    """Lambda's on-failure destination, granting what sending needs and no more.

    ``destinations.SqsDestination`` grants ``queue.grant_send_messages``, which includes
    ``kms:Encrypt`` and ``kms:ReEncrypt*`` on the queue's key; SQS needs only
    ``kms:GenerateDataKey`` and ``kms:Decrypt`` from a sender.
    """

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(
        self,
        _scope: Construct,
        fn: lambda_.IFunction,
        *,
        type: Optional[lambda_.DestinationType] = None,
    ) -> lambda_.DestinationConfig:
        fn.add_to_role_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self._queue.queue_arn])
        )
        key = self._queue.encryption_master_key
        if key is not None:
            key.grant(fn, "kms:Decrypt", "kms:GenerateDataKey")
        return lambda_.DestinationConfig(destination=self._queue.queue_arn)


@jsii.implements(events.IRuleTarget)
class _QueueTarget:
    """The event queue as the rule's target, with every grant scoped to the rule.

    ``targets.SqsQueue`` also lets ``events.amazonaws.com`` use the queue's key with no
    condition (any rule, any account); here EventBridge may send to the queue and to the
    dead-letter queue only for this rule (``aws:SourceArn``), and uses the key through the
    statement the pipeline adds (``aws:SourceAccount``).
    """

    def __init__(
        self,
        queue: sqs.IQueue,
        *,
        dead_letter_queue: sqs.IQueue,
        retry_attempts: int,
        max_event_age: Duration,
    ) -> None:
        self._queue = queue
        self._dead_letter_queue = dead_letter_queue
        self._retry_attempts = retry_attempts
        self._max_event_age = max_event_age

    def bind(
        self,
        rule: events_refs.IRuleRef,
        id: Optional[str] = None,
    ) -> events.RuleTargetConfig:
        rule_arn = rule.rule_ref.rule_arn
        for sid, queue in (
            ("OnlyTheObjectCreatedRule", self._queue),
            ("ObjectCreatedRuleDeadLetters", self._dead_letter_queue),
        ):
            queue.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["sqs:SendMessage"],
                    resources=[queue.queue_arn],
                    conditions={"ArnEquals": {"aws:SourceArn": rule_arn}},
                )
            )
        return events.RuleTargetConfig(
            arn=self._queue.queue_arn,
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(
                arn=self._dead_letter_queue.queue_arn
            ),
            retry_policy=events.CfnRule.RetryPolicyProperty(
                maximum_retry_attempts=self._retry_attempts,
                maximum_event_age_in_seconds=int(self._max_event_age.to_seconds()),
            ),
        )

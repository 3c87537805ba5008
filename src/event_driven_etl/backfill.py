"""Backfill: run the objects already in the source bucket through the pipeline's workflow."""

from __future__ import annotations

import re
from typing import Any, Optional

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from . import _defaults, _hygiene, _notification
from ._contract import BACKFILL_BATCH_BYTES, BACKFILL_MANIFEST_DIR, MANIFEST_PREFIX
from ._docs import public
from ._notification import FAILED, SUCCEEDED
from ._problems import Problems
from .state_machine import _input_with_defaults

__all__ = ["Backfill"]

_INPUT_ERROR = "BackfillInputError"
"""The error a backfill ends with when its input is not ``{"prefix": ..., "reprocess": ...}``
or its prefix is outside the pipeline's ``key_prefix``."""

_MAP_LIMIT = 10_000
"""Largest ``MaxItemsPerBatch`` and ``MaxConcurrency`` the Distributed Map takes."""
_PERCENT = 100

_RESULT_WRITER_V2 = "@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2"

_SFN_WILDCARD_CHARACTERS = re.compile(r"([*\\])")


def _backfill_concurrency(max_concurrent_runs: int) -> int:
    """Batches a backfill runs at a time: half the Glue job's concurrent runs (at least one),
    so live uploads always find Glue capacity while a backfill runs."""
    return max(1, max_concurrent_runs // 2)


class _PrefixListReader(sfn.S3ObjectsItemReader):
    """The ``ListObjectsV2`` reader, granted ``s3:ListBucket`` only under the allowed prefix
    (the L2's grant has no ``s3:prefix`` condition)."""

    def __init__(self, *, bucket: s3.IBucket, allowed_prefix: Optional[str]) -> None:
        super().__init__(bucket=bucket, prefix=sfn.JsonPath.string_at("$.prefix"))
        self._list_bucket = bucket
        self._allowed_prefix = allowed_prefix

    def provide_policy_statements(self) -> list[iam.PolicyStatement]:
        # ListObjectsV2 is authorised as s3:ListBucket with the request's prefix as the
        # s3:prefix condition key (https://docs.aws.amazon.com/AmazonS3/latest/userguide/
        # amazon-s3-policy-keys.html#condition-key-bucket-ops-2).
        conditions = None
        if self._allowed_prefix:
            conditions = {"StringLike": {"s3:prefix": [f"{self._allowed_prefix}*"]}}
        return [
            iam.PolicyStatement(
                sid="ListOnlyTheAllowedPrefix",
                actions=["s3:ListBucket"],
                resources=[self._list_bucket.bucket_arn],
                conditions=conditions,
            )
        ]


class _PrefixResultWriter(sfn.ResultWriterV2):
    """The Map Run's ResultWriter, granted writes under its prefix only (the L2 grants the
    whole bucket)."""

    def __init__(self, *, bucket: s3.IBucket, prefix: str) -> None:
        super().__init__(bucket=bucket, prefix=prefix)
        self._results_bucket = bucket
        self._results_prefix = prefix

    def provide_policy_statements(self) -> list[iam.PolicyStatement]:
        return [
            iam.PolicyStatement(
                actions=[
                    "s3:PutObject",
                    "s3:GetObject",
                    "s3:ListMultipartUploadParts",
                    "s3:AbortMultipartUpload",
                ],
                resources=[self._results_bucket.arn_for_objects(f"{self._results_prefix}*")],
            )
        ]


@public
class Backfill(Construct):
    """Runs the objects already under a prefix through the pipeline's own workflow.

    Start :attr:`state_machine` with ``{"prefix": "incoming/orders/", "reprocess": false}``.
    A Distributed Map lists the objects under ``prefix`` (``ListObjectsV2`` through its S3
    ``ItemReader``) and batches them (``ItemBatcher``: ``batch_size`` objects, fewer when
    their keys pass 200,000 bytes); each batch keeps the objects that match ``key_suffix``
    (never folder markers), writes them as the batch's manifest and starts the pipeline's
    workflow on it (``.sync``) with the live trigger's large-batch input,
    ``{"manifest": "s3://..."}``: outcomes, notifications, exactly-once per batch and the
    catalog are the live path's. The manifest, ``{"objects": [...], "reprocess": ...}``,
    carries ``reprocess`` to the built-in job, which skips objects that already landed
    (same version) unless it is true, and then replaces their earlier rows.

    At most ``max_concurrency`` batches run at a time; a backfill whose failed batches stay
    within ``tolerated_failure_percentage`` succeeds. Progress is the Map Run's (console, or
    ``DescribeMapRun``); the end is one notification (``"source": "backfill"``) with the Map
    Run's item and batch counts. A prefix outside ``key_prefix`` ends the execution FAILED
    with ``BackfillInputError`` before anything is listed.
    """

    state_machine: sfn.IStateMachine
    """The backfill workflow: start it with ``{"prefix": ..., "reprocess": false}``."""

    log_group: logs.ILogGroup
    """Execution history log group (under ``/aws/vendedlogs/states/``)."""

    batch_size: int
    """Objects per batch (one workflow execution, one Glue run)."""

    max_concurrency: int
    """Batches running at the same time."""

    pipeline_name: str
    """The ``pipeline`` field of the final notification."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        workflow: sfn.IStateMachine,
        source_bucket: s3.IBucket,
        notification_topic: sns.ITopic,
        results_bucket: s3.IBucket,
        results_prefix: str,
        key_prefix: Optional[str] = None,
        key_suffix: Optional[str] = None,
        batch_size: int = 100,
        max_concurrency: int = 5,
        tolerated_failure_percentage: int = 10,
        pipeline_name: Optional[str] = None,
        notification_topic_key: Optional[kms.IKey] = None,
        results_key: Optional[kms.IKey] = None,
        encryption_key: Optional[kms.IKey] = None,
        log_retention: logs.RetentionDays = _defaults.DEFAULT_LOG_RETENTION,
        timeout: Duration = Duration.days(7),
    ) -> None:
        """
        :param workflow: The pipeline's workflow (``EtlStateMachine.state_machine``).
        :param source_bucket: The bucket whose objects are backfilled.
        :param notification_topic: Where the backfill's final notification goes.
        :param results_bucket: Where the Map Run writes its results (ResultWriter) and the
            batches their manifests (under ``manifests/backfill/``).
        :param results_prefix: Key prefix of the Map Run results in ``results_bucket``.
        :param key_prefix: Only prefixes under this one may be backfilled; listing is
            allowed under it only. Default: - any prefix
        :param key_suffix: Only objects whose key ends so are processed. Default: - any key
        :param batch_size: Objects per batch (1 to 10,000). Default: 100
        :param max_concurrency: Batches at the same time (1 to 10,000). Default: 5
        :param tolerated_failure_percentage: Failed batches (in percent) a backfill tolerates
            before it stops and ends FAILED (0 to 100). Default: 10
        :param pipeline_name: The ``pipeline`` field of the notification. Default: - this
            construct's path
        :param notification_topic_key: KMS key of an encrypted topic you bring.
            Default: - the topic's own key when CDK knows it
        :param results_key: KMS key of ``results_bucket``. Default: - the bucket's own key
            when CDK knows it
        :param encryption_key: Key for the execution log group. Default: - CloudWatch Logs'
            own encryption
        :param log_retention: Retention of the execution log group. Default: one year
        :param timeout: Longest a backfill may take. Default: 7 days
        """
        _check(construct_id, batch_size, max_concurrency, tolerated_failure_percentage)
        super().__init__(scope, construct_id)
        # ResultWriterV2 (the non-deprecated writer) renders only with this flag on.
        self.node.set_context(_RESULT_WRITER_V2, True)
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.pipeline_name = pipeline_name or _notification.default_pipeline_name(self.node.path)
        self._topic = notification_topic
        self._key_prefix = key_prefix or ""
        self._key_suffix = key_suffix or ""
        self._bucket = source_bucket
        process = self._distributed_map(
            workflow, results_bucket, results_prefix, tolerated_failure_percentage
        )
        self.log_group = _defaults.new_state_machine_log_group(
            self, retention=log_retention, encryption_key=encryption_key
        )
        machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(self._definition(process)),
            timeout=timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL),
            comment=f"event-driven-etl backfill of {self.pipeline_name}",
        )
        self._grant(machine, results_bucket, results_key, notification_topic_key)
        map_runs = self._grant_map_runs(machine)
        self.state_machine = machine
        _hygiene.depend_only_on_role_policy(machine.node.default_child, machine.role)
        _hygiene.acknowledge_necessary_wildcards(machine.role)
        _hygiene.acknowledge_policy_wildcards(map_runs)
        child_runs = machine.node.try_find_child("DistributedMapPolicy")
        if child_runs is not None:
            _hygiene.acknowledge_policy_wildcards(child_runs)

    # ------------------------------------------------------------------ definition

    def _definition(self, process: sfn.DistributedMap) -> sfn.IChainable:
        """``Apply defaults -> Input valid? -> Prefix allowed? -> Process objects -> Read
        totals -> Notify backfill finished``; a bad input goes to ``Backfill refused``."""
        refused = sfn.Fail(
            self,
            "Backfill refused",
            error=_INPUT_ERROR,
            cause=(
                'The input must be {"prefix": "<key prefix>", "reprocess": true|false} and '
                f"the prefix must start with {self._key_prefix!r}"
            ),
        )
        totals = self._read_totals()
        failed = sfn.Fail(self, "Backfill failed", error="BackfillFailed")
        notify_failure = self._notify(
            "Notify backfill failed",
            FAILED,
            {
                "error": sfn.JsonPath.string_at("$.error.Error"),
                "cause": sfn.JsonPath.string_at("$.error.Cause"),
            },
        ).next(failed)
        process.add_catch(notify_failure, errors=[sfn.Errors.ALL], result_path="$.error")
        notify = self._notify(
            "Notify backfill finished",
            SUCCEEDED,
            {"map_run": sfn.JsonPath.string_at("$.map_run.MapRunArn"), "totals.$": "$.totals"},
        )
        valid = sfn.Condition.and_(
            sfn.Condition.is_string("$.prefix"), sfn.Condition.is_boolean("$.reprocess")
        )
        work = process.next(totals).next(notify)
        allowed: sfn.IChainable = work
        if self._key_prefix:
            allowed = (
                sfn.Choice(self, "Prefix allowed?")
                .when(sfn.Condition.string_matches("$.prefix", self._pattern_under()), work)
                .otherwise(refused)
            )
        check = sfn.Choice(self, "Input valid?").when(valid, allowed).otherwise(refused)
        return self._apply_defaults().next(check)

    def _pattern_under(self) -> str:
        """``StringMatches`` pattern of the keys under ``key_prefix`` (its ``*`` and ``\\``
        escaped: https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html)."""
        return f"{_escaped(self._key_prefix)}*"

    def _apply_defaults(self) -> sfn.Chain:
        """``reprocess`` defaults to false; the rest of the input is kept as given."""
        return _input_with_defaults(self, {"reprocess": False})

    def _distributed_map(
        self,
        workflow: sfn.IStateMachine,
        results_bucket: s3.IBucket,
        results_prefix: str,
        tolerated_failure_percentage: int,
    ) -> sfn.DistributedMap:
        """List under ``$.prefix``, batch, and run the workflow once per batch."""
        process = sfn.DistributedMap(
            self,
            "Process objects",
            item_reader=_PrefixListReader(bucket=self._bucket, allowed_prefix=self._key_prefix),
            item_selector={
                "bucket": self._bucket.bucket_name,
                "key": sfn.JsonPath.string_at("$$.Map.Item.Value.Key"),
            },
            item_batcher=sfn.ItemBatcher(
                max_items_per_batch=self.batch_size,
                # Long keys make fewer objects per batch: Step Functions' payload limit.
                max_input_bytes_per_batch=BACKFILL_BATCH_BYTES,
                batch_input={"reprocess.$": "$.reprocess"},  # the L2 passes keys as given
            ),
            max_concurrency=self.max_concurrency,
            tolerated_failure_percentage=tolerated_failure_percentage,
            map_execution_type=sfn.StateMachineType.STANDARD,
            result_writer_v2=_PrefixResultWriter(bucket=results_bucket, prefix=results_prefix),
            result_selector={"MapRunArn": sfn.JsonPath.string_at("$.MapRunArn")},
            result_path="$.map_run",
        )
        process.item_processor(self._batch(workflow, results_bucket))
        return process

    def _batch(self, workflow: sfn.IStateMachine, manifest_bucket: s3.IBucket) -> sfn.IChainable:
        """One batch: keep the objects the pipeline takes, write them as the batch's
        manifest (a batch of the pipeline's size does not fit a Glue argument inline), then
        run the workflow on it, as the live trigger does with a large batch. The manifest
        is one JSON object, ``{"objects": [...], "reprocess": bool}``: the workflow passes
        the live path's job arguments unchanged, and the job reads ``reprocess`` there."""
        take = sfn.Pass(
            self,
            "Take object",
            parameters={
                "uri": sfn.JsonPath.format(
                    "s3://{}/{}",
                    sfn.JsonPath.string_at("$.bucket"),
                    sfn.JsonPath.string_at("$.key"),
                )
            },
        )
        leave = sfn.Pass(self, "Leave object", parameters={})
        wanted = sfn.Choice(self, "Object wanted?").when(
            sfn.Condition.string_matches("$.key", "*/"), leave
        )
        if self._key_suffix:
            other = sfn.Condition.string_matches("$.key", f"*{_escaped(self._key_suffix)}")
            wanted.when(sfn.Condition.not_(other), leave)
        wanted.otherwise(take)
        select = sfn.Map(self, "Select objects", items_path="$.Items", result_path="$.selected")
        select.item_processor(wanted)
        key = f"{MANIFEST_PREFIX}{BACKFILL_MANIFEST_DIR}"
        batch_input = sfn.Pass(
            self,
            "Batch input",
            parameters={
                "batch": {
                    "objects.$": "$.selected[*].uri",
                    "reprocess.$": "$.BatchInput.reprocess",
                },
                "manifest_bucket": manifest_bucket.bucket_name,
                "manifest_key.$": f"States.Format('{key}{{}}.json', $$.Execution.Name)",
            },
        )
        write_manifest = tasks.CallAwsService(
            self,
            "Write manifest",
            service="s3",
            action="putObject",
            iam_action="s3:PutObject",
            parameters={
                "Bucket": manifest_bucket.bucket_name,
                "Key": sfn.JsonPath.string_at("$.manifest_key"),
                "Body": sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.batch")),
            },
            iam_resources=[manifest_bucket.arn_for_objects(f"{key}*")],
            result_path=sfn.JsonPath.DISCARD,
        )
        manifest = sfn.JsonPath.format(
            "s3://{}/{}",
            sfn.JsonPath.string_at("$.manifest_bucket"),
            sfn.JsonPath.string_at("$.manifest_key"),
        )
        run = tasks.StepFunctionsStartExecution(
            self,
            "Run pipeline workflow",
            state_machine=workflow,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            input=sfn.TaskInput.from_object({"manifest": manifest}),
            associate_with_parent=True,
            result_selector={"status": sfn.JsonPath.string_at("$.Status")},
        )
        nothing = sfn.Succeed(self, "Nothing to process")
        anything = (
            sfn.Choice(self, "Anything to process?")
            .when(sfn.Condition.is_present("$.batch.objects[0]"), write_manifest.next(run))
            .otherwise(nothing)
        )
        return select.next(batch_input).next(anything)

    def _read_totals(self) -> sfn.CustomState:
        """The Map Run's item and batch counts (``DescribeMapRun``), for the final
        notification. A custom state: CallAwsService would grant in the machine's default
        policy, which the machine depends on, and the Map Runs are named after the machine
        (granted in :meth:`_grant_map_runs`)."""
        return sfn.CustomState(
            self,
            "Read totals",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Stack.of(self).partition}:states:::aws-sdk:sfn:describeMapRun",
                "Parameters": {"MapRunArn.$": "$.map_run.MapRunArn"},
                "ResultSelector": {
                    "objects_listed.$": "$.ItemCounts.Total",
                    "objects_in_succeeded_batches.$": "$.ItemCounts.Succeeded",
                    "objects_in_failed_batches.$": "$.ItemCounts.Failed",
                    "batches.$": "$.ExecutionCounts.Total",
                    "batches_failed.$": "$.ExecutionCounts.Failed",
                },
                "ResultPath": "$.totals",
            },
        )

    def _notify(self, state_name: str, status: str, run: dict[str, Any]) -> tasks.SnsPublish:
        body = _notification.message(
            pipeline_name=self.pipeline_name,
            status=status,
            source="backfill",
            objects=[],
            manifest="",
            run={
                "prefix": sfn.JsonPath.string_at("$.prefix"),
                "reprocess": sfn.JsonPath.string_at("$.reprocess"),
                **run,
            },
        )
        return _notification.publish(self, state_name, self._topic, body)

    # ------------------------------------------------------------------ permissions

    def _grant_map_runs(self, machine: sfn.StateMachine) -> iam.Policy:
        """``DescribeMapRun`` on this machine's Map Runs only, in a policy of its own (as
        aws-cdk-lib's own DistributedMapPolicy): the machine's name is known after it is
        created, and the machine must not wait for a policy that names it."""
        stack = Stack.of(self)
        name = stack.split_arn(
            machine.state_machine_arn, ArnFormat.COLON_RESOURCE_NAME
        ).resource_name
        return iam.Policy(
            self,
            "MapRunPolicy",
            roles=[machine.role],
            statements=[
                iam.PolicyStatement(
                    actions=["states:DescribeMapRun"],
                    resources=[
                        stack.format_arn(
                            service="states",
                            resource="mapRun",
                            resource_name=f"{name}/*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    ],
                )
            ],
        )

    def _grant(
        self,
        machine: sfn.StateMachine,
        results_bucket: s3.IBucket,
        results_key: Optional[kms.IKey],
        notification_topic_key: Optional[kms.IKey],
    ) -> None:
        self._topic.grant_publish(machine)
        if notification_topic_key is not None:
            notification_topic_key.grant(machine, "kms:Decrypt", "kms:GenerateDataKey*")
        # The ResultWriter's and the manifests' S3 grants do not cover the bucket's key.
        key = results_key or results_bucket.encryption_key
        if key is not None:
            key.grant(machine, "kms:Decrypt", "kms:GenerateDataKey*")


def _escaped(text: str) -> str:
    """``text`` as a literal in a ``StringMatches`` pattern."""
    return _SFN_WILDCARD_CHARACTERS.sub(r"\\\1", text)


def _check(
    construct_id: str, batch_size: int, max_concurrency: int, tolerated_failure_percentage: int
) -> None:
    """Refuse values Step Functions would refuse at deploy, all at once."""
    problems = Problems(f"Backfill '{construct_id}'")
    problems.integer_in_range("batch_size", batch_size, 1, _MAP_LIMIT)
    problems.integer_in_range("max_concurrency", max_concurrency, 1, _MAP_LIMIT)
    problems.integer_in_range(
        "tolerated_failure_percentage", tolerated_failure_percentage, 0, _PERCENT
    )
    problems.raise_if_any()

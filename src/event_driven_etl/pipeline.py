"""EventDrivenEtlPipeline: S3 upload -> trigger Lambda -> Step Functions -> Glue -> SNS."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from aws_cdk import Annotations, Duration, Names, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from . import _defaults, _maintenance, _operations, _quality, _validation
from ._contract import BACKFILL_RESULTS_DIR, MANIFEST_PREFIX, TABLE_RULE_BY_FOLDER
from ._docs import public
from ._glue_versions import GlueVersionValue
from ._notification import default_pipeline_name
from ._problems import Problems, is_unresolved, signature_defaults, with_defaults
from ._quality import QualityRules
from .backfill import Backfill, _backfill_concurrency
from .errors import ValidationError
from .glue_job import GlueEtlJob, _job_timeout
from .retry import Batching, RetryPolicy
from .runtime.glue.event_driven_etl_job.quality import table_name_of
from .state_machine import EtlStateMachine
from .table_format import TableFormat
from .table_maintenance import TableMaintenance
from .tables import Tables
from .trigger import TriggerFunction

__all__ = ["EventDrivenEtlPipeline"]

_S3_ACCESS_LOGS_BY_POLICY = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"

_QUERY_CATALOG_ACTIONS = (
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchGetPartition",
)
"""Catalog reads a query engine makes for one table (Athena, Spark, Trino)."""

_QUERY_ICEBERG_CATALOG_ACTIONS = ("glue:GetDatabase", "glue:GetTable", "glue:GetTables")
"""Catalog reads an Iceberg reader makes: the table's ``metadata_location`` leads to its
snapshots and files in S3 (an Iceberg table has no catalog partitions)."""

_FLEX_WORKFLOW_TIMEOUT = Duration.hours(24)
"""The workflow's timeout with FLEX, whose runs may wait for capacity: twice EtlStateMachine's
default, as the Glue job's own default doubles with FLEX."""


@public
class EventDrivenEtlPipeline(Construct):
    """A complete event-driven ETL pipeline in one construct.

    A new object in ``source_bucket`` (matching ``key_prefix``/``key_suffix``) raises an
    EventBridge "Object Created" event; the trigger Lambda starts the workflow (once per
    object, or once per batch with ``batching``); the workflow runs the Glue job to
    completion, retrying transient Glue errors, and publishes a JSON notification with the
    outcome to ``notification_topic``. Every part is secure by default: private, TLS-only,
    encrypted buckets and topic, least-privilege roles, logged and traced workflow.

    Example::

        pipeline = EventDrivenEtlPipeline(self, "Pipeline", key_prefix="incoming/")
        pipeline.notification_topic.add_subscription(subs.EmailSubscription("data@example.com"))
    """

    source_bucket: s3.IBucket
    """Where new objects start the pipeline."""

    output_bucket: s3.IBucket
    """Where the Glue job writes its output (and batch manifests)."""

    notification_topic: sns.ITopic
    """Receives one JSON message per finished execution (``status`` SUCCEEDED or FAILED)."""

    trigger: TriggerFunction
    """The trigger Lambda and the event rule (and, with batching, the queue)."""

    state_machine: EtlStateMachine
    """The Step Functions workflow."""

    glue_job: GlueEtlJob
    """The Glue job and its role."""

    encryption_key: kms.IKey
    """The key of the topic, the Glue security configuration and the workflow logs."""

    access_logs_bucket: Optional[s3.IBucket]
    """Receives S3 server access logs of the buckets this construct created (None if it
    created no bucket)."""

    pipeline_name: str
    """The ``pipeline`` field of notifications."""

    alarm_topic: sns.ITopic
    """Receives alarm state changes and Glue job-state failures."""

    alarms: list[cloudwatch.IAlarm]
    """The alarms created (empty with ``alarms=False``)."""

    glue_job_failed_rule: Optional[events.IRule]
    """Glue "Job State Change" (FAILED, TIMEOUT, ERROR), notified on ``alarm_topic`` in the
    notification schema with the ``status`` attribute. When the alarm topic is the
    notification topic (the default), a run the workflow started is left to the workflow's
    own FAILED notification (one failure, one message); runs started outside the workflow
    are always notified."""

    dashboard: Optional[cloudwatch.Dashboard]
    """The CloudWatch dashboard (with ``dashboard=True``)."""

    catalog_database: Optional[glue.IDatabase]
    """The Glue Data Catalog database of the output table (None with ``catalog=False``)."""

    catalog_table_name: Optional[str]
    """The output table's name in ``catalog_database``: query it with Athena, Spark or any
    Glue/Hive reader after the first run (None with ``catalog=False``)."""

    table_maintenance_job: Optional[glue.IJob]
    """The Iceberg table's scheduled maintenance job (None without ``table_maintenance``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source_bucket: Optional[s3.IBucket] = None,
        source_bucket_key: Optional[kms.IKey] = None,
        glue_script: Optional[glue.Code] = None,
        notification_topic: Optional[sns.ITopic] = None,
        retry_policy: Optional[RetryPolicy] = None,
        key_prefix: Optional[str] = None,
        key_suffix: Optional[str] = None,
        output_bucket: Optional[s3.IBucket] = None,
        batching: Optional[Batching] = None,
        pipeline_name: Optional[str] = None,
        encryption_key: Optional[kms.IKey] = None,
        notification_topic_key: Optional[kms.IKey] = None,
        access_logs_bucket: Optional[s3.IBucket] = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        output_prefix: Optional[str] = None,
        worker_type: Optional[glue.WorkerType] = None,
        number_of_workers: Optional[int] = None,
        job_timeout: Optional[Duration] = None,
        max_concurrent_runs: Optional[int] = None,
        job_run_queuing: Optional[bool] = None,
        extra_job_arguments: Optional[Mapping[str, str]] = None,
        workflow_timeout: Optional[Duration] = None,
        include_execution_data: Optional[bool] = None,
        log_retention: Optional[logs.RetentionDays] = None,
        alarms: bool = True,
        alarm_topic: Optional[sns.ITopic] = None,
        freshness_period: Optional[Duration] = None,
        dashboard: bool = False,
        bad_records: Optional[str] = None,
        glue_version: Optional[GlueVersionValue] = None,
        execution_class: Optional[glue.ExecutionClass] = None,
        catalog: bool = True,
        catalog_database: Optional[glue.IDatabase] = None,
        catalog_table_name: Optional[str] = None,
        tables: Optional[Tables] = None,
        quality_rules: Optional[QualityRules] = None,
        table_format: Optional[TableFormat] = None,
        table_maintenance: Optional[TableMaintenance] = None,
    ) -> None:
        """
        :param source_bucket: Bucket whose new objects start the pipeline; EventBridge
            notifications are turned on for it. Default: - a new secure bucket
        :param source_bucket_key: The KMS key of a ``source_bucket`` you import by name whose
            objects are SSE-KMS encrypted: the Glue role may ``kms:Decrypt`` with it and
            ``grant_write_source`` includes it. Its key policy must let this account's IAM
            policies grant its use. Default: - the bucket's own key when CDK knows it
        :param glue_script: The Glue job's PySpark script. Default: - the built-in script
            shipped in the package
        :param notification_topic: Topic for success and failure notifications.
            Default: - a new KMS-encrypted topic
        :param retry_policy: How the workflow retries transient Glue errors.
            Default: ``RetryPolicy()``
        :param key_prefix: Only objects whose key starts with this start the pipeline.
            Default: - any key
        :param key_suffix: Only objects whose key ends with this start the pipeline (with
            ``key_prefix``, both must hold). Default: - any key
        :param output_bucket: Bucket the Glue job writes to. Default: - a new secure bucket
        :param batching: Group object events into one execution per batch.
            Default: - one workflow execution per object
        :param pipeline_name: The ``pipeline`` field of notifications. Default: - this
            construct's path
        :param encryption_key: Customer-managed key for the topic, the Glue job's security
            configuration and output, log groups, queues, the deduplication table and the
            buckets this construct creates. Default: - a new key with rotation for all of
            these except the buckets, which use SSE-S3
        :param notification_topic_key: KMS key of an encrypted topic you bring.
            Default: - the topic's own key when CDK knows it
        :param access_logs_bucket: Bucket for S3 server access logs of created buckets.
            Default: - a new bucket, when this construct creates a bucket
        :param removal_policy: What happens to created source and output buckets when the
            stack is deleted. Default: ``RemovalPolicy.RETAIN``
        :param output_prefix: Key prefix of the Glue output, ending in ``/``.
            Default: "processed/"
        :param worker_type: Glue worker type. Default: ``WorkerType.G_1X``
        :param number_of_workers: Glue workers per run, at least 2. Default: 2
        :param job_timeout: Longest a Glue run may take. Default: 1 hour (2 hours with FLEX)
        :param max_concurrent_runs: Glue runs at the same time. Default: 10
        :param job_run_queuing: Let Glue queue runs over its limits (``WAITING``) instead of
            refusing them: a per-object burst then drains at ``max_concurrent_runs`` runs at a
            time for as long as ``workflow_timeout`` allows, instead of failing every object
            whose concurrency retries run out. Default: True, except with FLEX (Glue does not
            queue FLEX runs)
        :param extra_job_arguments: More ``--name: value`` arguments for your script.
            Default: - none
        :param workflow_timeout: Longest a workflow execution may take, retries included.
            Default: 12 hours (24 hours with FLEX)
        :param include_execution_data: Log execution input/output (object keys) in the
            workflow's log group. Default: False
        :param log_retention: Retention of the log groups created. Default: one year
        :param alarms: Create the alarms (executions failed, timed out, throttled, aborted;
            trigger errors and throttles; dead-letter queue not empty) and the Glue
            "Job State Change" rule. Default: True
        :param alarm_topic: Where alarms and Glue job-state failures are sent.
            Default: - the notification topic
        :param freshness_period: Also alarm when no execution succeeded for this long.
            Default: - no freshness alarm
        :param dashboard: Create a CloudWatch dashboard. Default: False
        :param bad_records: What the built-in script does with an object it cannot land
            (malformed rows, content that does not match its extension, values that do not
            fit the table's types): ``"fail"`` lands the batch's other objects and ends the
            run FAILED, the notification's cause naming the object; ``"quarantine"`` copies
            it under ``quarantine/`` in the output bucket with a ``.reason.json`` and the run
            succeeds, listing it under ``quarantined``. Default: "fail"
        :param glue_version: Glue version of the job: a ``glue.GlueVersion`` or
            ``NewerGlueVersion.V6_1`` (the built-in script needs 5.0 or later; 5.1, 6.0 and
            6.1 are proven offline). Default: ``GlueVersion.V5_1`` (Spark 3.5.6, Python 3.11:
            the Spark of the testing extra)
        :param execution_class: ``ExecutionClass.FLEX`` runs on spare capacity at a lower
            price and may wait for it; the job and workflow timeouts' defaults double.
            Default: ``ExecutionClass.STANDARD``
        :param catalog: Keep the output as a table in the Glue Data Catalog (the built-in
            script creates it on its first run, adds columns later and registers partitions;
            partition projection is set for Athena). Set False for a script of your own that
            does not maintain it. Default: True
        :param catalog_database: The catalog database for the table. Default: - a new database
        :param catalog_table_name: The table's name. Default: - derived from ``pipeline_name``
            (lowercase, ``_`` for other characters)
        :param tables: Which table each object lands in: ``Tables.by_folder()`` (the first
            folder under ``key_prefix``) or ``Tables.mapping({"orders/": "orders"})`` (the
            longest matching key prefix; objects matching none are skipped with the reason)
            give each table its own prefix ``<output_prefix><table>/``, schema, partitions,
            exactly-once bookkeeping and catalog table, and the notifications a ``tables``
            field with each table's ``rows`` and ``landed``. Default: ``Tables.single()``
            (one table at ``output_prefix``)
        :param quality_rules: Data quality rules the built-in script checks on each batch
            before it is committed: a DQDL ruleset (``'Rules = [ RowCount > 0, IsComplete
            "id" ]'``) or a mapping of table name (or ``"*"``: every table) to ruleset. Rows
            failing a row rule follow ``bad_records``; a failing dataset rule holds the batch
            back and fails the run; parsed at synth (README "Data quality rules").
            Default: - no rules
        :param table_format: ``TableFormat.ICEBERG`` keeps the output as an Apache Iceberg
            table in the catalog (one commit per batch, a re-run replaces its own rows, hidden
            partitioning by ``days(_ingested_at)``, schema evolution by column id), written
            through Glue's native Iceberg; needs the catalog (not ``catalog=False``) and
            Glue 3.0+. See the README's "Iceberg tables". Default: ``TableFormat.PARQUET``
            (Hive-style Parquet, ``ingestion_date`` partitions)
        :param table_maintenance: Scheduled maintenance of the Iceberg table (only with
            ``table_format=TableFormat.ICEBERG``): a small Glue job on a Glue schedule compacts
            the small files of batches past their re-run window, expires old snapshots and
            removes orphan files; a failed run is notified on the notification topic. See
            :class:`TableMaintenance`. Default: - no maintenance
        """
        parts = _SubProps.checked(scope, construct_id, locals())
        super().__init__(scope, construct_id)
        self._quality_rules = quality_rules
        # Access logs are delivered by bucket policy, never by ACL, whatever the app's flags.
        self.node.set_context(_S3_ACCESS_LOGS_BY_POLICY, True)
        self.pipeline_name = pipeline_name or default_pipeline_name(self.node.path)
        self.encryption_key = encryption_key or _defaults.new_encryption_key(
            self, "EncryptionKey", f"event-driven-etl {self.node.path}: topic, Glue, logs"
        )
        self._key_prefix = key_prefix
        self._key_suffix = key_suffix
        self._batch_size = (batching or Batching()).max_batch_size
        self._max_concurrent_runs = parts.glue_job.get(
            "max_concurrent_runs", signature_defaults(GlueEtlJob.__init__)["max_concurrent_runs"]
        )
        self._backfill: Optional[Backfill] = None
        self._output_key = encryption_key  # the output bucket's key when the user brings one
        self._notification_topic_key = notification_topic_key
        self._log_retention = log_retention
        self._source_bucket_key = source_bucket_key
        self._output_prefix = parts.output_prefix
        if output_bucket is not None:
            _validation.record_output_location(self, output_bucket, self._output_prefix)
        self._create_buckets(
            source_bucket, output_bucket, access_logs_bucket, removal_policy, encryption_key
        )
        self.notification_topic = notification_topic or _defaults.new_topic(
            self, "NotificationTopic", self.encryption_key
        )
        self.tables = tables or Tables.single()
        self._create_catalog(catalog, catalog_database, catalog_table_name)
        if catalog and catalog_database is not None:
            _validation.record_catalog_tables(self, catalog_database, parts.table_names)
            self._warn_about_folders_in_a_brought_database()
        if batching is None and max_concurrent_runs == 1:
            Annotations.of(self).add_warning_v2(
                "event-driven-etl:single-glue-run",
                "max_concurrent_runs=1 with one execution per object: a burst of uploads queues "
                "behind one Glue run and relies on retries; consider batching=Batching() or "
                "a higher max_concurrent_runs.",
            )
        self._create_parts(parts, source_bucket_key, encryption_key, notification_topic_key)
        self.table_maintenance_job = self._create_table_maintenance(
            table_maintenance, parts, notification_topic_key, log_retention
        )
        self.alarm_topic = alarm_topic or self.notification_topic
        self._create_operations(
            alarms,
            freshness_period,
            dashboard,
            log_retention=log_retention,
            # A topic you bring as alarm_topic must let this account's roles use its key.
            alarm_topic_key=notification_topic_key if alarm_topic is None else None,
        )
        self._warn_about_policies_we_cannot_change(alarms, notification_topic_key)
        self._warn_about_an_imported_access_logs_bucket(
            created_a_bucket=source_bucket is None or output_bucket is None
        )

    def _create_buckets(
        self,
        source_bucket: Optional[s3.IBucket],
        output_bucket: Optional[s3.IBucket],
        access_logs_bucket: Optional[s3.IBucket],
        removal_policy: RemovalPolicy,
        encryption_key: Optional[kms.IKey],
    ) -> None:
        """The buckets not brought: secure, versioned, access-logged into a bucket of their
        own (SSE-S3 unless the user brings ``encryption_key``)."""
        self.access_logs_bucket = access_logs_bucket
        if self.access_logs_bucket is None and (source_bucket is None or output_bucket is None):
            self.access_logs_bucket = _defaults.new_access_logs_bucket(
                self, "AccessLogsBucket", removal_policy
            )
        common: dict[str, Any] = {
            "versioned": True,
            "removal_policy": removal_policy,
            # Only a key the user brings encrypts buckets by default.
            "encryption_key": encryption_key,
            "access_logs_bucket": self.access_logs_bucket,
            "logs_bucket_is_ours": access_logs_bucket is None,
        }
        self.source_bucket = source_bucket or _defaults.new_secure_bucket(
            self, "SourceBucket", event_bridge_enabled=True, access_logs_prefix="source/", **common
        )
        self.output_bucket = output_bucket or _defaults.new_secure_bucket(
            self,
            "OutputBucket",
            access_logs_prefix="output/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireManifests", prefix=MANIFEST_PREFIX, expiration=Duration.days(30)
                ),
                s3.LifecycleRule(
                    id="AbortIncompleteUploadsAndExpireOldVersions",
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                    noncurrent_version_expiration=Duration.days(30),
                ),
            ],
            **common,
        )

    def _create_catalog(
        self,
        catalog: bool,
        catalog_database: Optional[glue.IDatabase],
        catalog_table_name: Optional[str],
    ) -> None:
        self.catalog_database = None
        self.catalog_table_name = None
        if not catalog:
            return
        self.catalog_database = catalog_database or glue.Database(
            self,
            "CatalogDatabase",
            database_name=_catalog_name(Names.unique_resource_name(self, max_length=200)),
            description=f"event-driven-etl {self.pipeline_name}: the output table",
            # The table is the job's; the data stays in S3. A retained database with a
            # fixed name would block the next deploy of the same app.
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.catalog_table_name = catalog_table_name or _single_table_name(
            self.tables, self.pipeline_name
        )

    def _create_parts(
        self,
        parts: _SubProps,
        source_bucket_key: Optional[kms.IKey],
        encryption_key: Optional[kms.IKey],
        notification_topic_key: Optional[kms.IKey],
    ) -> None:
        """The Glue job, the workflow and the trigger: what the user set, and the wiring."""
        self.glue_job = GlueEtlJob(
            self,
            "GlueJob",
            **parts.glue_job,
            **_given(
                source_bucket=self.source_bucket,
                source_bucket_key=source_bucket_key,
                output_bucket=self.output_bucket,
                encryption_key=self.encryption_key,
                output_encryption_key=encryption_key,
                catalog_database=self.catalog_database,
                catalog_table_name=self.catalog_table_name,
            ),
        )
        self.state_machine = EtlStateMachine(
            self,
            "Workflow",
            **parts.workflow,
            **_given(
                glue_job=self.glue_job.job,
                notification_topic=self.notification_topic,
                notification_topic_key=notification_topic_key,
                pipeline_name=self.pipeline_name,
                encryption_key=self.encryption_key,
                report_bucket=self.output_bucket,
                report_prefix=self.glue_job.run_reports_prefix,
                report_key=encryption_key,
                report_tables=True if not self.tables.is_single else None,
            ),
        )
        self.trigger = TriggerFunction(
            self,
            "Trigger",
            **parts.trigger,
            state_machine=self.state_machine.state_machine,
            source_bucket=self.source_bucket,
            manifest_bucket=self.output_bucket,
            encryption_key=self.encryption_key,
            ignored_locations=[
                self.glue_job.output_path,
                self.glue_job.quarantine_path,
                f"s3://{self.output_bucket.bucket_name}/{MANIFEST_PREFIX}",
            ],
        )

    def _create_table_maintenance(
        self,
        settings: Optional[TableMaintenance],
        parts: _SubProps,
        notification_topic_key: Optional[kms.IKey],
        log_retention: Optional[logs.RetentionDays],
    ) -> Optional[glue.IJob]:
        """With ``table_maintenance``, the Iceberg table's scheduled maintenance job (its
        failed runs notified on the notification topic); else nothing is created."""
        self._maintenance: Optional[_maintenance.IcebergTableMaintenance] = None
        if settings is None:
            return None
        workflow_timeout = parts.workflow.get(
            "timeout", signature_defaults(EtlStateMachine.__init__)["timeout"]
        )
        self._maintenance = _maintenance.IcebergTableMaintenance(
            self,
            "TableMaintenance",
            settings=settings,
            wiring=_maintenance.MaintenanceWiring(
                glue_job=self.glue_job,
                output_prefix=self._output_prefix,
                workflow_timeout=workflow_timeout,
                pipeline_name=self.pipeline_name,
                topic=self.notification_topic,
                topic_key=notification_topic_key,
                dead_letter_queue=self.trigger.dead_letter_queue,
                log_encryption_key=self.encryption_key,
                log_retention=log_retention,
            ),
        )
        return self._maintenance.job

    def _warn_about_folders_in_a_brought_database(self) -> None:
        """Tables by folder are named by data, and the job may update every table of the
        database: in a database you brought, another pipeline's or a crawler's table could
        share a folder's name (the job refuses such a folder's objects at run time)."""
        if self.tables.kind != TABLE_RULE_BY_FOLDER:
            return
        Annotations.of(self).add_warning_v2(
            "event-driven-etl:tables-by-folder-in-a-brought-database",
            "tables=Tables.by_folder() with a catalog_database you brought: the Glue job may "
            "create and update every table of that database (folder names are only known at "
            "run time). A folder named like a table stored elsewhere (another pipeline's, a "
            "crawler's) has its objects refused, never that table rewritten; prefer a "
            "database of the pipeline's own, or Tables.mapping({...}) naming each table.",
        )

    @property
    def backfill(self) -> Backfill:
        """The backfill of objects already in the source bucket (created on first use, so a
        pipeline that never backfills deploys nothing for it).

        Start ``backfill.state_machine`` with ``{"prefix": "<under key_prefix>",
        "reprocess": false}``: batches of the pipeline's batch size (``Batching``'s when
        unbatched) run through :attr:`state_machine`, at most half of ``max_concurrent_runs``
        at a time, so live uploads keep Glue capacity.
        """
        if self._backfill is None:
            self._backfill = Backfill(
                self,
                "Backfill",
                workflow=self.state_machine.state_machine,
                source_bucket=self.source_bucket,
                notification_topic=self.notification_topic,
                results_bucket=self.output_bucket,
                results_prefix=f"{self._output_prefix}{BACKFILL_RESULTS_DIR}",
                key_prefix=self._key_prefix,
                key_suffix=self._key_suffix,
                batch_size=self._batch_size,
                max_concurrency=_backfill_concurrency(self._max_concurrent_runs),
                pipeline_name=self.pipeline_name,
                notification_topic_key=self._notification_topic_key,
                results_key=self._output_key,
                encryption_key=self.encryption_key,
                **_given(log_retention=self._log_retention),
            )
        return self._backfill

    def _alarm_topic_key(self, given: Optional[kms.IKey]) -> Optional[kms.IKey]:
        """The key the alarm topic is encrypted with, when it is known here."""
        own: Optional[kms.IKey] = getattr(self.alarm_topic, "master_key", None)
        return own or given

    def _warn_about_policies_we_cannot_change(
        self, alarms: bool, notification_topic_key: Optional[kms.IKey]
    ) -> None:
        """A topic or key imported by ARN keeps its own policy: say exactly what it needs."""
        account = _literal(Stack.of(self).account, "<your account id>")
        self._warn_about_an_imported_source_bucket()
        if not alarms:
            return  # the workflows publish with their roles, granted here: nothing to say
        if not isinstance(self.alarm_topic, sns.Topic):
            role = "notification" if self.alarm_topic is self.notification_topic else "alarm"
            Annotations.of(self).add_warning_v2(
                f"event-driven-etl:imported-{role}-topic",
                f"The {role} topic is imported: its policy is not changed here. For the "
                "pipeline's CloudWatch alarms to reach it, it must allow "
                '{"Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"}, '
                '"Action": "sns:Publish", "Resource": "<topic arn>", "Condition": '
                f'{{"StringEquals": {{"aws:SourceAccount": "{account}"}}}}}}.',
            )
        alarm_topic_is_ours = self.alarm_topic is self.notification_topic
        key = self._alarm_topic_key(notification_topic_key if alarm_topic_is_ours else None)
        if key is not None and not isinstance(key, kms.Key):
            prop = "notification_topic_key" if alarm_topic_is_ours else "alarm_topic's key"
            Annotations.of(self).add_warning_v2(
                "event-driven-etl:imported-topic-key",
                f"{prop} is imported: its key policy is not changed here. For "
                "the alarms to publish, it must allow "
                '{"Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"}, '
                '"Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*", '
                f'"Condition": {{"StringEquals": {{"aws:SourceAccount": "{account}"}}}}}}, '
                "and let IAM policies of this account grant its use (the workflows' grants "
                "are added).",
            )

    def _warn_about_an_imported_access_logs_bucket(self, created_a_bucket: bool) -> None:
        logs_bucket = self.access_logs_bucket
        if not created_a_bucket or logs_bucket is None or isinstance(logs_bucket, s3.Bucket):
            return
        Annotations.of(self).add_warning_v2(
            "event-driven-etl:imported-access-logs-bucket",
            f"access_logs_bucket {_literal(logs_bucket.bucket_name, '(imported)')} is imported: "
            "its policy is not changed here. For S3 to deliver the access logs of the "
            "pipeline's buckets it must allow "
            '{"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, '
            '"Action": "s3:PutObject", "Resource": "<its arn>/*", "Condition": '
            '{"StringEquals": {"aws:SourceAccount": '
            f'"{_literal(Stack.of(self).account, "<your account id>")}"}}}}}} '
            "(logs are delivered by bucket policy, never by ACL).",
        )

    def _warn_about_an_imported_source_bucket(self) -> None:
        bucket = self.source_bucket
        if isinstance(bucket, s3.Bucket) or bucket.encryption_key or self._source_bucket_key:
            return
        region = _literal(Stack.of(self).region, "<region>")
        Annotations.of(self).add_warning_v2(
            "event-driven-etl:imported-source-bucket",
            f"The source bucket {_literal(bucket.bucket_name, '(imported)')} is imported "
            "without its encryption key. "
            "If its objects are SSE-KMS encrypted with a customer managed key, pass "
            "source_bucket_key=kms.Key.from_key_arn(...): the Glue role is then granted "
            "kms:Decrypt, and the key policy must allow it, e.g. "
            '{"Effect": "Allow", "Principal": {"AWS": "<pipeline.glue_job.role.role_arn>"}, '
            '"Action": "kms:Decrypt", "Resource": "*", "Condition": {"StringEquals": '
            f'{{"kms:ViaService": "s3.{region}.amazonaws.com"}}}}}} (or let this account\'s '
            "IAM policies grant its use). Without it every run fails with AccessDenied. With "
            "SSE-S3 nothing is needed: acknowledge this warning.",
        )

    def _create_operations(
        self,
        alarms: bool,
        freshness_period: Optional[Duration],
        dashboard: bool,
        *,
        log_retention: Optional[logs.RetentionDays],
        alarm_topic_key: Optional[kms.IKey],
    ) -> None:
        monitoring = Construct(self, "Monitoring")
        self.alarms = []
        self.glue_job_failed_rule = None
        self.dashboard = None
        if alarms:
            self._create_alarms(monitoring, freshness_period, log_retention, alarm_topic_key)
        if dashboard:
            self.dashboard = _operations.create_dashboard(
                monitoring,
                title=self.pipeline_name,
                objects_received=self.metric_objects_received(),
                state_machine=self.state_machine.state_machine,
                glue_job_name=self.glue_job.job.job_name,
                trigger_errors=self.trigger.metric_errors(),
                dead_letter_queue=self.trigger.dead_letter_queue,
            )
            if self._quality_rules is not None:
                _quality.add_quality_widgets(self.dashboard, self.glue_job.job.job_name)

    def _create_alarms(
        self,
        monitoring: Construct,
        freshness_period: Optional[Duration],
        log_retention: Optional[logs.RetentionDays],
        alarm_topic_key: Optional[kms.IKey],
    ) -> None:
        """The alarms, the Glue job-state notifier (and its alarm), all on the alarm topic."""
        machine = self.state_machine.state_machine
        specs = _operations.alarm_specs(
            machine,
            self.trigger.metric_errors(),
            self.trigger.metric_throttles(),
            self.trigger.dead_letter_queue,
        )
        self.alarms += _operations.create_alarms(monitoring, specs, self.alarm_topic)
        if freshness_period is not None:
            self.alarms.append(
                _operations.create_freshness_alarm(
                    monitoring, machine, freshness_period, self.alarm_topic
                )
            )
        self.glue_job_failed_rule, notifier = _operations.watch_glue_job_failures(
            monitoring,
            self.glue_job.job,
            self.pipeline_name,
            self.alarm_topic,
            topic_key=alarm_topic_key,
            dead_letter_queue=self.trigger.dead_letter_queue,
            log_encryption_key=self.encryption_key,
            log_retention=log_retention,
            # One failure, one FAILED message on the notification topic; a separate
            # alarm topic hears of every failed run.
            skip_workflow_runs=self.alarm_topic is self.notification_topic,
        )
        self.alarms += _operations.create_alarms(
            monitoring, [_operations.notifier_failed_spec(notifier)], self.alarm_topic
        )
        if self._maintenance is not None:
            self.alarms += _operations.create_alarms(
                self._maintenance,
                [_operations.notifier_failed_spec(self._maintenance.notifier)],
                self.alarm_topic,
            )
        if self._quality_rules is not None:
            quality = _quality.quality_alarm_spec(self.glue_job.job.job_name)
            self.alarms += _operations.create_alarms(monitoring, [quality], self.alarm_topic)
        _operations.allow_alarms_to_publish(self.alarm_topic, self.alarms)
        # CloudWatch publishes to an encrypted topic with the topic's key, and only the
        # key policy can let it: a topic you bring with a key of this app gets the
        # statement too (an imported key is warned about below).
        key = self._alarm_topic_key(alarm_topic_key)
        if key is not None:
            _defaults.allow_service_to_use_key(key, "cloudwatch.amazonaws.com")

    # ------------------------------------------------------------- metrics

    def metric_objects_received(self, *, period: Optional[Duration] = None) -> cloudwatch.Metric:
        """New objects that matched the rule (EventBridge ``MatchedEvents``). Sum over 5 min."""
        metric = _operations.objects_received_metric(self.trigger.rule)
        return metric.with_(period=period) if period else metric

    def metric_executions_succeeded(
        self, *, period: Optional[Duration] = None
    ) -> cloudwatch.Metric:
        """Workflow executions that SUCCEEDED. Sum over 5 minutes by default."""
        return self.state_machine.metric_succeeded(period=period)

    def metric_executions_failed(self, *, period: Optional[Duration] = None) -> cloudwatch.Metric:
        """Workflow executions that FAILED. Sum over 5 minutes by default."""
        return self.state_machine.metric_failed(period=period)

    def metric_execution_duration(self, *, period: Optional[Duration] = None) -> cloudwatch.Metric:
        """Workflow execution time in milliseconds. Average over 5 minutes by default."""
        return self.state_machine.metric_duration(period=period)

    def metric_quality_rules_failed(
        self, *, period: Optional[Duration] = None
    ) -> cloudwatch.Metric:
        """Data quality rules that failed in the Glue job's runs (``quality_rules``). Sum
        over 5 min."""
        return _quality.rules_failed_metric(self.glue_job.job.job_name, period)

    def metric_trigger_errors(self, *, period: Optional[Duration] = None) -> cloudwatch.Metric:
        """Errors of the trigger Lambda. Sum over 5 minutes by default."""
        return self.trigger.metric_errors(period=period)

    # ------------------------------------------------------------- grants

    def grant_write_source(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` upload objects that start the pipeline (under ``key_prefix``).

        Includes ``kms:Encrypt``/``GenerateDataKey`` on the bucket's key when it has one
        (or on ``source_bucket_key``).
        """
        grant = self.source_bucket.grant_put(grantee, f"{self._key_prefix or ''}*")
        key = self._source_bucket_key
        if key is not None and key is not self.source_bucket.encryption_key:
            grant = grant.combine(key.grant_encrypt(grantee))
        return grant

    def grant_subscribe_notifications(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` subscribe to the notification topic."""
        return self.notification_topic.grant_subscribe(grantee)

    def grant_query(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` query the output table (Athena, Spark, any catalog reader): read
        the catalog database, table and partitions, and the output objects and their key.

        Running Athena queries also needs the workgroup's own permissions
        (``athena:StartQueryExecution`` ...) and its results location: those are yours.
        """
        if self.catalog_database is None or self.catalog_table_name is None:
            raise ValidationError(
                f"EventDrivenEtlPipeline '{self.node.id}'",
                [
                    "grant_query: catalog=False: there is no catalog table to query; "
                    "use grant_read_output for the objects"
                ],
            )
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(
                _QUERY_ICEBERG_CATALOG_ACTIONS
                if self.glue_job.table_format == TableFormat.ICEBERG
                else _QUERY_CATALOG_ACTIONS
            ),
            # Every table of the pipeline: by name, or the database's tables by folder.
            resource_arns=self.glue_job._catalog_table_arns(),
        )
        return grant.combine(self.grant_read_output(grantee))

    def grant_read_output(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read the Glue output (under ``output_prefix``), key included."""
        grant = self.output_bucket.grant_read(grantee, f"{self._output_prefix}*")
        self.glue_job.grant_read_output(grantee)
        return grant

    # ------------------------------------------------------------- events

    def on_success(self, construct_id: str, *, description: Optional[str] = None) -> events.Rule:
        """An EventBridge rule for executions of this pipeline that SUCCEEDED; add targets."""
        return self.state_machine.on_execution_status(
            construct_id, ["SUCCEEDED"], description=description, scope=self
        )

    def on_failure(self, construct_id: str, *, description: Optional[str] = None) -> events.Rule:
        """An EventBridge rule for executions that FAILED, TIMED_OUT or were ABORTED."""
        return self.state_machine.on_execution_status(
            construct_id, ["FAILED", "TIMED_OUT", "ABORTED"], description=description, scope=self
        )


@dataclass(frozen=True)
class _SubProps:
    """The props the pipeline passes each sub-construct from its own: only those the user set,
    so each default lives once, in the sub-construct; then the pipeline's own choices (the
    manifest prefix, run queuing, FLEX's workflow timeout). The wiring (buckets, topic, keys,
    the job for the workflow ...) is added when the parts are created."""

    glue_job: dict[str, Any]
    workflow: dict[str, Any]
    trigger: dict[str, Any]
    output_prefix: str
    """The Glue job's output prefix, its default included."""
    table_names: Mapping[str, _validation.TableSource] = field(default_factory=dict)
    """The catalog tables known at synth -> the prop that names them (collisions)."""

    @classmethod
    def checked(cls, scope: Construct, construct_id: str, values: Mapping[str, Any]) -> _SubProps:
        """The sub-constructs' props from the pipeline's (``values``: its constructor's
        locals), after every prop problem is recorded, the sub-constructs' with their names
        in the pipeline; raises ValidationError."""
        problems = Problems(f"EventDrivenEtlPipeline '{construct_id}'")
        props = _validation.check_pipeline_types(problems, values, EventDrivenEtlPipeline.__init__)
        parts = cls.of(props)
        glue_job = with_defaults(
            GlueEtlJob.__init__,
            {**parts.glue_job, "catalog_table_name": props["catalog_table_name"]},
        )
        glue_job["quality_table"] = _quality_table(scope, construct_id, props, glue_job)
        workflow = with_defaults(
            EtlStateMachine.__init__, {**parts.workflow, "pipeline_name": props["pipeline_name"]}
        )
        _validation.check_pipeline_props(
            problems,
            scope,
            props,
            trigger=with_defaults(TriggerFunction.__init__, parts.trigger),
            workflow=workflow,
            glue_job=glue_job,
            job_timeout=_job_timeout(props["job_timeout"], props["execution_class"]),
        )
        _validation.check_pipeline_tables(problems, props)
        # The table names are worked out from props that are known to be valid only now.
        problems.raise_if_any()
        table_names = _known_table_names(scope, construct_id, props)
        _validation.check_catalog_tables_are_free(
            problems, scope, props["catalog_database"] if props["catalog"] else None, table_names
        )
        problems.raise_if_any()
        return replace(parts, table_names=table_names)

    @classmethod
    def of(cls, props: Mapping[str, Any]) -> _SubProps:
        """From the pipeline's props (``props["x"]`` is None: the user left ``x`` unset)."""
        flex = props["execution_class"] == glue.ExecutionClass.FLEX
        glue_job = _given(
            script=props["glue_script"],
            source_key_prefix=props["key_prefix"],
            output_prefix=props["output_prefix"],
            manifest_prefix=MANIFEST_PREFIX,
            worker_type=props["worker_type"],
            number_of_workers=props["number_of_workers"],
            timeout=props["job_timeout"],
            max_concurrent_runs=props["max_concurrent_runs"],
            job_run_queuing=_queuing(props["job_run_queuing"], flex=flex),
            extra_arguments=props["extra_job_arguments"],
            bad_records=props["bad_records"],
            glue_version=props["glue_version"],
            execution_class=props["execution_class"],
            tables=props["tables"],
            quality_rules=props["quality_rules"],
            table_format=props["table_format"],
        )
        workflow = _given(
            retry_policy=props["retry_policy"],
            timeout=props["workflow_timeout"] or (_FLEX_WORKFLOW_TIMEOUT if flex else None),
            include_execution_data=props["include_execution_data"],
            log_retention=props["log_retention"],
        )
        trigger = _given(
            key_prefix=props["key_prefix"],
            key_suffix=props["key_suffix"],
            batching=props["batching"],
            manifest_prefix=MANIFEST_PREFIX,
            log_retention=props["log_retention"],
        )
        output_prefix = glue_job.get(
            "output_prefix", signature_defaults(GlueEtlJob.__init__)["output_prefix"]
        )
        return cls(glue_job, workflow, trigger, output_prefix)


def _quality_table(
    scope: Construct, construct_id: str, props: Mapping[str, Any], glue_job: Mapping[str, Any]
) -> Optional[str]:
    """The pipeline's one table as ``quality_rules`` keys name it: the catalog table (its
    default derived from the pipeline's name as :meth:`_create_catalog` derives it), else
    the output prefix's last folder."""
    prefix = glue_job["output_prefix"]
    if not props["catalog"]:
        known = isinstance(prefix, str) and not is_unresolved(prefix)
        return table_name_of(None, prefix) if known else None
    named = props["catalog_table_name"]
    if isinstance(named, str):
        return named
    name = props["pipeline_name"]
    if not isinstance(name, str):
        path = f"{scope.node.path}/{construct_id}" if scope.node.path else construct_id
        name = default_pipeline_name(path)
    return None if is_unresolved(name) else _catalog_name(name)


def _given(**props: Any) -> dict[str, Any]:
    """The props that are set (not None): a prop left out keeps the sub-construct's default."""
    return {name: value for name, value in props.items() if value is not None}


def _literal(value: str, placeholder: str) -> str:
    """A value for a message a user reads (or pastes): a token is shown as a placeholder."""
    return placeholder if is_unresolved(value) else value


def _catalog_name(text: str) -> str:
    """A Glue and Athena friendly name: lowercase letters, digits and ``_``."""
    name = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "etl"
    return (f"t_{name}" if name[0].isdigit() else name)[:255]


def _queuing(job_run_queuing: Optional[bool], *, flex: bool) -> bool:
    """Queuing on unless told otherwise or FLEX: queued, a run over MaxConcurrentRuns waits
    for a slot instead of failing (https://docs.aws.amazon.com/glue/latest/dg/
    job-run-statuses.html); Glue does not queue FLEX runs."""
    return (not flex) if job_run_queuing is None else job_run_queuing


def _single_table_name(tables: Tables, pipeline_name: str) -> str:
    """The one table's name: ``Tables.single(name)``'s, else derived from the pipeline's."""
    named = tables._table_names() if tables.is_single else None
    return named[0] if named else _catalog_name(pipeline_name)


def _known_table_names(
    scope: Construct, construct_id: str, props: Mapping[str, Any]
) -> dict[str, _validation.TableSource]:
    """The catalog tables this pipeline will keep, when known at synth, each -> the prop that
    names it as the user wrote it: a mapping's tables, or the one table (tables by folder are
    named at run time)."""
    tables = props["tables"] or Tables.single()
    if not props["catalog"]:
        return {}
    if not tables.is_single:
        return dict.fromkeys(tables._table_names() or (), _validation.TableSource.written(tables))
    if props["catalog_table_name"] is not None:
        name = props["catalog_table_name"]
        return {name: _validation.TableSource("catalog_table_name", name)}
    if tables.name is not None:
        name = _single_table_name(tables, "")
        return {name: _validation.TableSource("tables", name)}
    path = f"{scope.node.path}/{construct_id}" if scope.node.path else construct_id
    pipeline_name = props["pipeline_name"] or default_pipeline_name(path)
    name = _single_table_name(tables, pipeline_name)
    source = _validation.TableSource(
        "pipeline_name",
        pipeline_name,
        f"the table's name comes from pipeline_name; name it with catalog_table_name "
        f"(e.g. catalog_table_name='{name}_2') or give this pipeline its own database",
    )
    return {name: source}

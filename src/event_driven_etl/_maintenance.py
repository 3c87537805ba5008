"""The Iceberg table's scheduled maintenance (prop ``table_maintenance``): a small Glue job of
its own, a Glue scheduled trigger, and the notifier of its failed runs.

Why a job and not Glue's managed table optimizers: ``AWS::Glue::TableOptimizer``
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-glue-tableoptimizer.html)
names an existing table (``DatabaseName``, ``TableName``), and the pipeline's Iceberg table is
created by the job's first run, after the deploy, from the data's own columns: an optimizer in
the same template would fail to create. Creating the table at deploy would need its schema,
which the data decides, and would change the job's data path. A managed compactor also
merges any files of a partition, which could make a later re-run of a batch fail (its
overwrite-by-filter refuses to delete part of a file); this job compacts only batches past
their re-run window.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, cast

from aws_cdk import Duration, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from . import _glue_package, _hygiene, _operations
from ._contract import (
    CATALOG_DATABASE_ARGUMENT,
    CATALOG_REGION_ARGUMENT,
    CATALOG_TABLE_ARGUMENT,
    ICEBERG_MAINTAINED_DIRS,
    MAINTENANCE_COMPACT_BEFORE_ARGUMENT,
    MAINTENANCE_ORPHANS_OLDER_THAN_ARGUMENT,
    MAINTENANCE_SNAPSHOT_RETENTION_ARGUMENT,
    OUTPUT_PATH_ARGUMENT,
    STEP_FUNCTIONS_REDRIVE_WINDOW_SECONDS,
)
from ._iceberg_conf import glue_conf_argument, iceberg_spark_conf
from .glue_job import (
    GlueEtlJob,
    _grant_each_key_once,
    _grant_glue_logs_and_metrics,
    _table_arns,
)
from .table_maintenance import TableMaintenance

MAINTENANCE_SCRIPT = Path(__file__).parent / "runtime" / "glue" / "maintenance_job.py"
"""The script the maintenance job runs (shipped in the package)."""

WORKER_TYPE = glue.WorkerType.G_1X
NUMBER_OF_WORKERS = 2
"""A run's size: 2 G.1X workers (2 DPUs), Glue's smallest Spark job."""
TIMEOUT = Duration.hours(2)

_CATALOG_ACTIONS = ("glue:GetDatabase", "glue:GetTable", "glue:UpdateTable")
"""Iceberg's ``GlueCatalog`` reads the table and commits (``UpdateTable`` of its
``metadata_location``); maintenance never creates a table."""

_FILE_WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
"""Compaction writes data and metadata files; expiry and orphan removal delete them."""


def compaction_delay(workflow_timeout: Duration) -> Duration:
    """How old a batch's rows must be before compaction may merge its files: past every
    re-run of it (retries within the execution, a redrive within Step Functions' 14-day
    window after it stopped, the redriven execution's own run), so the re-run's
    overwrite-by-filter never meets a file that holds other batches' rows."""
    return Duration.seconds(
        2 * workflow_timeout.to_seconds() + STEP_FUNCTIONS_REDRIVE_WINDOW_SECONDS
    )


@dataclass(frozen=True)
class MaintenanceWiring:
    """What the maintenance needs from the pipeline."""

    glue_job: GlueEtlJob
    output_prefix: str
    workflow_timeout: Duration
    pipeline_name: str
    topic: sns.ITopic
    topic_key: Optional[kms.IKey]
    dead_letter_queue: sqs.IQueue
    log_encryption_key: Optional[kms.IKey]
    log_retention: Optional[logs.RetentionDays]


class IcebergTableMaintenance(Construct):
    """The maintenance job, its role, its schedule and its failure notifier."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: TableMaintenance,
        wiring: MaintenanceWiring,
    ) -> None:
        super().__init__(scope, construct_id)
        etl = wiring.glue_job
        if etl.catalog_database is None or etl.catalog_table_name is None:
            raise ValueError("table maintenance needs the Iceberg table's catalog entry")
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="event-driven-etl Iceberg table maintenance: the table's files only",
        )
        self.job = self._job(settings, wiring)
        self._grant(wiring)
        self.trigger = glue.CfnTrigger(
            self,
            "Schedule",
            type="SCHEDULED",
            schedule=settings._cron_expression(),
            start_on_creation=True,
            actions=[glue.CfnTrigger.ActionProperty(job_name=self.job.job_name)],
            description="event-driven-etl: scheduled Iceberg table maintenance",
        )
        # Every run is started by the schedule (none by the workflow): each failure is told.
        self.failed_rule, self.notifier = _operations.watch_glue_job_failures(
            self,
            self.job,
            wiring.pipeline_name,
            wiring.topic,
            topic_key=wiring.topic_key,
            dead_letter_queue=wiring.dead_letter_queue,
            log_encryption_key=wiring.log_encryption_key,
            log_retention=wiring.log_retention,
            skip_workflow_runs=False,
        )

    def _job(self, settings: TableMaintenance, wiring: MaintenanceWiring) -> glue.IJob:
        etl = wiring.glue_job
        script = s3_assets.Asset(self, "Script", path=str(MAINTENANCE_SCRIPT))
        job = glue.PySparkEtlJob(
            self,
            "Job",
            role=self.role,
            script=glue.Code.from_bucket(script.bucket, script.s3_object_key),
            extra_python_files=[_glue_package.job_package(self)],
            glue_version=glue.GlueVersion.V5_1,
            worker_configuration=glue.WorkerConfiguration(
                worker_type=WORKER_TYPE, number_of_workers=NUMBER_OF_WORKERS
            ),
            timeout=TIMEOUT,
            max_retries=0,
            max_concurrent_runs=1,
            default_arguments=self._arguments(settings, wiring),
            security_configuration=etl.security_configuration,
            description="event-driven-etl: Iceberg table maintenance (compaction, expiry, orphans)",
        )
        # The pipeline job's Glue version (a newer one than aws-cdk-lib knows is an override).
        version = cast(glue.CfnJob, etl.job.node.default_child).glue_version
        cast(glue.CfnJob, job.node.default_child).glue_version = version
        return job

    @staticmethod
    def _arguments(settings: TableMaintenance, wiring: MaintenanceWiring) -> dict[str, str]:
        etl = wiring.glue_job
        key = etl.output_encryption_key
        arguments = {
            "--datalake-formats": "iceberg",
            "--conf": glue_conf_argument(
                iceberg_spark_conf(etl.output_path, key.key_arn if key else None)
            ),
            "--enable-glue-datacatalog": "false",
            OUTPUT_PATH_ARGUMENT: etl.output_path,
            CATALOG_DATABASE_ARGUMENT: cast(glue.IDatabase, etl.catalog_database).database_name,
            CATALOG_TABLE_ARGUMENT: cast(str, etl.catalog_table_name),
            CATALOG_REGION_ARGUMENT: Stack.of(etl).region,
            MAINTENANCE_SNAPSHOT_RETENTION_ARGUMENT: _whole_seconds(settings.snapshot_retention),
        }
        if settings.compact:
            delay = compaction_delay(wiring.workflow_timeout)
            arguments[MAINTENANCE_COMPACT_BEFORE_ARGUMENT] = _whole_seconds(delay)
        if settings.remove_orphans_older_than is not None:
            arguments[MAINTENANCE_ORPHANS_OLDER_THAN_ARGUMENT] = _whole_seconds(
                settings.remove_orphans_older_than
            )
        return arguments

    def _grant(self, wiring: MaintenanceWiring) -> None:
        """Read the table's prefix; write and delete in its ``data/`` and ``metadata/`` only;
        commit to that one table; the keys of what it reads and writes; its own logs."""
        etl = wiring.glue_job
        bucket: s3.IBucket = etl.output_bucket
        bucket.grant_read(self.role, f"{wiring.output_prefix}*")
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RewriteTableFiles",
                actions=list(_FILE_WRITE_ACTIONS),
                resources=[
                    bucket.arn_for_objects(f"{wiring.output_prefix}{folder}/*")
                    for folder in ICEBERG_MAINTAINED_DIRS
                ],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="CommitToTheTable",
                actions=list(_CATALOG_ACTIONS),
                resources=_table_arns(
                    cast(glue.IDatabase, etl.catalog_database), cast(str, etl.catalog_table_name)
                ),
            )
        )
        _grant_each_key_once(
            self.role, bucket.encryption_key, etl.encryption_key, etl.output_encryption_key
        )
        _grant_glue_logs_and_metrics(self.role)
        _hygiene.acknowledge_necessary_wildcards(self.role)


def _whole_seconds(duration: Duration) -> str:
    return str(int(duration.to_seconds()))

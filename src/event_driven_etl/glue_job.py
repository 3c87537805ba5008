"""GlueEtlJob: the Glue (Spark) job, its least-privilege role and security configuration."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, cast

from aws_cdk import Duration, Names, RemovalPolicy, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from . import _defaults, _glue_package, _hygiene, _validation
from ._contract import (
    BAD_RECORDS_ARGUMENT,
    CATALOG_DATABASE_ARGUMENT,
    CATALOG_REGION_ARGUMENT,
    CATALOG_TABLE_ARGUMENT,
    DEFAULT_OUTPUT_PREFIX,
    DEFAULT_QUARANTINE_PREFIX,
    JOB_TIMEOUT_ARGUMENT,
    MANIFEST_PREFIX,
    OUTPUT_KMS_KEY_ARGUMENT,
    OUTPUT_PATH_ARGUMENT,
    QUARANTINE_PATH_ARGUMENT,
    RUN_REPORTS_DIR,
    TABLE_FORMAT_ARGUMENT,
    TABLES_ARGUMENT,
)
from ._docs import public
from ._glue_versions import GlueVersionValue, cfn_override, l2_glue_version
from ._iceberg_conf import glue_conf_argument, iceberg_spark_conf
from ._problems import is_unresolved
from ._quality import QualityRules, allow_quality_metrics, quality_rules_argument
from .runtime.glue.event_driven_etl_job.quality import table_name_of
from .table_format import TableFormat
from .tables import Tables

__all__ = ["GlueEtlJob"]

_BUILT_IN_SCRIPT = Path(__file__).parent / "runtime" / "glue" / "etl_job.py"
"""The script used when no ``script`` is given (shipped in the package)."""

_SECURITY_CONFIGURATION_NAME_LIMIT = 255
"""Glue's longest security configuration name."""

_DEFAULT_MAX_CONCURRENT_RUNS = 10
_DEFAULT_GLUE_VERSION = glue.GlueVersion.V5_1
"""Glue 5.1 (Spark 3.5.6, Python 3.11): the Spark line of the testing extra's pyspark 3.5, so
the offline harness runs the job as deployed without a second Spark installed."""

_DEFAULT_TIMEOUT = Duration.hours(1)
_FLEX_TIMEOUT = Duration.hours(2)
"""FLEX runs may wait for capacity before they start."""

_DEFAULT_TABLE_NAME = "etl_output"
_OBJECT_WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
"""What the job writes under the output and quarantine prefixes."""

_CATALOG_ACTIONS = (
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:CreateTable",
    "glue:UpdateTable",
    "glue:GetPartition",
    "glue:BatchCreatePartition",
)
"""What the built-in script does in the Data Catalog: keep its table and partitions."""

_ICEBERG_CATALOG_ACTIONS = (
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:CreateTable",
    "glue:UpdateTable",
)
"""What Iceberg's ``GlueCatalog`` does for the built-in script: read the database and table,
create the table, and commit by updating its ``metadata_location`` parameter (``UpdateTable``
with the ``VersionId`` read, so a concurrent commit is refused and retried). An Iceberg table
has no catalog partitions."""


@public
class GlueEtlJob(Construct):
    """A Glue 5.1 PySpark ETL job that reads the source bucket and writes the output bucket.

    The job gets a role of its own with only what it needs: read the source objects (under
    ``source_key_prefix`` when given), read and write the output prefix and the quarantine,
    read the manifests and its script, write its own logs and metrics, use the encryption
    key and, with ``catalog_database``, keep the output table in the Glue Data Catalog. No
    AWS managed policies. ``MaxRetries`` is 0: retries happen in one visible place, the
    workflow.

    Example::

        job = GlueEtlJob(self, "Job", source_bucket=raw, output_bucket=curated)
    """

    job: glue.IJob
    """The Glue job (an ``aws_glue.PySparkEtlJob``; a ``PySparkFlexEtlJob`` with FLEX)."""

    execution_class: glue.ExecutionClass
    """STANDARD or FLEX."""

    catalog_database: Optional[glue.IDatabase]
    """The catalog database of the output table (None: the job keeps no table)."""

    catalog_table_name: Optional[str]
    """The output table's name in ``catalog_database``."""

    role: iam.IRole
    """The role the job runs as."""

    encryption_key: kms.IKey
    """The key of the job's security configuration (S3 output, CloudWatch logs, bookmarks)."""

    security_configuration: glue.ISecurityConfiguration
    """Encrypts what the job writes to S3, its logs and its bookmarks with ``encryption_key``."""

    output_encryption_key: Optional[kms.IKey]
    """Key of the job's S3 output (None: SSE-S3)."""

    output_path: str
    """``s3://`` prefix the job writes Parquet to (``--output_path``)."""

    output_bucket: s3.IBucket
    """The bucket the job writes to."""

    run_reports_prefix: str
    """Key prefix (in ``output_bucket``) of the built-in script's run reports."""

    quarantine_path: str
    """``s3://`` prefix that quarantined objects are copied under (``--quarantine_path``)."""

    tables: Tables
    """How objects are routed to tables (``Tables.single()`` unless told otherwise)."""
    table_format: TableFormat
    """The output table's format (``TableFormat.PARQUET`` or ``TableFormat.ICEBERG``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source_bucket: s3.IBucket,
        output_bucket: s3.IBucket,
        script: Optional[glue.Code] = None,
        source_key_prefix: Optional[str] = None,
        output_prefix: str = DEFAULT_OUTPUT_PREFIX,
        manifest_prefix: str = MANIFEST_PREFIX,
        glue_version: GlueVersionValue = _DEFAULT_GLUE_VERSION,
        execution_class: glue.ExecutionClass = glue.ExecutionClass.STANDARD,
        auto_scaling: bool = True,
        worker_type: glue.WorkerType = glue.WorkerType.G_1X,
        number_of_workers: int = 2,
        timeout: Optional[Duration] = None,
        max_concurrent_runs: int = _DEFAULT_MAX_CONCURRENT_RUNS,
        job_run_queuing: bool = False,
        extra_arguments: Optional[Mapping[str, str]] = None,
        encryption_key: Optional[kms.IKey] = None,
        output_encryption_key: Optional[kms.IKey] = None,
        source_bucket_key: Optional[kms.IKey] = None,
        job_name: Optional[str] = None,
        bad_records: str = "fail",
        quarantine_prefix: str = DEFAULT_QUARANTINE_PREFIX,
        catalog_database: Optional[glue.IDatabase] = None,
        catalog_table_name: Optional[str] = None,
        tables: Optional[Tables] = None,
        quality_rules: Optional[QualityRules] = None,
        table_format: TableFormat = TableFormat.PARQUET,
    ) -> None:
        """
        :param source_bucket: Bucket whose objects the job reads.
        :param output_bucket: Bucket the job writes Parquet to, under ``output_prefix``.
        :param script: The job's PySpark script. Default: - the built-in script shipped in the
            package (CSV/JSON lines/Parquet to partitioned Parquet)
        :param source_key_prefix: Limit read access to keys under this prefix.
            Default: - the whole source bucket
        :param output_prefix: Key prefix of the output, ending in ``/``. Default: "processed/"
        :param manifest_prefix: Key prefix (in the output bucket) of batch manifests the job may
            read. Default: "manifests/"
        :param glue_version: Glue version: a ``glue.GlueVersion``, or
            ``NewerGlueVersion.V6_1`` (Glue 6.1, which aws-cdk-lib does not know yet). The
            built-in script needs 5.0 or later; the test suite runs it on Spark 3.5 (5.x) and
            on Spark 4.1.3 (6.0 and 6.1), with Python 3.11. Default: ``GlueVersion.V5_1``
            (Spark 3.5.6, Python 3.11)
        :param execution_class: ``FLEX`` runs on spare capacity at a lower price and may wait
            for it to start (Glue 3.0+, G.1X or G.2X workers, no job run queuing).
            Default: ``ExecutionClass.STANDARD``
        :param auto_scaling: Let Glue add and remove workers as the run needs them, with
            ``number_of_workers`` as the maximum (``--enable-auto-scaling``). Default: True
        :param worker_type: Worker type. Default: ``WorkerType.G_1X``
        :param number_of_workers: Workers per run, at least 2. Default: 2
        :param timeout: Longest a run may take before Glue stops it. Default: 1 hour (2 hours
            with FLEX, whose runs may wait for capacity)
        :param max_concurrent_runs: Runs of this job at the same time (Glue's own default is 1,
            which fails all but one run of a burst). Default: 10
        :param job_run_queuing: Let Glue queue runs that exceed its limits instead of failing
            them. Default: False
        :param extra_arguments: More ``--name: value`` job arguments for your script.
            Default: - none
        :param encryption_key: Key for the security configuration. Default: - a new key with
            rotation
        :param output_encryption_key: Key the job encrypts its S3 output with (SSE-KMS); readers
            then need ``kms:Decrypt`` on it. Default: - SSE-S3
        :param source_bucket_key: The KMS key the source bucket's objects are encrypted with
            (SSE-KMS), for a bucket imported by name: the role may ``kms:Decrypt`` with it.
            Default: - the bucket's own key when CDK knows it (none for SSE-S3)
        :param job_name: Physical name of the job. Default: - generated by CloudFormation
        :param bad_records: What the built-in script does with an object it cannot land
            (malformed rows, content that does not match its extension, values that do not
            fit the table's types): ``"fail"`` lands the other objects and ends the run FAILED
            naming it; ``"quarantine"`` copies it under ``quarantine_prefix`` with a
            ``.reason.json`` and the run succeeds. Default: "fail"
        :param quarantine_prefix: Key prefix (in the output bucket) for quarantined objects.
            Default: "quarantine/"
        :param catalog_database: Glue Data Catalog database of the output table: the built-in
            script creates the table on its first run and adds columns later; the role may
            change that table only. Default: - no catalog table
        :param catalog_table_name: Name of the output table in ``catalog_database``
            (lowercase letters, digits and ``_``). Default: - "etl_output" when a database is
            given
        :param tables: How objects are routed to tables (see :class:`Tables`): with
            ``Tables.by_folder()`` or ``Tables.mapping(...)`` the job writes each table under
            ``<output_prefix><table>/``, and keeps each in ``catalog_database``.
            Default: ``Tables.single()`` (one table at ``output_prefix``)
        :param quality_rules: Data quality rules the built-in script checks before a batch
            is committed: a DQDL ruleset (``'Rules = [ RowCount > 0, IsComplete "id" ]'``),
            or a mapping of table name (or ``"*"``: every table) to ruleset; parsed here, a
            rule outside the supported subset is refused (README "Data quality rules").
            Default: - no rules
        :param table_format: ``TableFormat.ICEBERG`` keeps the output as an Apache Iceberg
            table in ``catalog_database`` (required then), written through Glue's native
            Iceberg (Glue 3.0+; ``--datalake-formats iceberg`` and the ``glue_catalog`` Spark
            catalog); the role may then commit to that table only.
            Default: ``TableFormat.PARQUET`` (Hive-style Parquet)
        """
        values = {
            **locals(),
            "quality_table": _quality_table(catalog_database, catalog_table_name, output_prefix),
        }
        _validation.validate_glue_job(construct_id, values, GlueEtlJob.__init__)
        super().__init__(scope, construct_id)
        self.execution_class = execution_class
        self.catalog_database = catalog_database
        self.tables = tables or Tables.single()
        single_name = self.tables._table_names() if self.tables.is_single else None
        self.catalog_table_name = (
            (catalog_table_name or (single_name[0] if single_name else _DEFAULT_TABLE_NAME))
            if catalog_database
            else None
        )
        self._source_key_prefix = source_key_prefix
        self.output_encryption_key = output_encryption_key
        self.table_format = table_format
        self.encryption_key = encryption_key or _defaults.new_encryption_key(
            self, "Key", "event-driven-etl: Glue job output, logs and bookmarks"
        )
        _defaults.allow_logs_to_use_key(self.encryption_key)
        self.security_configuration = self._security_configuration(output_encryption_key)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="event-driven-etl Glue job: read source, write output, own logs",
        )
        self.output_bucket = output_bucket
        self.output_path = f"s3://{output_bucket.bucket_name}/{output_prefix}"
        self.run_reports_prefix = f"{output_prefix}{RUN_REPORTS_DIR}"
        self.quarantine_path = f"s3://{output_bucket.bucket_name}/{quarantine_prefix}"
        self.job = self._create_job(
            script=script,
            glue_version=glue_version,
            worker_configuration=glue.WorkerConfiguration(
                worker_type=worker_type, number_of_workers=number_of_workers
            ),
            timeout=_job_timeout(timeout, execution_class),
            max_concurrent_runs=max_concurrent_runs,
            job_run_queuing=job_run_queuing,
            arguments={
                **self._arguments(bad_records, auto_scaling, extra_arguments),
                **_timeout_argument(_job_timeout(timeout, execution_class)),
                **quality_rules_argument(quality_rules),
            },
            job_name=job_name,
        )
        if source_bucket_key is not None and source_bucket_key is not source_bucket.encryption_key:
            source_bucket_key.grant_decrypt(self.role)
        self._grant_data_access(
            source_bucket,
            output_bucket,
            source_key_prefix,
            (output_prefix, quarantine_prefix),
            manifest_prefix,
        )
        self._grant_logs_and_metrics()
        self._grant_catalog()
        if script is None:
            self._allow_reading_own_runs()
        if quality_rules is not None:
            allow_quality_metrics(self.role)
        _hygiene.acknowledge_necessary_wildcards(self.role)

    def _security_configuration(
        self, output_encryption_key: Optional[kms.IKey]
    ) -> glue.SecurityConfiguration:
        """Encrypts the job's S3 output (SSE-KMS with ``output_encryption_key``, else SSE-S3),
        its logs and its bookmarks (with ``encryption_key``)."""
        configuration = glue.SecurityConfiguration(
            self,
            "SecurityConfiguration",
            s3_encryption=(
                glue.S3Encryption.kms(output_encryption_key)
                if output_encryption_key
                else glue.S3Encryption.s3_managed()
            ),
            cloud_watch_encryption=glue.CloudWatchEncryption.kms(self.encryption_key),
            job_bookmarks_encryption=glue.JobBookmarksEncryption.client_side_kms(
                self.encryption_key
            ),
        )
        # A configuration holds no data, and its name is fixed: retaining it would make the
        # next deploy of the same app fail with "already exists".
        configuration.apply_removal_policy(RemovalPolicy.DESTROY)
        resource = configuration.node.default_child
        if isinstance(resource, glue.CfnSecurityConfiguration):
            # CDK names it with up to 256 characters; Glue takes 255. The same name as CDK's
            # for every path shorter than that (no replacement of deployed configurations).
            resource.name = Names.unique_resource_name(
                configuration, max_length=_SECURITY_CONFIGURATION_NAME_LIMIT
            )
        return configuration

    def _arguments(
        self, bad_records: str, auto_scaling: bool, extra_arguments: Optional[Mapping[str, str]]
    ) -> dict[str, str]:
        """The job's default arguments: where it writes, what it does with bad records, its
        catalog table, then the user's own."""
        return {
            OUTPUT_PATH_ARGUMENT: self.output_path,
            BAD_RECORDS_ARGUMENT: bad_records,
            QUARANTINE_PATH_ARGUMENT: self.quarantine_path,
            **self._catalog_arguments(),
            **self._tables_arguments(),
            **self._table_format_arguments(),
            **self._output_key_arguments(),
            **({"--enable-auto-scaling": "true"} if auto_scaling else {}),
            "--enable-glue-datacatalog": "false",
            **(extra_arguments or {}),
        }

    def _create_job(
        self,
        *,
        script: Optional[glue.Code],
        glue_version: GlueVersionValue,
        worker_configuration: glue.WorkerConfiguration,
        timeout: Duration,
        max_concurrent_runs: int,
        job_run_queuing: bool,
        arguments: dict[str, str],
        job_name: Optional[str],
    ) -> glue.IJob:
        """The Glue job itself: a ``PySparkFlexEtlJob`` with FLEX, else a ``PySparkEtlJob``."""
        common: dict[str, Any] = {
            "role": self.role,
            "script": script or self._built_in_script(),
            "extra_python_files": None if script else [_glue_package.job_package(self)],
            "glue_version": l2_glue_version(glue_version),
            # Always explicit: on Glue 6.1 a job without a worker type runs on Graviton.
            "worker_configuration": worker_configuration,
            "timeout": timeout,
            "max_retries": 0,
            "max_concurrent_runs": max_concurrent_runs,
            "default_arguments": arguments,
            "security_configuration": self.security_configuration,
            "job_name": job_name,
            "description": "event-driven-etl: transforms new S3 objects",
        }
        job: glue.IJob = (
            glue.PySparkFlexEtlJob(self, "Job", **common)
            if self.execution_class == glue.ExecutionClass.FLEX
            else glue.PySparkEtlJob(self, "Job", job_run_queuing_enabled=job_run_queuing, **common)
        )
        override = cfn_override(glue_version)
        if override is not None:
            cast(glue.CfnJob, job.node.default_child).glue_version = override
        return job

    def _catalog_arguments(self) -> dict[str, str]:
        if self.catalog_database is None or self.catalog_table_name is None:
            return {}
        return {
            CATALOG_DATABASE_ARGUMENT: self.catalog_database.database_name,
            CATALOG_TABLE_ARGUMENT: self.catalog_table_name,
            CATALOG_REGION_ARGUMENT: Stack.of(self).region,
        }

    def _output_key_arguments(self) -> dict[str, str]:
        """The output key's ARN, with ``output_encryption_key``: the security configuration
        encrypts what Hadoop writes, the built-in script's object marks (boto3 puts) name the
        key themselves."""
        if self.output_encryption_key is None:
            return {}
        return {OUTPUT_KMS_KEY_ARGUMENT: self.output_encryption_key.key_arn}

    def _tables_arguments(self) -> dict[str, str]:
        """``--tables``, the routing rule, with ``by_folder`` or ``mapping`` only: a single
        table's job has the arguments it always had."""
        rule = self.tables._rule(self._source_key_prefix)
        return {} if rule is None else {TABLES_ARGUMENT: rule.to_json()}

    def _table_format_arguments(self) -> dict[str, str]:
        """With Iceberg, Glue's native Iceberg as its Iceberg page documents it
        (https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-etl-format-iceberg.html):
        ``--datalake-formats iceberg`` and the ``glue_catalog`` settings in ``--conf``, the
        warehouse being the output prefix (SSE-KMS with ``output_encryption_key``); then
        ``--table_format`` for the built-in script."""
        if self.table_format != TableFormat.ICEBERG:
            return {}
        return {
            "--datalake-formats": "iceberg",
            "--conf": glue_conf_argument(
                iceberg_spark_conf(
                    self.output_path,
                    self.output_encryption_key.key_arn if self.output_encryption_key else None,
                )
            ),
            TABLE_FORMAT_ARGUMENT: TableFormat.ICEBERG.value,
        }

    def _grant_catalog(self) -> None:
        """Create and change the output tables (and register their partitions, Parquet;
        commit their metadata, Iceberg): those tables only (a mapping's by name; with tables
        by folder, named at run time, the tables of the catalog database, which is the
        pipeline's own unless you bring one)."""
        arns = self._catalog_table_arns()
        if not arns:
            return
        iceberg = self.table_format == TableFormat.ICEBERG
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="MaintainOutputTable",
                actions=list(_ICEBERG_CATALOG_ACTIONS if iceberg else _CATALOG_ACTIONS),
                resources=arns,
            )
        )

    def _catalog_table_arns(self) -> list[str]:
        """The catalog, the database and each output table IAM checks for the job's catalog
        calls (``table/<database>/*`` for tables by folder); empty without a catalog."""
        if self.catalog_database is None or self.catalog_table_name is None:
            return []
        names = self.tables._arn_names(self.catalog_table_name)
        return _table_arns(self.catalog_database, *names)

    def _built_in_script(self) -> glue.Code:
        """The built-in script as a file asset, read through ``Code.from_bucket`` so the role
        may read that one object (``Code.from_asset`` grants the whole assets bucket). Its
        stages come with it as ``--extra-py-files`` (``_glue_package``), read the same way."""
        asset = s3_assets.Asset(self, "Script", path=str(_BUILT_IN_SCRIPT))
        return glue.Code.from_bucket(asset.bucket, asset.s3_object_key)

    def _grant_data_access(
        self,
        source_bucket: s3.IBucket,
        output_bucket: s3.IBucket,
        source_key_prefix: Optional[str],
        written_prefixes: tuple[str, ...],
        manifest_prefix: str,
    ) -> None:
        source_bucket.grant_read(self.role, f"{source_key_prefix or ''}*")
        # The table (its data, schema file and run reports) and the quarantine: the script
        # also reads what it wrote (a re-run replaces its earlier files).
        # Writes are exactly what Spark's committer and the script do: put, delete (staging,
        # a re-run's earlier files), abort a multipart upload. No legal hold, retention or
        # tagging (Object Lock is off), no version deletes.
        for prefix in written_prefixes:
            output_bucket.grant_read(self.role, f"{prefix}*")
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteOutputAndQuarantine",
                actions=list(_OBJECT_WRITE_ACTIONS),
                resources=[output_bucket.arn_for_objects(f"{p}*") for p in written_prefixes],
            )
        )
        output_bucket.grant_read(self.role, f"{manifest_prefix}*")
        # One statement per key, however many roles a key plays (output bucket, security
        # configuration, output encryption): encrypt and decrypt, as S3 writes and reads and
        # Glue's encrypted bookmarks need.
        _grant_each_key_once(
            self.role, output_bucket.encryption_key, self.encryption_key, self.output_encryption_key
        )

    def grant_read_output(self, grantee: iam.IGrantable) -> None:
        """Let ``grantee`` decrypt what the job wrote (a no-op with SSE-S3 output)."""
        if self.output_encryption_key is not None:
            self.output_encryption_key.grant_decrypt(grantee)

    def _allow_reading_own_runs(self) -> None:
        """The built-in script asks Glue whether another run of its batch is still going
        before it starts (``batch_run``): ``glue:GetJobRun`` on this job only."""
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["glue:GetJobRun"], resources=[self.job.job_arn])
        )

    def _grant_logs_and_metrics(self) -> None:
        _grant_glue_logs_and_metrics(self.role)


def _quality_table(
    catalog_database: Any, catalog_table_name: Any, output_prefix: Any
) -> Optional[str]:
    """The job's table as ``quality_rules`` keys name it (None: a token, not knowable)."""
    table = None  # without a database, the job keeps no catalog table
    if catalog_database is not None:
        named = catalog_table_name if isinstance(catalog_table_name, str) else None
        table = named or _DEFAULT_TABLE_NAME
    if table is None and not (isinstance(output_prefix, str) and not is_unresolved(output_prefix)):
        return None
    return table_name_of(table, str(output_prefix))


def _job_timeout(timeout: Optional[Duration], execution_class: Any) -> Duration:
    """A job's timeout: the one given, else 1 hour (2 hours with FLEX)."""
    if timeout is not None:
        return timeout
    return _FLEX_TIMEOUT if execution_class == glue.ExecutionClass.FLEX else _DEFAULT_TIMEOUT


def _timeout_argument(timeout: Duration) -> dict[str, str]:
    """The job's timeout for the built-in script's claims: a claim older than it (plus a
    margin) belongs to no run still going, and another batch may take it over."""
    if timeout.is_unresolved():  # a token: the job then assumes Glue's longest timeout
        return {}
    return {JOB_TIMEOUT_ARGUMENT: str(math.ceil(timeout.to_minutes(integral=False)))}


def _table_arns(database: glue.IDatabase, *table_names: str) -> list[str]:
    """The ARNs IAM checks for a table's catalog calls: its catalog, database and table(s)."""
    return [
        database.catalog.catalog_arn,
        database.database_arn,
        *(
            Stack.of(database).format_arn(
                service="glue",
                resource="table",
                resource_name=f"{database.database_name}/{table_name}",
            )
            for table_name in table_names
        ),
    ]


def _grant_each_key_once(role: iam.IRole, *keys: Optional[kms.IKey]) -> None:
    """Encrypt and decrypt on each distinct key (one statement per key, however many roles
    a key plays: a bucket's, the security configuration's, the output's)."""
    distinct: list[kms.IKey] = []
    for key in keys:
        if key is not None and all(key is not k for k in distinct):
            distinct.append(key)
    for key in distinct:
        key.grant_encrypt_decrypt(role)


def _grant_glue_logs_and_metrics(role: iam.IRole) -> None:
    """What every Glue job run needs besides its data: its own logs and Glue's metrics."""
    stack = Stack.of(role)
    # Glue picks its log group and stream names at run time, all under /aws-glue/.
    log_groups = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws-glue/*"
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="WriteOwnLogs",
            actions=[
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:AssociateKmsKey",
            ],
            resources=[log_groups, f"{log_groups}:log-stream:*"],
        )
    )
    # PutMetricData has no resource-level permissions; a condition keeps it to Glue's.
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="PublishGlueMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
        )
    )

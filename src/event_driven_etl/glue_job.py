"""GlueEtlJob: the Glue (Spark) job, its least-privilege role and security configuration."""

from __future__ import annotations

import re
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

from . import _defaults, _glue_package, _nag
from . import _validation as v
from ._contract import (
    BAD_RECORDS_MODES,
    DEFAULT_QUARANTINE_PREFIX,
    RESERVED_ARGUMENTS,
    RUN_REPORTS_DIR,
)
from ._glue_versions import GlueVersionValue, cfn_override, glue_version_name, l2_glue_version
from ._validation import Problems, is_unresolved, key_filter_problems

BUILT_IN_SCRIPT = Path(__file__).parent / "runtime" / "glue" / "etl_job.py"
"""The script used when no ``script`` is given (shipped in the package)."""

GLUE_INTERNAL_ARGUMENTS = frozenset({"--conf", "--debug", "--mode", "--JOB_NAME"})
"""Arguments Glue uses internally, which a job must never set ("Using job parameters in AWS
Glue jobs": https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-etl-glue-arguments.html)."""

SECURITY_CONFIGURATION_NAME_LIMIT = 255
"""Glue's longest security configuration name."""

_BATCH_WORKER_TYPES = (
    "G_1X",
    "G_2X",
    "G_4X",
    "G_8X",
    "G_12X",
    "G_16X",
    "R_1X",
    "R_2X",
    "R_4X",
    "R_8X",
)
"""Worker types of a Spark ETL job: G.025X is for streaming jobs, Standard for Glue 1.0."""
_IAM_WILDCARDS = ("*", "?")

DEFAULT_MAX_CONCURRENT_RUNS = 10
DEFAULT_GLUE_VERSION = glue.GlueVersion.V5_1
"""Glue 5.1 (Spark 3.5.6, Python 3.11): the Spark line of the testing extra's pyspark 3.5, so
the offline harness runs the job as deployed without a second Spark installed."""

DEFAULT_JOB_TIMEOUT = Duration.hours(1)
FLEX_JOB_TIMEOUT = Duration.hours(2)
DEFAULT_TABLE_NAME = "etl_output"
OBJECT_WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
"""What the job writes under the output and quarantine prefixes."""

CATALOG_ACTIONS = (
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:CreateTable",
    "glue:UpdateTable",
    "glue:GetPartition",
    "glue:BatchCreatePartition",
)
"""What the built-in script does in the Data Catalog: keep its table and partitions."""

_BUILT_IN_VERSIONS = (
    "GlueVersion.V5_0",
    "GlueVersion.V5_1",
    "GlueVersion.V6_0",
    "NewerGlueVersion.V6_1",
)
_FLEX_WORKER_TYPES = ("G_1X", "G_2X")
_JOB_NAME = re.compile(r"^[^\x00-\x08\x0a-\x1f]{1,255}$")  # Glue's own pattern, minus control
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,254}$")
_MIN_WORKERS = 2
_MAX_CONCURRENT_RUNS_LIMIT = 1000


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

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source_bucket: s3.IBucket,
        output_bucket: s3.IBucket,
        script: Optional[glue.Code] = None,
        source_key_prefix: Optional[str] = None,
        output_prefix: str = "processed/",
        manifest_prefix: str = "manifests/",
        glue_version: GlueVersionValue = DEFAULT_GLUE_VERSION,
        execution_class: glue.ExecutionClass = glue.ExecutionClass.STANDARD,
        auto_scaling: bool = True,
        worker_type: glue.WorkerType = glue.WorkerType.G_1X,
        number_of_workers: int = 2,
        timeout: Optional[Duration] = None,
        max_concurrent_runs: int = DEFAULT_MAX_CONCURRENT_RUNS,
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
        """
        problems = Problems(f"GlueEtlJob '{construct_id}'")
        given = {
            "source_bucket": source_bucket,
            "output_bucket": output_bucket,
            "script": script,
            "source_key_prefix": source_key_prefix,
            "output_prefix": output_prefix,
            "manifest_prefix": manifest_prefix,
            "execution_class": execution_class,
            "auto_scaling": auto_scaling,
            "worker_type": worker_type,
            "number_of_workers": number_of_workers,
            "timeout": timeout,
            "max_concurrent_runs": max_concurrent_runs,
            "job_run_queuing": job_run_queuing,
            "extra_arguments": extra_arguments,
            "encryption_key": encryption_key,
            "output_encryption_key": output_encryption_key,
            "source_bucket_key": source_bucket_key,
            "job_name": job_name,
            "bad_records": bad_records,
            "quarantine_prefix": quarantine_prefix,
            "catalog_database": catalog_database,
            "catalog_table_name": catalog_table_name,
        }
        if source_bucket is None or output_bucket is None:
            for prop in ("source_bucket", "output_bucket"):
                if given[prop] is None:
                    problems.add(prop, None, f"is required: {GLUE_JOB_TYPES[prop](None)}")
        wrong = problems.check_types({p: (x, GLUE_JOB_TYPES[p]) for p, x in given.items()})
        ok = v.usable(given, wrong, GlueEtlJob.__init__)
        check_glue_job_props(
            problems,
            output_prefix=ok["output_prefix"],
            manifest_prefix=ok["manifest_prefix"],
            number_of_workers=ok["number_of_workers"],
            max_concurrent_runs=ok["max_concurrent_runs"],
            timeout=ok["timeout"] or DEFAULT_JOB_TIMEOUT,
            extra_arguments=ok["extra_arguments"],
            bad_records=ok["bad_records"],
            quarantine_prefix=ok["quarantine_prefix"],
            glue_version=glue_version,
            execution_class=ok["execution_class"],
            worker_type=ok["worker_type"],
            job_run_queuing=ok["job_run_queuing"],
            built_in_script=script is None,
            catalog_table_name=ok["catalog_table_name"],
        )
        key_filter_problems(problems, "source_key_prefix", ok["source_key_prefix"])
        if ok["job_name"] is not None and not is_unresolved(job_name):
            problems.require(
                bool(_JOB_NAME.match(job_name or "")),
                "job_name",
                job_name,
                "must be 1 to 255 characters without line breaks, or None for a generated name",
            )
        problems.raise_if_any()
        super().__init__(scope, construct_id)
        flex = execution_class == glue.ExecutionClass.FLEX
        timeout = timeout or (FLEX_JOB_TIMEOUT if flex else DEFAULT_JOB_TIMEOUT)
        self.catalog_database = catalog_database
        self.catalog_table_name = (
            (catalog_table_name or DEFAULT_TABLE_NAME) if catalog_database else None
        )

        self.output_encryption_key = output_encryption_key
        self.encryption_key = encryption_key or _defaults.new_encryption_key(
            self, "Key", "event-driven-etl: Glue job output, logs and bookmarks"
        )
        _defaults.allow_logs_to_use_key(self.encryption_key)
        self.security_configuration = glue.SecurityConfiguration(
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
        self.security_configuration.apply_removal_policy(RemovalPolicy.DESTROY)
        configuration = self.security_configuration.node.default_child
        if isinstance(configuration, glue.CfnSecurityConfiguration):
            # CDK names it with up to 256 characters; Glue takes 255. The same name as CDK's
            # for every path shorter than that (no replacement of deployed configurations).
            configuration.name = Names.unique_resource_name(
                self.security_configuration, max_length=SECURITY_CONFIGURATION_NAME_LIMIT
            )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="event-driven-etl Glue job: read source, write output, own logs",
        )
        self.role = role
        self.output_bucket = output_bucket
        self.output_path = f"s3://{output_bucket.bucket_name}/{output_prefix}"
        self.run_reports_prefix = f"{output_prefix}{RUN_REPORTS_DIR}"
        self.quarantine_path = f"s3://{output_bucket.bucket_name}/{quarantine_prefix}"
        arguments = {
            "--output_path": self.output_path,
            "--bad_records": bad_records,
            "--quarantine_path": self.quarantine_path,
            **self._catalog_arguments(),
            **({"--enable-auto-scaling": "true"} if auto_scaling else {}),
            "--enable-glue-datacatalog": "false",
            **(extra_arguments or {}),
        }
        common: dict[str, Any] = {
            "role": role,
            "script": script or self._built_in_script(),
            "extra_python_files": None if script else [_glue_package.job_package(self)],
            "glue_version": l2_glue_version(glue_version),
            # Always explicit: on Glue 6.1 a job without a worker type runs on Graviton.
            "worker_configuration": glue.WorkerConfiguration(
                worker_type=worker_type, number_of_workers=number_of_workers
            ),
            "timeout": timeout,
            "max_retries": 0,
            "max_concurrent_runs": max_concurrent_runs,
            "default_arguments": arguments,
            "security_configuration": self.security_configuration,
            "job_name": job_name,
            "description": "event-driven-etl: transforms new S3 objects",
        }
        self.job = (
            glue.PySparkFlexEtlJob(self, "Job", **common)
            if flex
            else glue.PySparkEtlJob(self, "Job", job_run_queuing_enabled=job_run_queuing, **common)
        )
        override = cfn_override(glue_version)
        if override is not None:
            cast(glue.CfnJob, self.job.node.default_child).glue_version = override
        self.execution_class = execution_class
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
        _nag.acknowledge_necessary_wildcards(self.role)

    def _catalog_arguments(self) -> dict[str, str]:
        if self.catalog_database is None or self.catalog_table_name is None:
            return {}
        return {
            "--catalog_database": self.catalog_database.database_name,
            "--catalog_table": self.catalog_table_name,
            "--catalog_region": Stack.of(self).region,
        }

    def _grant_catalog(self) -> None:
        """Create and change the output table, register its partitions: that table only."""
        if self.catalog_database is None or self.catalog_table_name is None:
            return
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="MaintainOutputTable",
                actions=list(CATALOG_ACTIONS),
                resources=table_arns(self.catalog_database, self.catalog_table_name),
            )
        )

    def _built_in_script(self) -> glue.Code:
        """The built-in script as a file asset, read through ``Code.from_bucket`` so the role
        may read that one object (``Code.from_asset`` grants the whole assets bucket). Its
        stages come with it as ``--extra-py-files`` (``_glue_package``), read the same way."""
        asset = s3_assets.Asset(self, "Script", path=str(BUILT_IN_SCRIPT))
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
                actions=list(OBJECT_WRITE_ACTIONS),
                resources=[output_bucket.arn_for_objects(f"{p}*") for p in written_prefixes],
            )
        )
        output_bucket.grant_read(self.role, f"{manifest_prefix}*")
        # One statement per key, however many roles a key plays (output bucket, security
        # configuration, output encryption): encrypt and decrypt, as S3 writes and reads and
        # Glue's encrypted bookmarks need.
        keys: list[kms.IKey] = []
        for key in (output_bucket.encryption_key, self.encryption_key, self.output_encryption_key):
            if key is not None and all(key is not k for k in keys):
                keys.append(key)
        for key in keys:
            key.grant_encrypt_decrypt(self.role)

    def grant_read_output(self, grantee: iam.IGrantable) -> None:
        """Let ``grantee`` decrypt what the job wrote (a no-op with SSE-S3 output)."""
        if self.output_encryption_key is not None:
            self.output_encryption_key.grant_decrypt(grantee)

    def _grant_logs_and_metrics(self) -> None:
        stack = Stack.of(self)
        # Glue picks its log group and stream names at run time, all under /aws-glue/.
        log_groups = (
            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws-glue/*"
        )
        self.role.add_to_principal_policy(
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
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PublishGlueMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
            )
        )


_BUCKET = v.resource("bucket_name", "an s3.IBucket (e.g. s3.Bucket.from_bucket_name(...))")
_KEY = v.resource("key_arn", "a kms.IKey (e.g. kms.Key.from_key_arn(self, 'Key', arn))")
GLUE_JOB_TYPES: dict[str, v.TypeCheck] = {
    "source_bucket": _BUCKET,
    "output_bucket": _BUCKET,
    "script": v.resource("bind", "an aws_glue.Code (e.g. glue.Code.from_asset(...))"),
    "source_key_prefix": v.string,
    "output_prefix": v.string,
    "manifest_prefix": v.string,
    "execution_class": v.member_of(glue.ExecutionClass),
    "auto_scaling": v.boolean,
    "worker_type": v.member_of(glue.WorkerType),
    "number_of_workers": v.whole_number,
    "timeout": v.duration,
    "max_concurrent_runs": v.whole_number,
    "job_run_queuing": v.boolean,
    "extra_arguments": v.string_mapping,
    "encryption_key": _KEY,
    "output_encryption_key": _KEY,
    "source_bucket_key": _KEY,
    "job_name": v.string,
    "bad_records": v.string,
    "quarantine_prefix": v.string,
    "catalog_database": v.resource("database_name", "a glue.IDatabase"),
    "catalog_table_name": v.string,
}
"""The type check of each of GlueEtlJob's props (``glue_version``'s is checked with its
value, in :func:`check_glue_runtime_props`)."""


def check_glue_job_props(
    problems: Problems,
    *,
    output_prefix: str,
    manifest_prefix: str,
    number_of_workers: int,
    max_concurrent_runs: int,
    timeout: Duration,
    extra_arguments: Optional[Mapping[str, str]],
    bad_records: str = "fail",
    quarantine_prefix: str = DEFAULT_QUARANTINE_PREFIX,
    glue_version: Optional[GlueVersionValue] = None,
    execution_class: Optional[glue.ExecutionClass] = None,
    worker_type: Optional[glue.WorkerType] = None,
    job_run_queuing: bool = False,
    built_in_script: bool = True,
    catalog_table_name: Optional[str] = None,
    settable: Optional[frozenset[str]] = None,
) -> None:
    """Record every problem with GlueEtlJob's props (the pipeline checks them up front too).

    ``settable`` names the prefixes the user sets (the pipeline fixes the manifest and
    quarantine prefixes): a clash with a fixed one is reported on the user's prop.
    """
    check_glue_runtime_props(
        problems,
        glue_version=glue_version,
        execution_class=execution_class,
        worker_type=worker_type,
        job_run_queuing=job_run_queuing,
        built_in_script=built_in_script,
    )
    if catalog_table_name is not None and not is_unresolved(catalog_table_name):
        problems.require(
            isinstance(catalog_table_name, str) and bool(_TABLE_NAME.match(catalog_table_name)),
            "catalog_table_name",
            catalog_table_name,
            "must be 1 to 255 lowercase letters, digits or '_', not starting with a digit "
            "(Glue and Athena table names)",
        )
    problems.require(
        bad_records in BAD_RECORDS_MODES,
        "bad_records",
        bad_records,
        f"must be one of {', '.join(repr(m) for m in BAD_RECORDS_MODES)}",
    )
    _prefix_problems(
        problems,
        {
            "output_prefix": output_prefix,
            "manifest_prefix": manifest_prefix,
            "quarantine_prefix": quarantine_prefix,
        },
        settable,
    )
    problems.integer_in_range("number_of_workers", number_of_workers, _MIN_WORKERS, 10_000)
    problems.integer_in_range(
        "max_concurrent_runs", max_concurrent_runs, 1, _MAX_CONCURRENT_RUNS_LIMIT
    )
    problems.seconds_in_range("timeout", timeout, 60, 7 * 24 * 3600, step=60)
    if worker_type is not None and isinstance(worker_type, glue.WorkerType):
        problems.require(
            worker_type.name in _BATCH_WORKER_TYPES,
            "worker_type",
            worker_type,
            "is not for a Spark ETL job (G.025X is for streaming jobs, Standard for Glue 1.0): "
            "use WorkerType.G_1X, G_2X, G_4X, G_8X, G_12X, G_16X or an R type",
        )
    _argument_problems(problems, extra_arguments)


def _prefix_problems(
    problems: Problems, prefixes: dict[str, Any], settable: Optional[frozenset[str]]
) -> None:
    """Key prefixes: each a plain ``folder/``, none inside another, no IAM wildcards."""
    resolved = {p: x for p, x in prefixes.items() if isinstance(x, str) and not is_unresolved(x)}
    users = settable if settable is not None else frozenset(prefixes)
    for prop, prefix in resolved.items():
        for other, other_prefix in resolved.items():
            if other == prop or not prefix.endswith("/"):
                continue
            kind = other.removesuffix("_prefix").replace("output", "table")
            if prefix.startswith(other_prefix) and prop in users:
                problems.add(
                    prop, prefix, f"must not be under {other_prefix!r} (the {kind} prefix)"
                )
            elif other_prefix.startswith(prefix) and prop in users and other not in users:
                # The other prefix is the pipeline's own: name the prop the user set.
                problems.add(prop, prefix, f"must not hold {other_prefix!r} (the {kind} prefix)")
    for prop, prefix in resolved.items():
        if any(w in prefix for w in _IAM_WILDCARDS):
            problems.add(
                prop,
                prefix,
                "must not contain '*' or '?': the prefix becomes an IAM resource of the Glue "
                "role, where they are wildcards",
            )
    for prop, prefix in prefixes.items():
        if isinstance(prefix, str) and is_unresolved(prefix):
            continue
        problems.require(
            isinstance(prefix, str)
            and prefix.endswith("/")
            and not prefix.startswith("/")
            and len(prefix) > 1,
            prop,
            prefix,
            "must be a key prefix like 'processed/': not empty, ending in '/', no leading '/'",
        )


def _argument_problems(problems: Problems, extra_arguments: Optional[Mapping[str, str]]) -> None:
    for name in extra_arguments if isinstance(extra_arguments, Mapping) else {}:
        if name in GLUE_INTERNAL_ARGUMENTS:
            problems.add(
                "extra_arguments",
                name,
                "Glue uses this argument internally and a job must never set it (internal: "
                f"{', '.join(sorted(GLUE_INTERNAL_ARGUMENTS))})",
            )
        elif name in RESERVED_ARGUMENTS:
            reserved = ", ".join(sorted(RESERVED_ARGUMENTS))
            problems.add(
                "extra_arguments",
                name,
                f"the pipeline sets this argument itself (reserved: {reserved})",
            )
        elif not (isinstance(name, str) and name.startswith("--")):
            problems.add("extra_arguments", name, "argument names must start with '--'")


def check_glue_runtime_props(
    problems: Problems,
    *,
    glue_version: Optional[GlueVersionValue],
    execution_class: Optional[glue.ExecutionClass],
    worker_type: Optional[glue.WorkerType],
    job_run_queuing: bool,
    built_in_script: bool,
) -> None:
    """Combinations Glue (or the built-in script) rejects."""
    version = glue_version_name(glue_version)
    if version is None and glue_version is not None:
        shown = (
            glue_version if isinstance(glue_version, str) else _Shown(type(glue_version).__name__)
        )
        problems.add(
            "glue_version",
            shown,
            "must be a glue.GlueVersion (e.g. GlueVersion.V5_1) or NewerGlueVersion.V6_1",
        )
    if built_in_script and version is not None:
        problems.require(
            version in _BUILT_IN_VERSIONS,
            "glue_version",
            _Shown(version),
            "the built-in script needs Glue 5.0 or later (Spark 3.5): use GlueVersion.V5_1",
        )
    if execution_class != glue.ExecutionClass.FLEX:
        return
    # https://docs.aws.amazon.com/glue/latest/dg/add-job.html: Flex needs Glue 3.0 or later.
    if version in ("GlueVersion.V0_9", "GlueVersion.V1_0", "GlueVersion.V2_0"):
        problems.add("glue_version", _Shown(version), "FLEX needs Glue 3.0+")
    worker = worker_type.name if isinstance(worker_type, glue.WorkerType) else None
    if worker is not None and worker not in _FLEX_WORKER_TYPES:
        problems.add(
            "worker_type", _Shown(f"WorkerType.{worker}"), "FLEX runs on G.1X or G.2X workers only"
        )
    if job_run_queuing:
        problems.add(
            "job_run_queuing", job_run_queuing, "Glue does not queue FLEX runs: drop one of them"
        )


class _Shown(str):
    """A value shown in an error as written in code (``GlueVersion.V4_0``), not quoted."""

    def __repr__(self) -> str:
        return str(self)


def table_arns(database: glue.IDatabase, table_name: str) -> list[str]:
    """The ARNs IAM checks for a table's catalog calls: its catalog, database and table."""
    return [
        database.catalog.catalog_arn,
        database.database_arn,
        Stack.of(database).format_arn(
            service="glue",
            resource="table",
            resource_name=f"{database.database_name}/{table_name}",
        ),
    ]

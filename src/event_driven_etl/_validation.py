"""Every construct's prop checks, in one place: each problem is recorded, then one
ValidationError names them all, wrong types and wrong values together.

Each construct checks its props with ``validate_*`` before it creates anything. The pipeline
checks the props it hands to each sub-construct with the same ``check_*_props`` functions,
up front and under the names the user wrote (``job_timeout``, not the job's ``timeout``), and
then what only the combination can get wrong.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, Callable, NamedTuple, Optional

from aws_cdk import BootstraplessSynthesizer, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_glue as glue
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct

from ._contract import (
    BAD_RECORDS_MODES,
    DEFAULT_OUTPUT_PREFIX,
    DEFAULT_QUARANTINE_PREFIX,
    MANIFEST_PREFIX,
    RESERVED_ARGUMENTS,
    TABLE_RULE_BY_FOLDER,
    TABLE_RULE_MAPPING,
)
from ._glue_versions import glue_version_name
from ._iceberg_conf import NO_NATIVE_ICEBERG
from ._notification import PIPELINE_NAME_LIMIT
from ._problems import (
    Problems,
    TypeCheck,
    boolean,
    duration,
    instance,
    is_unresolved,
    member_of,
    resource,
    string,
    string_mapping,
    usable,
    whole_number,
)
from ._quality import quality_rules_problems, quality_rules_type
from .retry import Batching, RetryPolicy
from .runtime.glue.event_driven_etl_job.quality import table_name_of
from .runtime.glue.event_driven_etl_job.tables import table_name
from .table_format import TableFormat
from .table_maintenance import TableMaintenance
from .tables import Tables

# ------------------------------------------------------------------ types

_BUCKET = resource(
    "bucket_name", "an s3.IBucket (e.g. s3.Bucket.from_bucket_name(self, 'Source', 'my-bucket'))"
)
_TOPIC = resource("topic_arn", "an sns.ITopic (e.g. sns.Topic.from_topic_arn(self, 'Topic', arn))")
_KEY = resource("key_arn", "a kms.IKey (e.g. kms.Key.from_key_arn(self, 'Key', arn))")
_GLUE_CODE = resource("bind", "an aws_glue.Code (e.g. glue.Code.from_asset(...))")
_RETRY_POLICY = instance(RetryPolicy, "a RetryPolicy (e.g. RetryPolicy(max_attempts=5))")
_BATCHING = instance(Batching, "a Batching (e.g. Batching(max_batch_size=100))")
_TABLES = instance(Tables, "a Tables (e.g. Tables.by_folder() or Tables.mapping({...}))")


def _string_sequence(value: Any) -> Optional[str]:
    ok = isinstance(value, (list, tuple)) and all(isinstance(x, str) for x in value)
    return None if ok else "must be a list of 's3://bucket/prefix' strings"


PIPELINE_TYPES: dict[str, TypeCheck] = {
    "source_bucket": _BUCKET,
    "source_bucket_key": _KEY,
    "glue_script": _GLUE_CODE,
    "notification_topic": _TOPIC,
    "retry_policy": _RETRY_POLICY,
    "key_prefix": string,
    "key_suffix": string,
    "output_bucket": _BUCKET,
    "batching": _BATCHING,
    "pipeline_name": string,
    "encryption_key": _KEY,
    "notification_topic_key": _KEY,
    "access_logs_bucket": _BUCKET,
    "removal_policy": member_of(RemovalPolicy),
    "output_prefix": string,
    "worker_type": member_of(glue.WorkerType),
    "number_of_workers": whole_number,
    "job_timeout": duration,
    "max_concurrent_runs": whole_number,
    "job_run_queuing": boolean,
    "extra_job_arguments": string_mapping,
    "workflow_timeout": duration,
    "include_execution_data": boolean,
    "log_retention": member_of(logs.RetentionDays),
    "alarms": boolean,
    "alarm_topic": _TOPIC,
    "freshness_period": duration,
    "dashboard": boolean,
    "bad_records": string,
    "execution_class": member_of(glue.ExecutionClass),
    "catalog": boolean,
    "catalog_database": resource(
        "database_name", "a glue.IDatabase (e.g. glue.Database.from_database_arn(self, 'Db', arn))"
    ),
    "catalog_table_name": string,
    "tables": _TABLES,
    "quality_rules": quality_rules_type,
    "table_format": member_of(TableFormat),
    "table_maintenance": instance(
        TableMaintenance, "a TableMaintenance (e.g. TableMaintenance(snapshot_retention=...))"
    ),
}
"""The type check of each of EventDrivenEtlPipeline's props (``glue_version``'s is checked
with its value, in :func:`check_glue_runtime_props`)."""

_SUB_BUCKET = resource("bucket_name", "an s3.IBucket (e.g. s3.Bucket.from_bucket_name(...))")

GLUE_JOB_TYPES: dict[str, TypeCheck] = {
    "source_bucket": _SUB_BUCKET,
    "output_bucket": _SUB_BUCKET,
    "script": _GLUE_CODE,
    "source_key_prefix": string,
    "output_prefix": string,
    "manifest_prefix": string,
    "execution_class": member_of(glue.ExecutionClass),
    "auto_scaling": boolean,
    "worker_type": member_of(glue.WorkerType),
    "number_of_workers": whole_number,
    "timeout": duration,
    "max_concurrent_runs": whole_number,
    "job_run_queuing": boolean,
    "extra_arguments": string_mapping,
    "encryption_key": _KEY,
    "output_encryption_key": _KEY,
    "source_bucket_key": _KEY,
    "job_name": string,
    "bad_records": string,
    "quarantine_prefix": string,
    "catalog_database": resource("database_name", "a glue.IDatabase"),
    "catalog_table_name": string,
    "tables": _TABLES,
    "quality_rules": quality_rules_type,
    "table_format": member_of(TableFormat),
}
"""The type check of each of GlueEtlJob's props (``glue_version``'s is checked with its
value, in :func:`check_glue_runtime_props`)."""

TRIGGER_TYPES: dict[str, TypeCheck] = {
    "state_machine": resource(
        "state_machine_arn", "an sfn.IStateMachine (e.g. EtlStateMachine(...).state_machine)"
    ),
    "source_bucket": resource("bucket_name", "an s3.IBucket"),
    "key_prefix": string,
    "key_suffix": string,
    "batching": _BATCHING,
    "manifest_bucket": resource("bucket_name", "an s3.IBucket"),
    "manifest_prefix": string,
    "timeout": duration,
    "retry_attempts": whole_number,
    "max_event_age": duration,
    "encryption_key": resource("key_arn", "a kms.IKey"),
    "log_retention": member_of(logs.RetentionDays),
    "ignored_locations": _string_sequence,
}
"""The type check of each of TriggerFunction's props."""

STATE_MACHINE_TYPES: dict[str, TypeCheck] = {
    "glue_job": resource("job_name", "a glue.IJob (e.g. glue.Job.from_job_attributes(...))"),
    "notification_topic": resource("topic_arn", "an sns.ITopic"),
    "retry_policy": _RETRY_POLICY,
    "concurrency_retry": _RETRY_POLICY,
    "pipeline_name": string,
    "timeout": duration,
    "notification_topic_key": resource("key_arn", "a kms.IKey"),
    "encryption_key": resource("key_arn", "a kms.IKey"),
    "include_execution_data": boolean,
    "log_retention": member_of(logs.RetentionDays),
    "report_bucket": resource("bucket_name", "an s3.IBucket"),
    "report_prefix": string,
    "report_key": resource("key_arn", "a kms.IKey"),
    "report_tables": boolean,
}
"""The type check of each of EtlStateMachine's props."""


def _checked_types(
    problems: Problems,
    values: Mapping[str, Any],
    types: Mapping[str, TypeCheck],
    init: Callable[..., Any],
    required: Iterable[str] = (),
) -> dict[str, Any]:
    """Record missing and wrong-typed props; return the props (from ``values``, a
    constructor's ``locals()``) with each wrong type replaced by its default, so the value
    checks judge only values of the right type."""
    given = {prop: values[prop] for prop in types}
    for prop in required:
        if given[prop] is None:
            problems.add(prop, None, f"is required: {types[prop](None)}")
    wrong = problems.check_types({prop: (given[prop], types[prop]) for prop in given})
    return usable(given, wrong, init)


# ------------------------------------------------------------------ trigger


def validate_trigger(
    construct_id: str, values: Mapping[str, Any], init: Callable[..., Any]
) -> None:
    """TriggerFunction's props (``values``: its constructor's locals); raises ValidationError."""
    problems = Problems(f"TriggerFunction '{construct_id}'")
    ok = _checked_types(problems, values, TRIGGER_TYPES, init, required=["state_machine"])
    check_trigger_props(problems, ok)
    key_filter = values["key_prefix"] or values["key_suffix"]
    if key_filter and values["source_bucket"] is None:
        problems.add(
            "key_prefix/key_suffix",
            key_filter,
            "filters need source_bucket, whose rule applies them",
        )
    problems.raise_if_any()


def check_trigger_props(problems: Problems, props: Mapping[str, Any]) -> None:
    """Record every problem with TriggerFunction's props (the pipeline checks them up front)."""
    key_filter_problems(problems, "key_prefix", props["key_prefix"])
    key_filter_problems(problems, "key_suffix", props["key_suffix"])
    batching = props["batching"]
    problems.require(
        batching is None or isinstance(batching, Batching),
        "batching",
        batching,
        "must be a Batching or None",
    )
    problems.seconds_in_range("timeout", props["timeout"], 10, 900)
    problems.integer_in_range("retry_attempts", props["retry_attempts"], 0, 2)
    problems.seconds_in_range("max_event_age", props["max_event_age"], 60, 6 * 3600)


def key_filter_problems(problems: Problems, prop: str, value: Optional[str]) -> None:
    """Prefix/suffix filters: literal text as stored in S3, no leading '/', no wildcards."""
    if value is None or is_unresolved(value):
        return
    if not isinstance(value, str) or not value:
        problems.add(prop, value, "must be a non-empty string, or None for no filter")
        return
    if prop.endswith("key_prefix") and value.startswith("/"):
        problems.add(prop, value, "must not start with '/': S3 keys have no leading slash")
    if prop.endswith("key_prefix") and ("*" in value or "?" in value):
        problems.add(
            prop,
            value,
            "must not contain '*' or '?': the prefix becomes an IAM resource of the Glue role "
            "(and of grant_write_source), where they are wildcards",
        )
    if len(value.encode("utf-8")) > 1024:
        problems.add(prop, value[:40] + "...", "must be at most 1,024 bytes (S3's key limit)")


# ------------------------------------------------------------------ workflow


def validate_state_machine(
    construct_id: str, values: Mapping[str, Any], init: Callable[..., Any]
) -> None:
    """EtlStateMachine's props (``values``: its constructor's locals); raises ValidationError."""
    problems = Problems(f"EtlStateMachine '{construct_id}'")
    required = ["glue_job", "notification_topic"]
    ok = _checked_types(problems, values, STATE_MACHINE_TYPES, init, required=required)
    check_state_machine_props(problems, ok)
    problems.raise_if_any()


def check_state_machine_props(problems: Problems, props: Mapping[str, Any]) -> None:
    """Record every problem with EtlStateMachine's props (the pipeline checks them up front)."""
    problems.seconds_in_range("timeout", props["timeout"], 60, 365 * 24 * 3600)
    for prop in ("retry_policy", "concurrency_retry"):
        policy = props[prop]
        problems.require(
            policy is None or isinstance(policy, RetryPolicy),
            prop,
            policy,
            "must be a RetryPolicy or None",
        )
    pipeline_name = props["pipeline_name"]
    if pipeline_name is not None:
        problems.require(
            isinstance(pipeline_name, str) and 0 < len(pipeline_name) <= PIPELINE_NAME_LIMIT,
            "pipeline_name",
            pipeline_name,
            f"must be a string of 1 to {PIPELINE_NAME_LIMIT} characters",
        )


# ------------------------------------------------------------------ Glue job

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

_FLEX_WORKER_TYPES = ("G_1X", "G_2X")
_BUILT_IN_VERSIONS = (
    "GlueVersion.V5_0",
    "GlueVersion.V5_1",
    "GlueVersion.V6_0",
    "NewerGlueVersion.V6_1",
)
_IAM_WILDCARDS = ("*", "?")
_JOB_NAME = re.compile(r"^[^\x00-\x08\x0a-\x1f]{1,255}$")  # Glue's own pattern, minus control
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,254}$")
_MIN_WORKERS = 2
_MAX_WORKERS = 10_000
_MAX_CONCURRENT_RUNS_LIMIT = 1000

GLUE_INTERNAL_ARGUMENTS = frozenset({"--conf", "--debug", "--mode", "--JOB_NAME"})
"""Arguments Glue uses internally, which a job must never set ("Using job parameters in AWS
Glue jobs": https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-etl-glue-arguments.html)."""


def validate_glue_job(
    construct_id: str, values: Mapping[str, Any], init: Callable[..., Any]
) -> None:
    """GlueEtlJob's props (``values``: its constructor's locals); raises ValidationError."""
    problems = Problems(f"GlueEtlJob '{construct_id}'")
    required = ["source_bucket", "output_bucket"]
    ok = _checked_types(problems, values, GLUE_JOB_TYPES, init, required=required)
    quality_table = values.get("quality_table")
    check_glue_job_props(
        problems,
        {**ok, "glue_version": values["glue_version"], "quality_table": quality_table},
    )
    key_filter_problems(problems, "source_key_prefix", ok["source_key_prefix"])
    if ok["table_format"] == TableFormat.ICEBERG and ok["catalog_database"] is None:
        problems.add(
            "table_format",
            _Shown("TableFormat.ICEBERG"),
            "an Iceberg table lives in the Glue Data Catalog: give catalog_database",
        )
    job_name = ok["job_name"]
    if job_name is not None and not is_unresolved(job_name):
        problems.require(
            bool(_JOB_NAME.match(job_name)),
            "job_name",
            job_name,
            "must be 1 to 255 characters without line breaks, or None for a generated name",
        )
    problems.raise_if_any()


def check_glue_job_props(
    problems: Problems, props: Mapping[str, Any], settable: Optional[frozenset[str]] = None
) -> None:
    """Record every problem with GlueEtlJob's props (the pipeline checks them up front too).

    ``settable`` names the prefixes the user sets (the pipeline fixes the manifest and
    quarantine prefixes): a clash with a fixed one is reported on the user's prop.
    """
    check_glue_runtime_props(problems, props)
    _check_table_name(problems, props["catalog_table_name"])
    check_tables(problems, props.get("tables"), props["catalog_table_name"])
    problems.require(
        props["bad_records"] in BAD_RECORDS_MODES,
        "bad_records",
        props["bad_records"],
        f"must be one of {', '.join(repr(m) for m in BAD_RECORDS_MODES)}",
    )
    prefixes = {p: props[p] for p in ("output_prefix", "manifest_prefix", "quarantine_prefix")}
    _prefix_problems(problems, prefixes, settable)
    problems.integer_in_range(
        "number_of_workers", props["number_of_workers"], _MIN_WORKERS, _MAX_WORKERS
    )
    problems.integer_in_range(
        "max_concurrent_runs", props["max_concurrent_runs"], 1, _MAX_CONCURRENT_RUNS_LIMIT
    )
    problems.seconds_in_range("timeout", props["timeout"], 60, 7 * 24 * 3600, step=60)
    worker_type = props["worker_type"]
    if isinstance(worker_type, glue.WorkerType):
        problems.require(
            worker_type.name in _BATCH_WORKER_TYPES,
            "worker_type",
            worker_type,
            "is not for a Spark ETL job (G.025X is for streaming jobs, Standard for Glue 1.0): "
            "use WorkerType.G_1X, G_2X, G_4X, G_8X, G_12X, G_16X or an R type",
        )
    _argument_problems(problems, props["extra_arguments"])
    quality_rules_problems(problems, props["quality_rules"], quality_tables(props))


def quality_tables(props: Mapping[str, Any]) -> Optional[tuple[str, ...]]:
    """The tables ``quality_rules`` keys may name, when known at synth: a mapping's tables,
    else the job's one table; None with ``Tables.by_folder()`` (named at run time)."""
    tables = props.get("tables")
    if isinstance(tables, Tables) and not tables.is_single:
        return tables._table_names()
    name = quality_table_name(props)
    return None if name is None else (name,)


def quality_table_name(props: Mapping[str, Any]) -> Optional[str]:
    """The job's one table, as ``quality_rules`` keys name it: the pipeline's catalog table
    (``quality_table``, which the pipeline works out), the job's catalog table, else the last
    folder of the output prefix (as the job names it)."""
    given = props.get("quality_table")
    if given is not None:
        return str(given)
    table = props["catalog_table_name"]
    if table is None and props["catalog_database"] is not None:
        return None  # the job's default name: GlueEtlJob passes it as quality_table
    prefix = props["output_prefix"]
    if table is None and not (isinstance(prefix, str) and not is_unresolved(prefix)):
        return None
    return table_name_of(table, str(prefix))


def _check_table_name(problems: Problems, name: Any) -> None:
    if name is not None and not is_unresolved(name):
        problems.require(
            isinstance(name, str) and bool(_TABLE_NAME.match(name)),
            "catalog_table_name",
            name,
            "must be 1 to 255 lowercase letters, digits or '_', not starting with a digit "
            "(Glue and Athena table names)",
        )


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
            f"must be a key prefix like {DEFAULT_OUTPUT_PREFIX!r}: not empty, ending in '/', "
            "no leading '/'",
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


def check_glue_runtime_props(problems: Problems, props: Mapping[str, Any]) -> None:
    """Combinations Glue (or the built-in script) rejects."""
    glue_version = props["glue_version"]
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
    if props["script"] is None and version is not None:
        problems.require(
            version in _BUILT_IN_VERSIONS,
            "glue_version",
            _Shown(version),
            "the built-in script needs Glue 5.0 or later (Spark 3.5): use GlueVersion.V5_1",
        )
    if props.get("table_format") == TableFormat.ICEBERG and version in NO_NATIVE_ICEBERG:
        problems.add(
            "glue_version",
            _Shown(version),
            "TableFormat.ICEBERG needs Glue's native Iceberg (Glue 3.0+): use GlueVersion.V5_1",
        )
    if props["execution_class"] != glue.ExecutionClass.FLEX:
        return
    # https://docs.aws.amazon.com/glue/latest/dg/add-job.html: Flex needs Glue 3.0 or later.
    if version in ("GlueVersion.V0_9", "GlueVersion.V1_0", "GlueVersion.V2_0"):
        problems.add("glue_version", _Shown(version), "FLEX needs Glue 3.0+")
    worker_type = props["worker_type"]
    worker = worker_type.name if isinstance(worker_type, glue.WorkerType) else None
    if worker is not None and worker not in _FLEX_WORKER_TYPES:
        problems.add(
            "worker_type", _Shown(f"WorkerType.{worker}"), "FLEX runs on G.1X or G.2X workers only"
        )
    if props["job_run_queuing"]:
        problems.add(
            "job_run_queuing",
            props["job_run_queuing"],
            "Glue does not queue FLEX runs: drop one of them",
        )


class _Shown(str):
    """A value shown in an error as written in code (``GlueVersion.V4_0``), not quoted."""

    def __repr__(self) -> str:
        return str(self)


# ------------------------------------------------------------------ the pipeline


def check_pipeline_types(
    problems: Problems, values: Mapping[str, Any], init: Callable[..., Any]
) -> dict[str, Any]:
    """Record the pipeline's wrong-typed props; return its props (from its constructor's
    ``locals()``), each wrong type replaced by its default, ``glue_version`` as given (its
    type is checked with its value)."""
    ok = _checked_types(problems, values, PIPELINE_TYPES, init)
    return {**ok, "glue_version": values["glue_version"]}


def check_pipeline_props(
    problems: Problems,
    scope: Construct,
    props: Mapping[str, Any],
    *,
    trigger: Mapping[str, Any],
    workflow: Mapping[str, Any],
    glue_job: Mapping[str, Any],
    job_timeout: Duration,
) -> None:
    """Every value problem of the pipeline's props, and of the combinations, recorded.

    ``trigger``, ``workflow`` and ``glue_job`` are the props each sub-construct will see
    (what the pipeline passes, over the sub-construct's defaults); ``job_timeout`` is the
    Glue job's timeout, its default included.
    """
    check_trigger_props(problems, trigger)
    with problems.named({"timeout": "workflow_timeout"}):
        check_state_machine_props(problems, workflow)
    with problems.named({"timeout": "job_timeout", "extra_arguments": "extra_job_arguments"}):
        check_glue_job_props(problems, glue_job, settable=frozenset({"output_prefix"}))
    _check_job_fits_workflow(problems, job_timeout, workflow["timeout"])
    _check_catalog_props(problems, props)
    _check_table_maintenance(problems, props)
    if props["notification_topic_key"] is not None and props["notification_topic"] is None:
        problems.add(
            "notification_topic_key",
            props["notification_topic_key"],
            "is the key of a notification_topic you bring; the created topic uses encryption_key",
        )
    output_prefix = glue_job["output_prefix"]
    _check_output_location_is_free(problems, scope, props["output_bucket"], output_prefix)
    problems.seconds_in_range(
        "freshness_period", props["freshness_period"], 300, 7 * 24 * 3600, step=60
    )
    _check_same_environment(problems, scope, props["source_bucket"])
    _check_synthesizer(problems, scope)
    _check_no_self_trigger(problems, props, output_prefix)
    if props["alarm_topic"] is not None and not props["alarms"]:
        problems.add(
            "alarm_topic", props["alarm_topic"], "has no effect with alarms=False; drop one"
        )
    if props["source_bucket_key"] is not None and props["source_bucket"] is None:
        problems.add(
            "source_bucket_key",
            props["source_bucket_key"],
            "is for a source_bucket you bring; the created bucket uses encryption_key",
        )


def _check_job_fits_workflow(problems: Problems, job: Duration, workflow: Duration) -> None:
    """A Glue run the workflow gives up on first keeps running (and billing) unwatched."""
    if not (isinstance(job, Duration) and isinstance(workflow, Duration)):
        return  # a wrong type is reported on its own
    if job.is_unresolved() or workflow.is_unresolved():
        return
    job_ms, workflow_ms = job.to_milliseconds(), workflow.to_milliseconds()
    if workflow_ms < 60_000:  # already reported as out of range
        return
    if job_ms > workflow_ms:
        problems.add(
            "job_timeout",
            job,
            f"must not be longer than workflow_timeout ({workflow.to_human_string()}): the "
            "workflow would stop waiting while the run goes on",
        )


def _check_catalog_props(problems: Problems, props: Mapping[str, Any]) -> None:
    if props["catalog"]:
        return
    if props["table_format"] == TableFormat.ICEBERG:
        problems.add(
            "table_format",
            _Shown("TableFormat.ICEBERG"),
            "an Iceberg table lives in the Glue Data Catalog: drop catalog=False",
        )
    for prop in ("catalog_database", "catalog_table_name"):
        if props[prop] is not None:
            problems.add(prop, props[prop], "has no effect with catalog=False; drop one")


def _check_table_maintenance(problems: Problems, props: Mapping[str, Any]) -> None:
    """Maintenance is of an Iceberg table: compaction, snapshots and orphan files are
    Iceberg's notions (a Parquet table's re-run replaces its own files already)."""
    maintenance = props["table_maintenance"]
    if maintenance is None or props["table_format"] == TableFormat.ICEBERG:
        return
    problems.add(
        "table_maintenance",
        _Shown("TableMaintenance(...)"),
        "maintains an Iceberg table: set table_format=TableFormat.ICEBERG, or drop "
        "table_maintenance (a Parquet table needs none)",
    )


def _check_synthesizer(problems: Problems, scope: Construct) -> None:
    """The trigger's code and the Glue script are assets: a synthesizer must publish them."""
    synthesizer = Stack.of(scope).synthesizer
    if isinstance(synthesizer, BootstraplessSynthesizer):
        problems.add(
            "the stack's synthesizer",
            type(synthesizer).__name__,
            "cannot publish assets, and the pipeline has two (the trigger's code, the Glue "
            "script): use DefaultStackSynthesizer or CliCredentialsStackSynthesizer",
        )


def _check_no_self_trigger(
    problems: Problems, props: Mapping[str, Any], output_prefix: Any
) -> None:
    """One bucket for input and output: the rule must not match what the pipeline writes,
    or every run's output starts new runs (Glue cost without end)."""
    source_bucket, output_bucket = props["source_bucket"], props["output_bucket"]
    if source_bucket is None or output_bucket is None:
        return
    key_prefix = props["key_prefix"]
    if not _same_bucket(source_bucket, output_bucket):
        return
    if key_prefix is not None and is_unresolved(key_prefix):
        return
    written = {
        "output_prefix": output_prefix,
        "manifests": MANIFEST_PREFIX,
        "quarantine": DEFAULT_QUARANTINE_PREFIX,
    }
    for what, prefix in written.items():
        if not isinstance(prefix, str) or is_unresolved(prefix):
            continue
        if key_prefix is None or prefix.startswith(key_prefix) or key_prefix.startswith(prefix):
            outside = ", ".join(repr(p) for p in written.values() if isinstance(p, str))
            problems.add(
                "key_prefix",
                key_prefix,
                f"with output_bucket the source bucket, the rule would match {prefix!r} "
                f"({what}: written by the pipeline) and every run would start new runs; "
                f"give a key_prefix outside {outside} (e.g. 'incoming/') or another "
                "output_bucket",
            )
            return


_OUTPUT_LOCATIONS: weakref.WeakKeyDictionary[IConstruct, list[tuple[s3.IBucket, str, str]]] = (
    weakref.WeakKeyDictionary()
)
"""Per app (its root construct): the brought output buckets and prefixes of its pipelines,
with their paths. Weak, so an app's entries go with the app."""


def record_output_location(scope: Construct, bucket: s3.IBucket, prefix: str) -> None:
    """Remember that the pipeline ``scope`` writes ``prefix`` of a bucket it was given."""
    locations = _OUTPUT_LOCATIONS.setdefault(scope.node.root, [])
    locations.append((bucket, prefix, scope.node.path))


def _check_output_location_is_free(
    problems: Problems, scope: Construct, output_bucket: Optional[s3.IBucket], prefix: Any
) -> None:
    """Two pipelines writing one location would keep two tables (and two exactly-once
    bookkeepings) over the same files, each replacing the other's output."""
    if output_bucket is None or not isinstance(prefix, str) or is_unresolved(prefix):
        return
    for bucket, other_prefix, path in _OUTPUT_LOCATIONS.get(scope.node.root, []):
        if _same_bucket(bucket, output_bucket) and (
            prefix.startswith(other_prefix) or other_prefix.startswith(prefix)
        ):
            problems.add(
                "output_prefix",
                prefix,
                f"the pipeline at '{path}' already writes {other_prefix!r} of this "
                "output_bucket: give each pipeline its own output_prefix (e.g. 'orders/') "
                "or its own bucket",
            )


def _same_bucket(a: s3.IBucket, b: s3.IBucket) -> bool:
    if a is b:
        return True
    names = (a.bucket_name, b.bucket_name)
    return not any(is_unresolved(n) for n in names) and names[0] == names[1]


def _check_same_environment(
    problems: Problems, scope: Construct, source_bucket: Optional[s3.IBucket]
) -> None:
    """S3 sends a bucket's events to the default bus of the bucket's own account and region."""
    if source_bucket is None:
        return
    stack = Stack.of(scope)
    for field, theirs, ours in (
        ("account", source_bucket.env.account, stack.account),
        ("region", source_bucket.env.region, stack.region),
    ):
        if Token.is_unresolved(theirs) or Token.is_unresolved(ours) or theirs == ours:
            continue
        problems.add(
            "source_bucket",
            f"{source_bucket.bucket_name} ({field} {theirs})",
            f"must be in the stack's {field} ({ours}): S3 delivers its events to EventBridge in "
            f"the bucket's own {field}. Deploy the pipeline there, or replicate the objects "
            "into a bucket here.",
        )


# ------------------------------------------------------------------ table routing

_TABLE_NAME_RULE = (
    "normalised like a column name it must be a Glue table name (ASCII letters, digits, '_', "
    "at most 255 characters)"
)


def check_tables(problems: Problems, tables: Optional[Tables], catalog_table_name: Any) -> None:
    """Record every problem with a ``tables`` value and with ``catalog_table_name`` beside it."""
    if tables is None:
        return
    if tables.is_single:
        _check_single_table(problems, tables, catalog_table_name)
    elif tables.kind == TABLE_RULE_MAPPING:
        _check_routes(problems, tables)


def check_pipeline_tables(problems: Problems, props: Mapping[str, Any]) -> None:
    """What only the pipeline's props together get wrong about ``tables`` (its value is
    checked with the Glue job's props)."""
    tables, catalog_table_name = props["tables"], props["catalog_table_name"]
    if tables is not None and tables.is_single and tables.name is not None:
        problems.require(
            props["catalog"],
            "tables",
            _Shown(repr(tables)),
            "names a catalog table, and catalog=False keeps none; drop the name",
        )
    if tables is None or tables.is_single:
        return
    if catalog_table_name is not None:
        by = "by its folder" if tables.kind == TABLE_RULE_BY_FOLDER else "by the mapping"
        problems.add(
            "catalog_table_name",
            catalog_table_name,
            f"has no effect with tables={tables!r}: each table is named {by}; drop it",
        )
    if props.get("table_format") == TableFormat.ICEBERG:
        # One Iceberg table per pipeline for now: its commit, snapshot bookkeeping and
        # permissions are proven for one table, not for tables routed at run time.
        problems.add(
            "table_format",
            _Shown("TableFormat.ICEBERG"),
            f"keeps one Iceberg table, and tables={tables!r} routes objects to several: use "
            "Tables.single() with Iceberg, or TableFormat.PARQUET with table routing",
        )
    if props["glue_script"] is not None:
        # Routing and the run report's ``tables`` are the built-in script's: the workflow
        # would read a ``tables`` field your script never writes.
        problems.add(
            "tables",
            _Shown(repr(tables)),
            "routes objects to tables in the built-in Glue script, and glue_script replaces "
            "that script: drop glue_script, or keep tables=Tables.single() with your own script",
        )
    _check_routing_key_prefix(problems, props["key_prefix"], tables)


def _check_routing_key_prefix(problems: Problems, key_prefix: Any, tables: Tables) -> None:
    """Routes are relative to ``key_prefix`` cut at a folder: ``incoming`` (no ``/``) would
    leave ``/orders/a.csv`` (or ``-old/orders/a.csv``), so every object would be skipped."""
    if not isinstance(key_prefix, str) or is_unresolved(key_prefix) or key_prefix == "":
        return
    problems.require(
        key_prefix.endswith("/"),
        "key_prefix",
        key_prefix,
        f"with tables={tables!r} it must end with '/' (a folder: "
        f"{key_prefix + '/'!r}): tables are routed by the keys under that folder, and "
        "without the '/' every object would be skipped",
    )


def _check_single_table(problems: Problems, tables: Tables, catalog_table_name: Any) -> None:
    name = tables.name
    if name is None or is_unresolved(name):
        return
    normalised = table_name(name) if isinstance(name, str) else None
    if normalised is None:
        problems.add("tables", _Shown(repr(tables)), f"the table name {_TABLE_NAME_RULE}")
    elif isinstance(catalog_table_name, str) and not is_unresolved(catalog_table_name):
        problems.require(
            catalog_table_name == normalised,
            "tables",
            _Shown(repr(tables)),
            f"names the table {normalised!r} and catalog_table_name names "
            f"{catalog_table_name!r}: give the name once",
        )


def _check_routes(problems: Problems, tables: Tables) -> None:
    shown = _Shown(repr(tables))
    routes = tables.routes
    pairs_ok = isinstance(routes, tuple) and all(
        isinstance(pair, tuple) and len(pair) == 2 for pair in routes
    )
    if not pairs_ok or not routes:
        problems.add("tables", shown, "Tables.mapping takes a non-empty dict of key prefix: table")
        return
    for prefix, name in routes:
        if not isinstance(prefix, str) or prefix.startswith("/"):
            problems.add(
                "tables",
                shown,
                f"key prefix {prefix!r} must be a string relative to key_prefix, not starting "
                "with '/' (e.g. 'orders/'; '' matches every key)",
            )
        if not isinstance(name, str) or table_name(name) is None:
            problems.add("tables", shown, f"table {name!r}: {_TABLE_NAME_RULE}")


_CATALOG_TABLES: weakref.WeakKeyDictionary[IConstruct, list[tuple[Any, str, str]]] = (
    weakref.WeakKeyDictionary()
)
"""Per app (its root construct): (brought catalog database, table name, pipeline path) of its
pipelines. Weak, so an app's entries go with the app."""


def record_catalog_tables(scope: Construct, database: Any, names: Iterable[str]) -> None:
    """Remember that the pipeline ``scope`` keeps tables ``names`` in a database it was given."""
    entries = _CATALOG_TABLES.setdefault(scope.node.root, [])
    entries.extend((database, name, scope.node.path) for name in names)


class TableSource(NamedTuple):
    """Where a pipeline's catalog table name comes from, as the user wrote it (errors)."""

    prop: str
    value: Any
    fix: str = "give each pipeline its own table names (or its own database)"

    @classmethod
    def written(cls, tables: Tables) -> TableSource:
        """The ``tables`` prop, shown as written in code (``Tables.mapping({...})``)."""
        return cls("tables", _Shown(repr(tables)))


def check_catalog_tables_are_free(
    problems: Problems, scope: Construct, database: Any, names: Mapping[str, TableSource]
) -> None:
    """Two pipelines keeping one table would each replace the other's schema and
    partitions. ``names``: table name -> the prop that named it, as written; only the names
    known at synth are compared."""
    if database is None:
        return  # the pipeline's own new database: nobody else's tables are there
    for other_database, other_name, path in _CATALOG_TABLES.get(scope.node.root, []):
        if other_name in names and _same_database(database, other_database):
            source = names[other_name]
            problems.add(
                source.prop,
                source.value,
                f"the pipeline at '{path}' already keeps the table {other_name!r} in this "
                f"catalog_database: {source.fix}",
            )


def _same_database(a: Any, b: Any) -> bool:
    if a is b:
        return True
    names = (getattr(a, "database_name", None), getattr(b, "database_name", None))
    return all(isinstance(n, str) and not is_unresolved(n) for n in names) and names[0] == names[1]

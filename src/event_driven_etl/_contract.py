"""The pipeline's contract values, defined once: the constructs and the runtime import them.

Pyspark-free and CDK-free on purpose: the built-in Glue job imports this module at run time
(shipped beside its stages), and the constructs import it at synth. A value that both sides
must agree on (a key prefix the job writes and the workflow reads, an argument the workflow
passes and the job parses) lives here and nowhere else.

The trigger Lambda's asset holds only ``runtime/trigger/``, so the handler cannot import
this module: ``TriggerFunction`` passes it the values it needs in the function's
environment (``MANIFEST_PREFIX``, ``INLINE_LIMIT_BYTES``).

tests/unit/test_contract.py fails when one of these values is written as a literal anywhere
else (each string that looks like a prefix, a file suffix or an argument name, each number).
"""

from __future__ import annotations

# ------------------------------------------------------------------ keys and prefixes

MANIFEST_PREFIX = "manifests/"
"""Key prefix (in the output bucket) of the batch manifests the trigger writes and the job reads."""

BACKFILL_MANIFEST_DIR = "backfill/"
"""Under :data:`MANIFEST_PREFIX`: a backfill batch's manifest (one JSON list of URIs),
``<child execution name>.json``."""

DEFAULT_OUTPUT_PREFIX = "processed/"
"""Key prefix (in the output bucket) of the table the built-in job writes."""

DEFAULT_QUARANTINE_PREFIX = "quarantine/"
"""Key prefix (in the output bucket) that objects the built-in job quarantines go under."""

RUNS_DIR = "_runs"
"""Under the output prefix: the built-in job's report of each run (``<batch_id>.json``)."""

RUN_REPORTS_DIR = f"{RUNS_DIR}/"

BATCH_LOCKS_DIR = f"{RUNS_DIR}/_locks"
"""Under the output prefix: one lock object per batch (``<batch_id>.json``), held by the run
changing that batch's files (a retraction of a reprocessed object's rows, a re-run's publish),
with the rewrite it has under way. Not table data: under ``_runs``, beside the reports."""

BATCH_RUNS_DIR = f"{RUNS_DIR}/_active"
"""Under the output prefix: one lease per batch (``<batch_id>.json``) naming the Glue run of
that batch now going, so two runs of one batch never overlap (a retried StartJobRun whose
first answer was lost, a duplicate run of the same input): the second waits for the first."""

DEFAULT_RUN_REPORTS_PREFIX = f"{DEFAULT_OUTPUT_PREFIX}{RUN_REPORTS_DIR}"
"""Key prefix of the run reports of a job that writes under :data:`DEFAULT_OUTPUT_PREFIX`."""

OBJECT_MARKS_DIR = "_objects"
"""Under the output prefix: one mark per landed object (``<sha256 of its URI>.json``: its
version and the batch that holds its rows), so a backfill skips what already landed and a
reprocess knows which earlier rows it replaces."""

BACKFILL_RESULTS_DIR = "_backfills/"
"""Under the output prefix: the backfill's Map Run results (Step Functions' ResultWriter)."""

RUN_SUMMARY_SUFFIX = ".summary.json"
"""A run's short summary beside its report, the one the workflow reads:
``<output prefix>_runs/<batch_id>.summary.json`` (Step Functions payloads are small)."""

# ------------------------------------------------------------------ the run summary

SUMMARY_OUTCOME_FIELDS = ("rows", "landed", "skipped", "quarantined", "quality")
"""Fields of the run summary the workflow copies into the notification's outcome."""

SUMMARY_CAUSE_FIELD = "cause"
"""Field of the run summary that names why a run failed (its first line: the refused object)."""

# ------------------------------------------------------------------ the job's arguments

OBJECTS_ARGUMENT = "--objects"
"""A JSON list of the ``s3://`` URIs of the objects of one run (the workflow passes it)."""

MANIFEST_ARGUMENT = "--manifest"
"""The ``s3://`` URI of a JSON-lines manifest of a large batch (the workflow passes it)."""

BATCH_ID_ARGUMENT = "--batch_id"
"""The input's identity, the execution's name (the workflow passes it); a run that carries it
was started, and is notified, by the workflow."""

REPROCESS_ARGUMENT = "--reprocess"
"""``true`` or ``false``: whether objects that already landed (same version) land again,
replacing their earlier rows (a backfill passes it; live runs pass ``false``)."""

REPROCESS_VALUES = ("true", "false")

OUTPUT_PATH_ARGUMENT = "--output_path"
BAD_RECORDS_ARGUMENT = "--bad_records"
QUARANTINE_PATH_ARGUMENT = "--quarantine_path"
CATALOG_DATABASE_ARGUMENT = "--catalog_database"
CATALOG_TABLE_ARGUMENT = "--catalog_table"
CATALOG_REGION_ARGUMENT = "--catalog_region"
OUTPUT_KMS_KEY_ARGUMENT = "--output_kms_key_arn"
"""The ARN of the key the job's output is encrypted with (``output_encryption_key``), when
there is one: the object marks, which the job puts with boto3 rather than through Hadoop
(and so without the security configuration), are put with SSE-KMS under it."""
JOB_TIMEOUT_ARGUMENT = "--job_timeout_minutes"
"""The Glue job's own timeout, in minutes: the longest one run of a batch can hold an object's
claim, after which another batch may take the claim over (the claims' lease)."""
TABLES_ARGUMENT = "--tables"
"""The table routing rule (JSON, see :data:`TABLE_RULES`) of a pipeline with several tables;
absent with ``Tables.single()``: one table at ``--output_path``, as before."""
QUALITY_RULES_ARGUMENT = "--quality_rules"
"""A JSON object: table name -> DQDL ruleset; the key ``"*"`` applies to every table."""
QUALITY_EVERY_TABLE = "*"
"""The ``--quality_rules`` key (and ``quality_rules`` mapping key) for every table."""

# ------------------------------------------------------------------ quality metrics

QUALITY_METRICS_NAMESPACE = "EventDrivenEtl/DataQuality"
"""CloudWatch namespace of the built-in job's quality metrics (its role may publish here)."""
QUALITY_RULES_PASSED_METRIC = "RulesPassed"
QUALITY_RULES_FAILED_METRIC = "RulesFailed"
"""Per run, the rules that passed / failed; dimension ``JobName`` (the alarm's metric)."""
QUALITY_RULE_PASSED_METRIC = "RulePassed"
QUALITY_RULE_FAILED_METRIC = "RuleFailed"
"""Per rule and run, 1 or 0; dimensions ``JobName``, ``Table`` and ``Rule`` (its DQDL)."""
QUALITY_JOB_DIMENSION = "JobName"
QUALITY_TABLE_DIMENSION = "Table"
QUALITY_RULE_DIMENSION = "Rule"
TABLE_FORMAT_ARGUMENT = "--table_format"
"""How the built-in job writes the table: one of :data:`TABLE_FORMATS`."""

RESERVED_ARGUMENTS = frozenset(
    {
        OBJECTS_ARGUMENT,
        MANIFEST_ARGUMENT,
        OUTPUT_PATH_ARGUMENT,
        BATCH_ID_ARGUMENT,
        BAD_RECORDS_ARGUMENT,
        QUARANTINE_PATH_ARGUMENT,
        CATALOG_DATABASE_ARGUMENT,
        CATALOG_TABLE_ARGUMENT,
        CATALOG_REGION_ARGUMENT,
        TABLES_ARGUMENT,
        QUALITY_RULES_ARGUMENT,
        TABLE_FORMAT_ARGUMENT,
        REPROCESS_ARGUMENT,
        OUTPUT_KMS_KEY_ARGUMENT,
        JOB_TIMEOUT_ARGUMENT,
    }
)
"""Job arguments the pipeline sets itself; ``extra_arguments`` may not override them."""

BAD_RECORDS_MODES = ("fail", "quarantine")
"""What the built-in job does with an object it cannot land."""

# ------------------------------------------------------------------ table routing

TABLE_RULE_BY_FOLDER = "by_folder"
"""Routing rule: an object's table is the first folder of its key under the key prefix."""

TABLE_RULE_MAPPING = "mapping"
"""Routing rule: an object's table is the one of the longest key prefix it starts with."""

TABLE_RULES = (TABLE_RULE_BY_FOLDER, TABLE_RULE_MAPPING)
"""The ``rule`` of the ``--tables`` JSON: ``{"rule": ..., "key_prefix": "...", "routes":
{"<prefix under key_prefix>": "<table>"}}`` (``routes`` with ``mapping`` only)."""

SUMMARY_TABLES_FIELD = "tables"
"""Field of the run summary (and the notification) of a pipeline with several tables:
``{"<table>": {"rows": n, "landed": n}}``."""
TABLE_FORMATS = ("parquet", "iceberg")
"""The table formats the built-in job writes (``TableFormat``'s values)."""

ICEBERG_CATALOG = "glue_catalog"
"""The Spark catalog name Glue's Iceberg configuration and the built-in job use for the
Glue Data Catalog (``spark.sql.catalog.glue_catalog``, as AWS documents it)."""

ICEBERG_SNAPSHOT_BATCH_ID = "batch_id"
"""Snapshot summary property of an Iceberg commit that names the batch it landed."""

# ------------------------------------------------------------------ Iceberg table maintenance

MAINTENANCE_COMPACT_BEFORE_ARGUMENT = "--compact_before_seconds"
"""The maintenance job compacts only the rows of batches ingested more than this many seconds
ago (absent: no compaction): no re-run of those batches can come any more."""
MAINTENANCE_SNAPSHOT_RETENTION_ARGUMENT = "--snapshot_retention_seconds"
"""The maintenance job expires the snapshots older than this many seconds (the current one
always stays)."""
MAINTENANCE_ORPHANS_OLDER_THAN_ARGUMENT = "--orphans_older_than_seconds"
"""The maintenance job deletes files under the table's ``data/`` and ``metadata/`` that no
snapshot references and that are older than this many seconds (absent: none deleted)."""
ICEBERG_MAINTAINED_DIRS = ("data", "metadata")
"""The folders of an Iceberg table (under its location) the maintenance job may clean: never
the run reports, object marks or staging beside them under the output prefix."""
STEP_FUNCTIONS_REDRIVE_WINDOW_SECONDS = 14 * 24 * 3600
"""Step Functions redrives an execution up to 14 days after it stopped
(https://docs.aws.amazon.com/step-functions/latest/dg/redrive-executions.html)."""

# ------------------------------------------------------------------ limits

BACKFILL_BATCH_BYTES = 200_000
"""Most bytes of one backfill batch's items: inside Step Functions' 256 KiB payload with room
for the batch's own fields (its objects go to the job as a manifest)."""

INLINE_LIMIT_BYTES = 16_000
"""Largest inline object list (JSON bytes) before the trigger hands a batch to the job as a
manifest. A failed Glue run's cause is its JobRun JSON, which holds ``--objects``; Step
Functions cuts a cause at 32,768 characters, and a cut JSON cannot be read. 16,000 bytes
(escaped in the JobRun JSON, beside Glue's own fields and error message) keeps it whole."""

# ------------------------------------------------------------------ construct side
# (values only the constructs use but that must agree across several of them)

EVENTBRIDGE_MAX_RETRY_ATTEMPTS = 185
"""EventBridge's most retries of a target (its default too): a rule delivers for as long as
:data:`EVENTBRIDGE_MAX_EVENT_AGE_SECONDS` allows before the event goes to the DLQ."""

EVENTBRIDGE_MAX_EVENT_AGE_SECONDS = 24 * 3600
"""EventBridge's longest event age for a target's retries (24 hours, its default too)."""

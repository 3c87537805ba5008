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

SUMMARY_OUTCOME_FIELDS = ("rows", "landed", "skipped", "quarantined")
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
        REPROCESS_ARGUMENT,
    }
)
"""Job arguments the pipeline sets itself; ``extra_arguments`` may not override them."""

BAD_RECORDS_MODES = ("fail", "quarantine")
"""What the built-in job does with an object it cannot land."""

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

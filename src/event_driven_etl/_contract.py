"""The pipeline's contract values, defined once: the constructs and the runtime import them.

Pyspark-free and CDK-free on purpose: the built-in Glue job imports this module at run time
(shipped beside its stages), and the constructs import it at synth. A value that both sides
must agree on (a key prefix the job writes and the workflow reads, an argument the workflow
passes and the job parses) lives here and nowhere else.
"""

from __future__ import annotations

# ------------------------------------------------------------------ keys and prefixes

MANIFEST_PREFIX = "manifests/"
"""Key prefix (in the output bucket) of the batch manifests the trigger writes and the job reads."""

DEFAULT_OUTPUT_PREFIX = "processed/"
"""Key prefix (in the output bucket) of the table the built-in job writes."""

DEFAULT_QUARANTINE_PREFIX = "quarantine/"
"""Key prefix (in the output bucket) that objects the built-in job quarantines go under."""

RUNS_DIR = "_runs"
"""Under the output prefix: the built-in job's report of each run (``<batch_id>.json``)."""

RUN_REPORTS_DIR = f"{RUNS_DIR}/"

# ------------------------------------------------------------------ the job's arguments

BAD_RECORDS_MODES = ("fail", "quarantine")
"""What the built-in job does with an object it cannot land."""

RESERVED_ARGUMENTS = frozenset(
    {
        "--objects",
        "--manifest",
        "--output_path",
        "--batch_id",
        "--bad_records",
        "--quarantine_path",
        "--catalog_database",
        "--catalog_table",
        "--catalog_region",
    }
)
"""Job arguments the pipeline sets itself; ``extra_arguments`` may not override them."""

# ------------------------------------------------------------------ construct side
# (values only the constructs use but that must agree across several of them)

# ------------------------------------------------------------------ runtime side
# (values the built-in job defines for its own output layout)

"""One run over several tables: the objects grouped by table (``tables.TableRule``), the
stages run once per table, and one run report over them all.

Each table is a table of its own: its prefix ``<output_path><table>/`` (data, schema file,
staging and its own run report, so a re-run of the batch replaces that table's earlier output
and nothing else), its own catalog table named after it, its own partitions. One table's
refused object does not keep the others from landing: every table runs, then the run fails
naming every refused object. The run's report ``<output_path>_runs/<batch_id>.json`` (the one
the workflow reads) holds every object's outcome, the totals, and ``tables``: each table's
``rows`` and ``landed`` objects. Objects without a table are skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Callable

from pyspark.sql import SparkSession

from .arguments import JobArgs
from .batch_lock import LockLostError
from .errors import JobInputError
from .landed import ClaimConflictError, MarkLostError, ObjectHeldError
from .names import first_line
from .outcomes import Outcome
from .report import RunReport, conclude, start_report
from .storage import Storage
from .tables import TableRule

Stages = Callable[[SparkSession, JobArgs], RunReport]
"""One table's run (``job._stages``): raises ``JobInputError`` after landing the good objects."""


_CLAIM_ERRORS = (ObjectHeldError, MarkLostError, ClaimConflictError, LockLostError)
"""A table's run failing on its objects' claims or a batch's lock: that table fails."""


def run_tables(spark: SparkSession, job: JobArgs, rule: TableRule, stages: Stages) -> RunReport:
    """Run ``stages`` once per table of ``job``'s objects; report them together.

    Raises :class:`JobInputError` (after every table ran and the report is written) when an
    object was refused or a table's run failed on its input or on its objects' claims
    (:data:`_CLAIM_ERRORS`)."""
    storage = Storage(spark)
    overall = start_report(storage, job)
    by_table, unrouted = rule.group(job.uris)
    # Every table's rows carry the run's one timestamp and partition (a re-run keeps them).
    moment = datetime.fromisoformat(overall.ingested_at)
    reports: dict[str, RunReport] = {}
    failures: dict[str, str] = {}
    for table, uris in by_table.items():
        try:
            reports[table] = stages(spark, table_job(job, table, uris, moment))
        except JobInputError as error:
            if isinstance(error.report, RunReport):
                reports[table] = error.report
            else:  # the table's run stopped before its report: none of its objects landed
                failures[table] = first_line(str(error))
        except _CLAIM_ERRORS as error:
            # One table's objects held by another batch (or its marks or a batch's lock lost,
            # or its claims in conflict) fail that table, named in the run's report and
            # FAILED notification; the other tables still run.
            failures[table] = f"{type(error).__name__}: {first_line(str(error))}"
    return _finish(
        storage,
        job,
        overall,
        by_table=by_table,
        unrouted=unrouted,
        reports=reports,
        failures=failures,
    )


def table_job(job: JobArgs, table: str, uris: Sequence[str], moment: datetime) -> JobArgs:
    """``job`` narrowed to one table: its objects, its prefix, its catalog table."""
    catalog = replace(job.catalog, table=table) if job.catalog is not None else None
    return replace(
        job,
        uris=tuple(uris),
        output_path=f"{job.output}{table}/",
        catalog=catalog,
        ingested_at=moment,
        tables=None,
        table=table,
    )


def _finish(
    storage: Storage,
    job: JobArgs,
    overall: RunReport,
    *,
    by_table: Mapping[str, Sequence[str]],
    unrouted: Mapping[str, str],
    reports: Mapping[str, RunReport],
    failures: Mapping[str, str],
) -> RunReport:
    """Every object's outcome in the order the run was given them, each table's counts, the
    run's status and cause; written as the run's report (raises when something was refused)."""
    outcomes = {uri: Outcome(uri, "skipped", reason) for uri, reason in unrouted.items()}
    for report in reports.values():
        outcomes.update({outcome.object: outcome for outcome in report.outcomes})
    for table, cause in failures.items():
        for uri in by_table[table]:
            outcomes[uri] = Outcome(uri, "refused", f"table {table!r} failed: {cause}")
    overall.outcomes = [outcomes[uri] for uri in job.uris]
    overall.files = [name for report in reports.values() for name in report.files]
    # Each table's quality results, in table order (every entry names its table).
    overall.quality = [entry for _, report in sorted(reports.items()) for entry in report.quality]
    overall.tables = {
        table: {"rows": report.rows, "landed": len(report.by_status("landed"))}
        for table, report in sorted(reports.items())
    }
    overall.tables.update({table: {"rows": 0, "landed": 0} for table in failures})
    # A table a quality rule held back fails the run even with no object left to name.
    blocked = next((r.cause for _, r in sorted(reports.items()) if r.status == "FAILED"), "")
    return conclude(storage, job, overall, blocked=blocked)

"""The run: the stages in pipeline order over one outcome ledger, and the job's entry point.

probe -> plan -> read -> profile -> type and settle schema (with the write inside) ->
publish -> report. Each stage returns a typed value; the ledger records each stage's
verdicts, and whatever no stage refused or skipped lands.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Optional

from pyspark.sql import SparkSession

from .arguments import CatalogTable, JobArgs, job_input, parse_args
from .landed import already_landed, mark_landed, read_marks, retract_earlier_rows
from .outcomes import Ledger, Verdicts
from .plan import plan_reads
from .probe import probe_objects
from .profile import profile_groups
from .read import Group, read_group
from .report import RunReport, finish_report, start_report
from .schema import CatalogSchemaStore, FileSchemaStore, SchemaStore, settle_schema
from .session import configure, session_settings
from .storage import Storage
from .write import StagedWrite, publish


def run(
    spark: SparkSession,
    uris: Sequence[str],
    output_path: str,
    *,
    batch_id: str,
    bad_records: str = "fail",
    quarantine_path: str = "",
    ingested_at: Optional[datetime] = None,
    catalog: Optional[CatalogTable] = None,
) -> RunReport:
    """Land ``uris`` in the table at ``output_path``; return what happened to each object.

    Raises :class:`~.errors.JobInputError` (after landing the good objects and writing the
    report) when ``bad_records`` is ``fail`` and an object was refused.
    """
    job = JobArgs(
        uris=tuple(uris),
        output_path=output_path,
        batch_id=batch_id,
        bad_records=bad_records,
        quarantine_path=quarantine_path,
        catalog=catalog,
        ingested_at=ingested_at,
    )
    return run_job(spark, job)


def run_job(spark: SparkSession, job: JobArgs) -> RunReport:
    """The run of ``job`` (see :func:`run`), with the session settings it relies on."""
    job.check()
    with session_settings(spark):
        return _stages(spark, job)


def _stages(spark: SparkSession, job: JobArgs) -> RunReport:
    """Report STARTED, probe, plan, read, profile, settle the schema (writing the rows),
    publish, report: the ledger records what each stage refused or skipped."""
    storage = Storage(spark)
    report = start_report(storage, job)
    ledger = Ledger()
    marks = read_marks(storage, job)
    done = already_landed(storage, job, marks)
    ledger.record(Verdicts(skipped=done))
    plan = plan_reads(probe_objects(spark, [u for u in job.uris if u not in done]))
    ledger.record(plan.verdicts)
    groups = [read_group(spark, list(members)) for members in plan.groups]
    try:
        ledger.record(profile_groups(spark, groups))
        write = StagedWrite(
            spark,
            storage,
            job=job,
            groups=groups,
            ledger=ledger,
            sizes=plan.sizes,
            ingested_at=report.ingested_at,
        )
        store = _schema_store(storage, job)
        settled = settle_schema(store, groups, ledger.refused, write)
        ledger.record(Verdicts(refused=settled.refused))
        report.files = publish(storage, job, write.files, report.ingestion_date)
        if report.files and isinstance(store, CatalogSchemaStore):
            store.register_partition(report.ingestion_date)
    finally:
        for group in groups:
            group.frame.unpersist()
    landed = [u for u in job.uris if ledger.is_open(u)]
    if report.files:
        retract_earlier_rows(spark, storage, job, {u: marks[u] for u in landed if u in marks})
    mark_landed(storage, job, landed, report.ingestion_date)
    return finish_report(storage, job, report, ledger, _rows(groups))


def _schema_store(storage: Storage, job: JobArgs) -> SchemaStore:
    if job.catalog is not None:
        return CatalogSchemaStore(job.catalog, job.output)
    return FileSchemaStore(storage, job.output)


def _rows(groups: Sequence[Group]) -> dict[str, int]:
    """Object URI -> the rows Spark read of it."""
    return {uri: stats.rows for group in groups for uri, stats in group.stats.items()}


def main(argv: Optional[Sequence[str]] = None) -> RunReport:
    """Entry point on Glue (and under the offline harness): parse arguments, run, report."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.appName("event-driven-etl").getOrCreate()
    configure(spark)
    uris, arguments = job_input(spark, args)
    job = JobArgs.from_args(arguments, uris)
    report = run_job(spark, job)
    summary = report.summary()
    print(json.dumps({"message": "etl finished", **{k: summary[k] for k in ("rows", "landed")}}))
    return report

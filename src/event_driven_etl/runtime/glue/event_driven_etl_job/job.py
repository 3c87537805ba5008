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
from .batch_lock import finish_interrupted
from .batch_run import one_run_of_the_batch
from .iceberg import IcebergSchemaStore, publish_iceberg, withdraw_iceberg_rows
from .landed import (
    Claims,
    MarkLostError,
    claim_lease,
    claim_objects,
    hold_batch_files,
    mark_landed,
    retract_earlier_rows,
    table_marks,
    withdraw_batch_files,
)
from .outcomes import Ledger, Verdicts
from .plan import plan_reads
from .probe import probe_objects
from .profile import profile_groups
from .quality_gate import (
    QualityBlockedError,
    hold_batch,
    landed_rows,
    publish_quality_metrics,
    quality_gate,
)
from .read import Group, read_group
from .report import RunReport, finish_report, start_report
from .schema import CatalogSchemaStore, FileSchemaStore, SchemaStore, settle_schema
from .session import configure, session_settings
from .storage import Storage
from .table_runs import run_tables
from .tables import TableRule
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
    tables: Optional[TableRule] = None,
    quality_rules: str = "",
) -> RunReport:
    """Land ``uris`` in the table at ``output_path``; return what happened to each object.

    Raises :class:`~.errors.JobInputError` (after landing the good objects and writing the
    report) when ``bad_records`` is ``fail`` and an object was refused, or when a quality
    rule (``quality_rules``: JSON, table name or ``"*"`` -> DQDL) held the batch back.
    """
    job = JobArgs(
        uris=tuple(uris),
        output_path=output_path,
        batch_id=batch_id,
        bad_records=bad_records,
        quarantine_path=quarantine_path,
        catalog=catalog,
        ingested_at=ingested_at,
        tables=tables,
        quality_rules=quality_rules,
    )
    return run_job(spark, job)


def run_job(spark: SparkSession, job: JobArgs) -> RunReport:
    """The run of ``job`` (see :func:`run`), with the session settings it relies on, as
    the one run of its batch going (``batch_run``: another is waited for)."""
    job.check()
    marks = table_marks(Storage(spark), job)
    with session_settings(spark), one_run_of_the_batch(marks, job, lease=claim_lease(job)):
        if job.tables is not None:
            return run_tables(spark, job, job.tables, _stages)
        return _stages(spark, job)


def _stages(spark: SparkSession, job: JobArgs) -> RunReport:
    """Report STARTED, probe, plan, read, profile, settle the schema (writing the rows),
    publish, report: the ledger records what each stage refused or skipped."""
    storage = Storage(spark)
    report = start_report(storage, job)
    ledger = Ledger()
    claims = claim_objects(
        storage,
        job,
        report.ingestion_date,
        withdraw=lambda: _withdraw_batch(spark, storage, job, report),
    )
    done = claims.skipped
    ledger.record(Verdicts(skipped=done))
    plan = plan_reads(probe_objects(spark, [u for u in job.uris if u not in done]))
    ledger.record(plan.verdicts)
    groups = [read_group(spark, list(members)) for members in plan.groups]
    gate = quality_gate(job)
    published = False
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
            gate=gate,
        )
        store = _schema_store(spark, storage, job)
        try:
            settled = settle_schema(store, groups, ledger.refused, write)
        except QualityBlockedError as blocked:  # the table's batch is held back, uncommitted
            storage.delete(job.staging)
            report.held = hold_batch(job, ledger, str(blocked))
        else:
            ledger.record(Verdicts(refused=settled.refused))
            replaced = [u for u in claims.earlier if ledger.is_open(u)]
            report.files = _publish(spark, storage, job, write.files, report, replaced=replaced)
            published = True
            if report.files and isinstance(store, CatalogSchemaStore):
                store.register_partition(report.ingestion_date)
    finally:
        for group in groups:
            group.frame.unpersist()
    landed = [u for u in job.uris if ledger.is_open(u)]
    failed = _keep_marks_or_lost(
        spark,
        storage,
        job,
        report,
        ledger=ledger,
        landed=landed,
        claims=claims,
        published=published,
    )
    publish_quality_metrics(job, gate)
    rows = landed_rows(_rows(groups), gate)
    return finish_report(storage, job, report, ledger, rows, gate=gate, failed=failed)


_MARK_LOST = (
    "its rows were published, but another batch took over this run's claim on it (its "
    "lease lapsed) and holds its mark: that batch lands it and retracts these rows"
)


def _keep_marks_or_lost(
    spark: SparkSession,
    storage: Storage,
    job: JobArgs,
    report: RunReport,
    *,
    ledger: Ledger,
    landed: list[str],
    claims: Claims,
    published: bool,
) -> str:
    """:func:`_keep_marks`; when an object's mark was lost (:class:`MarkLostError`), it is
    skipped (another batch holds it) and the run fails with the error as its cause (its
    report still says which objects landed, and their rows): the failure, else empty."""
    try:
        _keep_marks(spark, storage, job, report, landed=landed, claims=claims, published=published)
    except MarkLostError as error:
        ledger.record(Verdicts(skipped=dict.fromkeys(error.lost, _MARK_LOST)))
        return f"{type(error).__name__}: {error}"
    return ""


def _keep_marks(
    spark: SparkSession,
    storage: Storage,
    job: JobArgs,
    report: RunReport,
    *,
    landed: list[str],
    claims: Claims,
    published: bool,
) -> None:
    """Mark the objects that landed and release the other claims; a reprocessed object's
    earlier rows are retracted (Parquet; an Iceberg table's are, in the batch's own commit:
    ``_publish``). A run that published nothing (a quality rule held its batch back) first
    removes what an earlier attempt of its batch published (:func:`_withdraw_batch`): its
    releases and its report say that none of its objects is in the table."""
    earlier = claims.earlier
    if job.iceberg:
        if not published:  # its commit never ran (held back): an earlier attempt's may have
            _withdraw_batch(spark, storage, job, report)
    elif report.files:
        retract_earlier_rows(spark, storage, job, {u: earlier[u] for u in landed if u in earlier})
    else:  # held back, or nothing left to publish: its earlier files go too
        _withdraw_batch(spark, storage, job, report)
    mark_landed(storage, job, claims, landed, report.ingestion_date)


def _withdraw_batch(spark: SparkSession, storage: Storage, job: JobArgs, report: RunReport) -> None:
    """Remove what an earlier attempt of this batch published: its Parquet files, or its rows
    of an Iceberg table (one delete commit). A run that publishes nothing leaves none."""
    if job.iceberg:
        withdraw_iceberg_rows(spark, job, report.ingested_at)
    else:
        withdraw_batch_files(storage, job, report.ingestion_date)


def _publish(
    spark: SparkSession,
    storage: Storage,
    job: JobArgs,
    staged: list[str],
    report: RunReport,
    *,
    replaced: list[str],
) -> list[str]:
    """Publish the staged files: one Iceberg commit replacing the batch's earlier rows (and,
    reprocessing, the ``replaced`` objects' rows of earlier batches), or the batch's Parquet
    files in its partition, holding the batch's lock (a later run may be retracting a
    reprocessed object's rows from its earlier files: ``batch_lock``)."""
    if job.iceberg:
        files = publish_iceberg(spark, job, staged, report.ingested_at, replaced=replaced)
        storage.delete(job.staging)
        return files
    with hold_batch_files(storage, job, job.batch_id) as held:  # a retraction may be under way
        finish_interrupted(storage, held, f"{job.output}ingestion_date={report.ingestion_date}/")
        return publish(storage, job, staged, report.ingestion_date)


def _schema_store(spark: SparkSession, storage: Storage, job: JobArgs) -> SchemaStore:
    if job.catalog is not None and job.iceberg:
        return IcebergSchemaStore(spark, job.catalog, job.output)
    if job.catalog is not None:
        # A routed table is named by data (a folder): never take over a table stored elsewhere.
        return CatalogSchemaStore(job.catalog, job.output, only_at_location=job.table is not None)
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

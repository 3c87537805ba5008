"""Iceberg table maintenance (``TableMaintenance``): the scheduled Glue job's run. It calls
Iceberg's Spark procedures on the pipeline's table through the same ``glue_catalog`` the
built-in job writes with (https://iceberg.apache.org/docs/1.10.0/spark-procedures/):

1. ``rewrite_data_files`` (bin-pack) with ``where => _ingested_at < <cutoff>``: only rows of
   batches ingested before ``--compact_before_seconds`` ago. A re-run of a batch publishes
   with an overwrite whose filter is the batch's ``_ingested_at`` (``iceberg.py``), and
   Iceberg refuses to delete part of a data file; each batch's own files hold one timestamp,
   so they are selected or left whole, and a compacted file holds only batches that no
   re-run (retry, redrive) can reach any more.
2. ``expire_snapshots`` older than ``--snapshot_retention_seconds`` (the current snapshot
   always stays), deleting the files only they referenced (compacted or replaced ones).
3. orphan file removal (``remove_orphan_files``' action, ``deleteOrphanFiles``) older than
   ``--orphans_older_than_seconds``, in the table's ``data/`` and ``metadata/`` folders only:
   the run reports, object marks and staging live beside them under the output prefix and
   are not Iceberg's to judge. Prefix listing goes through the table's ``S3FileIO``, as
   every other call of the run.

``main(argv, now=...)``: ``now`` is the moment the cutoffs are taken from (default: the
clock); the offline harness passes its virtual clock's.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from pyspark.sql import SparkSession

from .arguments import CatalogTable, parse_args
from .iceberg import table_name
from .session import session_settings
from .shared import contract


def _before(args: Mapping[str, str], argument: str, moment: datetime) -> Optional[datetime]:
    """``moment`` less a ``--name seconds`` argument; None when it is absent or empty (that
    step does not run)."""
    value = args.get(argument.removeprefix("--"), "")
    return moment - timedelta(seconds=int(value)) if value else None


def _timestamp(moment: datetime) -> str:
    """A Spark SQL ``TIMESTAMP`` literal of a UTC moment (the session's time zone is UTC)."""
    return f"TIMESTAMP '{moment.strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def _identifier(catalog: CatalogTable) -> str:
    """The table as the procedures' ``table`` argument takes it (``db.table``)."""
    return f"`{catalog.database}`.`{catalog.table}`"


def maintain(
    spark: SparkSession, args: Mapping[str, str], *, now: Optional[datetime] = None
) -> dict[str, Any]:
    """Compact, expire and clean the table of ``args`` (see the module); return what each
    step did (the procedures' outputs), or ``{"table": "absent"}`` before the first batch."""
    catalog = CatalogTable.from_args(args)
    location = args.get(contract.OUTPUT_PATH_ARGUMENT.removeprefix("--"), "")
    if catalog is None or not location:
        needs = f"the catalog table and {contract.OUTPUT_PATH_ARGUMENT}"
        raise ValueError(f"the maintenance job needs {needs}")
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    name, table = table_name(catalog), _identifier(catalog)
    system = f"{contract.ICEBERG_CATALOG}.system"
    if not spark.catalog.tableExists(name):
        return {"table": "absent"}  # no batch has landed yet: nothing to maintain
    done: dict[str, Any] = {}
    with session_settings(spark):
        compact_before = _before(args, contract.MAINTENANCE_COMPACT_BEFORE_ARGUMENT, moment)
        if compact_before is not None:
            cutoff = _timestamp(compact_before)
            done["rewrite_data_files"] = _call(
                spark,
                f"CALL {system}.rewrite_data_files(table => '{table}',"
                f' where => "_ingested_at < {cutoff}",'
                " options => map('min-input-files', '2', 'partial-progress.enabled', 'false'))",
            )
        expire_before = _before(args, contract.MAINTENANCE_SNAPSHOT_RETENTION_ARGUMENT, moment)
        if expire_before is not None:
            older = _timestamp(expire_before)
            done["expire_snapshots"] = _call(
                spark,
                f"CALL {system}.expire_snapshots(table => '{table}', older_than => {older},"
                " retain_last => 1)",
            )
        orphans_before = _before(args, contract.MAINTENANCE_ORPHANS_OLDER_THAN_ARGUMENT, moment)
        if orphans_before is not None:
            root = location.rstrip("/")
            done["remove_orphan_files"] = [
                _remove_orphans(spark, name, f"{root}/{folder}", orphans_before)
                for folder in contract.ICEBERG_MAINTAINED_DIRS
            ]
    return done


def _call(spark: SparkSession, sql: str) -> list[dict[str, Any]]:
    return [row.asDict(recursive=True) for row in spark.sql(sql).collect()]


def _remove_orphans(spark: SparkSession, name: str, location: str, older: datetime) -> list[str]:
    """Iceberg's ``deleteOrphanFiles`` action (what ``remove_orphan_files`` runs) in
    ``location``, for files older than ``older`` (UTC); returns the files it deleted.

    The action, not the ``CALL``: the procedure also refuses an ``older_than`` within 24 hours
    of the JVM's wall clock, a floor ``TableMaintenance`` enforces at synth instead (at least
    1 day), because offline the run's "now" is the harness's virtual clock, days ahead of
    the wall clock once a test advances it."""
    jvm, session = spark.sparkContext._jvm, spark._jsparkSession
    if jvm is None:  # pragma: no cover - a live session always has its JVM
        raise RuntimeError("the Spark session has no JVM")
    table = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(session, name)
    millis = int(older.replace(tzinfo=timezone.utc).timestamp() * 1000)
    result = (
        jvm.org.apache.iceberg.spark.actions.SparkActions.get(session)
        .deleteOrphanFiles(table)
        .olderThan(millis)
        .location(location)
        .usePrefixListing(True)
        .execute()
    )
    return sorted(str(path) for path in result.orphanFileLocations())


def main(argv: Optional[Sequence[str]] = None, *, now: Optional[datetime] = None) -> None:
    """Entry point on Glue (and under the offline harness): parse arguments, maintain."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.appName("event-driven-etl-maintenance").getOrCreate()
    done = maintain(spark, args, now=now)
    print(json.dumps({"message": "maintenance finished", **done}, default=str))

"""Iceberg output (``--table_format iceberg``): the table's schema is the Iceberg table's, kept
through Spark's ``glue_catalog`` (Iceberg's ``GlueCatalog`` over the Glue Data Catalog, with
``S3FileIO``, as Glue's ``--conf`` sets it up), and the staged rows are published in **one
commit** per batch.

Exactly once: the commit is an overwrite whose filter is the batch's ``_ingested_at`` (a
re-run keeps its first run's timestamp, see ``report.start_report``), so a retry, redrive or
duplicate run of the batch replaces its own earlier rows and nothing else, atomically: a
reader sees the snapshot before or after, never a partial or doubled batch. Each batch's data
files hold only its rows (one timestamp), so Iceberg drops them whole by their column bounds.
The snapshot summary records ``batch_id``. A reprocessing batch (``--reprocess true``)
commits once too, with a ``MERGE INTO`` that also retracts its objects' earlier rows from
other batches' files (see ``_merge_replacing``).

Schema evolution is Iceberg's, by column id: new columns are added, and a column of a table
made elsewhere as ``int``/``float`` is promoted to ``bigint``/``double`` (the job's types),
the promotions Iceberg allows, when a run first reads the table; every other change is
refused as for Parquet (``schema``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Callable, ClassVar, Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .arguments import CatalogTable, JobArgs
from .column_types import sql_text
from .names import quoted
from .schema import SchemaConflictError, TableSchema
from .shared import contract
from .storage import jvm

ICEBERG_METADATA_COLUMNS = {"_source_object": "string", "_ingested_at": "timestamp"}
"""The metadata columns of an Iceberg table (no ``ingestion_date``: the table is partitioned
by ``days(_ingested_at)``, hidden partitioning, so readers filter on the timestamp)."""

PROMOTIONS = {"int": "bigint", "float": "double"}
"""Type promotions Iceberg allows by column id, to the job's types
(https://iceberg.apache.org/spec/#schema-evolution)."""

TABLE_PROPERTIES = {
    "format-version": "2",
    # Concurrent runs commit at once: Iceberg's optimistic commit retries on the refreshed
    # table (https://iceberg.apache.org/docs/latest/configuration/#table-behavior-properties).
    "commit.retry.num-retries": "10",
    "commit.retry.min-wait-ms": "100",
    "commit.retry.max-wait-ms": "60000",
    "commit.retry.total-timeout-ms": "1800000",
}
"""Properties of the table the job creates."""

_CONFLICTS = ("CommitFailedException", "AlreadyExistsException", "already exists")
"""What another run's concurrent change of the schema looks like to this one."""


def table_name(catalog: CatalogTable) -> str:
    """The table in Spark's Glue catalog: ``glue_catalog.`db`.`table```."""
    return f"{contract.ICEBERG_CATALOG}.{quoted(catalog.database)}.{quoted(catalog.table)}"


class IcebergSchemaStore:
    """The table's schema is the Iceberg table's (see ``schema.SchemaStore``): created on the
    first run (partitioned by ``days(_ingested_at)``), then evolved by column id; the version
    is the columns read, and a change made meanwhile by another run is a conflict."""

    def __init__(self, spark: SparkSession, catalog: CatalogTable, location: str) -> None:
        self._spark, self._name, self._location = spark, table_name(catalog), location

    def current_columns(self) -> Optional[dict[str, str]]:
        """Every column and its type (Spark's name), or None when there is no table yet."""
        if not self._spark.catalog.tableExists(self._name):
            return None
        fields = self._spark.table(self._name).schema.fields
        return {f.name: f.dataType.simpleString() for f in fields}

    def load(self) -> tuple[TableSchema, Any]:
        columns = self.current_columns()
        if columns is None:
            return TableSchema(), None
        if any(t in PROMOTIONS for t in columns.values()):
            self._promote(columns)
            columns = self.current_columns() or {}
        data = {n: t for n, t in columns.items() if n not in ICEBERG_METADATA_COLUMNS}
        return TableSchema(data), columns

    def _promote(self, columns: dict[str, str]) -> None:
        """Promote the table's ``int``/``float`` columns to the job's ``bigint``/``double``
        first (by column id, no rewrite), so the rows this run writes fit them."""
        for name, type_name in columns.items():
            if type_name in PROMOTIONS:
                try:
                    self._spark.sql(
                        f"ALTER TABLE {self._name} ALTER COLUMN {quoted(name)}"
                        f" TYPE {PROMOTIONS[type_name]}"
                    )
                except Exception as error:  # another run promoted it first: read it again
                    if not any(conflict in str(error) for conflict in _CONFLICTS):
                        raise

    def commit(self, schema: TableSchema, version: Any) -> None:
        try:
            if version is None:
                self._create(schema)
            else:
                self._evolve(schema, version)
        except SchemaConflictError:
            raise
        except Exception as error:
            if any(conflict in str(error) for conflict in _CONFLICTS):
                raise SchemaConflictError(str(error).splitlines()[0]) from error
            raise

    def _create(self, schema: TableSchema) -> None:
        columns = {**schema.columns, **ICEBERG_METADATA_COLUMNS}
        listed = ", ".join(f"{quoted(n)} {t}" for n, t in columns.items())
        properties = ", ".join(f"'{k}' = '{v}'" for k, v in TABLE_PROPERTIES.items())
        self._spark.sql(
            f"CREATE TABLE {self._name} ({listed}) USING iceberg"
            " PARTITIONED BY (days(_ingested_at))"
            f" LOCATION '{self._location}' TBLPROPERTIES ({properties})"
        )

    def _evolve(self, schema: TableSchema, read: dict[str, str]) -> None:
        if self.current_columns() != read:
            raise SchemaConflictError("another run changed the table's schema")
        new = {n: t for n, t in schema.columns.items() if n not in read}
        if new:
            listed = ", ".join(f"{quoted(n)} {t}" for n, t in new.items())
            self._spark.sql(f"ALTER TABLE {self._name} ADD COLUMNS ({listed})")


def publish_iceberg(
    spark: SparkSession,
    job: JobArgs,
    staged: Sequence[str],
    ingested_at: str,
    *,
    replaced: Collection[str] = (),
) -> list[str]:
    """Replace this batch's earlier rows with the staged ones in one Iceberg commit (its
    snapshot summary names the batch); return the data files the commit added.

    When ``replaced`` names objects another batch landed (``--reprocess true``, or a new
    version of an object uploaded again under its key) the same commit also retracts their
    earlier rows, as the Parquet layout rewrites the earlier batch's files: see
    :func:`_merge_replacing`."""
    if job.catalog is None:  # JobArgs.check refuses Iceberg without a catalog table
        raise ValueError("an Iceberg table needs the catalog arguments")
    name = table_name(job.catalog)
    if not spark.catalog.tableExists(name):
        if not staged:
            return []  # nothing ever landed, so there is nothing to replace either
        # Rows whose columns have no values yet: the table starts with the metadata columns.
        IcebergSchemaStore(spark, job.catalog, job.output).commit(TableSchema(), None)
    table = spark.table(name)
    rows = _in_table_columns(spark.read.parquet(*staged) if staged else None, table)
    if job.reprocess or replaced:
        _merge_replacing(spark, name, job, rows, ingested_at=ingested_at, replaced=replaced)
        return added_files(spark, name, job.batch_id)
    moment = F.lit(ingested_at).cast("timestamp")
    try:
        (
            rows.writeTo(name)
            .option(f"snapshot-property.{contract.ICEBERG_SNAPSHOT_BATCH_ID}", job.batch_id)
            .overwrite(F.col("_ingested_at") == moment)
        )
    except Exception as error:
        # A reprocess's MERGE rewrote files this batch's rows share with others': dropping
        # whole files by the filter is refused, and the row-level commit does it instead.
        if _PARTIAL_FILE not in str(error):
            raise
        _merge_replacing(spark, name, job, rows, ingested_at=ingested_at, replaced=())
    return added_files(spark, name, job.batch_id)


def withdraw_iceberg_rows(spark: SparkSession, job: JobArgs, ingested_at: str) -> None:
    """Delete this batch's rows (its ``_ingested_at``) in one commit naming the batch: a run
    that publishes nothing (a quality rule held its batch back, or it waits for another
    batch holding one of its objects) leaves none of the rows an earlier attempt of its
    batch committed (a crash after the commit, then a retry), as a Parquet run deletes its
    batch's files (``landed.withdraw_batch_files``): its released marks and its report say
    that none of its objects is in the table. Rows a committed MERGE retracted from other
    batches stay retracted: the released marks name those batches, and the next batch
    holding the object lands it."""
    publish_iceberg(spark, job, [], ingested_at)


_PARTIAL_FILE = "Cannot delete file where some, but not all, rows match filter"
"""Iceberg's refusal of an overwrite by filter that would drop part of a data file."""


def _merge_replacing(
    spark: SparkSession,
    name: str,
    job: JobArgs,
    rows: DataFrame,
    *,
    ingested_at: str,
    replaced: Collection[str],
) -> None:
    """One ``MERGE INTO`` commit: insert ``rows``; delete every earlier row of ``replaced``
    objects and this batch's own earlier rows (its timestamp) of the run's objects.

    The source is the new rows plus one delete marker per object of the run (``_delete``;
    ``_all``: every earlier row of it, not only this batch's), so a marker matches a target
    row at most once and a new row never matches. Iceberg's MERGE removes rows from files
    that keep others (copy-on-write: the file is rewritten within the same commit), which
    an overwrite by filter refuses (https://iceberg.apache.org/docs/latest/spark-writes/
    #merge-into). SQL has no write options: the snapshot summary's ``batch_id`` is set with
    Iceberg's ``CommitMetadata.withCommitProperties`` around the statement."""
    markers = spark.createDataFrame(
        [(uri, uri in replaced) for uri in job.uris], "_source_object string, _all boolean"
    ).withColumn("_delete", F.lit(True))
    source = (
        rows.withColumn("_delete", F.lit(False))
        .withColumn("_all", F.lit(False))
        .unionByName(markers, allowMissingColumns=True)
    )
    view = "_replacing_" + re.sub(r"\W", "_", job.batch_id)
    source.createOrReplaceTempView(view)
    columns = ", ".join(quoted(c) for c in rows.columns)
    values = ", ".join(f"s.{quoted(c)}" for c in rows.columns)
    statement = (
        f"MERGE INTO {name} t USING {quoted(view)} s"
        " ON t._source_object = s._source_object AND s._delete"
        f" AND (s._all OR t._ingested_at = CAST({sql_text(ingested_at)} AS TIMESTAMP))"
        " WHEN MATCHED THEN DELETE"
        f" WHEN NOT MATCHED AND NOT s._delete THEN INSERT ({columns}) VALUES ({values})"
    )
    try:
        with_commit_properties(
            spark, {contract.ICEBERG_SNAPSHOT_BATCH_ID: job.batch_id}, lambda: spark.sql(statement)
        )
    finally:
        spark.catalog.dropTempView(view)


class _JavaCallable:
    """A Python function as a ``java.util.concurrent.Callable`` (Py4J callback)."""

    def __init__(self, action: Callable[[], object]) -> None:
        self._action = action

    def call(self) -> None:
        self._action()

    class Java:
        implements: ClassVar[list[str]] = ["java.util.concurrent.Callable"]


def with_commit_properties(
    spark: SparkSession, properties: Mapping[str, str], action: Callable[[], object]
) -> None:
    """Run ``action`` with Iceberg's thread-local commit properties set: every snapshot it
    commits carries them in its summary (``org.apache.iceberg.spark.CommitMetadata``, the
    documented way for SQL statements: https://iceberg.apache.org/docs/latest/
    spark-configuration/#write-options). PySpark pins each Python thread to one JVM thread
    and runs a callback on the thread that called Java, so ``action``'s calls see them."""
    from pyspark.java_gateway import ensure_callback_server_started

    context = spark.sparkContext
    gateway = context._gateway
    if gateway is None:  # pragma: no cover - only on a stopped session
        raise RuntimeError("the Spark session has no JVM gateway (was it stopped?)")
    ensure_callback_server_started(gateway)  # type: ignore[no-untyped-call]  # pyspark's own, untyped
    java = jvm(spark)
    values = java.java.util.HashMap()
    for key, value in properties.items():
        values.put(key, value)
    java.org.apache.iceberg.spark.CommitMetadata.withCommitProperties(
        values, _JavaCallable(action), java.java.lang.Class.forName("java.lang.RuntimeException")
    )


def _in_table_columns(staged: Optional[DataFrame], table: DataFrame) -> DataFrame:
    """The staged rows in the table's columns (one a concurrent run added is null here);
    with nothing staged, no rows (the overwrite then only drops the batch's earlier rows)."""
    if staged is None:
        return table.limit(0)
    present = set(staged.columns)
    return staged.select(
        *[
            F.col(quoted(f.name)) if f.name in present else F.lit(None).cast(f.dataType)
            for f in table.schema.fields
        ]
    ).toDF(*table.columns)


def added_files(spark: SparkSession, name: str, batch_id: str) -> list[str]:
    """The data files of the newest snapshot whose summary names ``batch_id``."""
    key = contract.ICEBERG_SNAPSHOT_BATCH_ID
    snapshots = spark.sql(
        f"SELECT snapshot_id FROM {name}.snapshots WHERE summary['{key}'] = '{batch_id}'"
        " ORDER BY committed_at DESC LIMIT 1"
    ).collect()
    if not snapshots:
        return []
    entries = spark.sql(
        f"SELECT data_file.file_path AS path FROM {name}.entries"
        f" WHERE snapshot_id = {int(snapshots[0].snapshot_id)} AND status = 1"
    ).collect()
    return sorted(str(row.path) for row in entries)

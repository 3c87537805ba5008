"""Stage 6, write: the landing objects' rows in the table's columns and types, written off to
the side (``_staging/<batch_id>/``), then published as ``<batch_id>-<n>.snappy.parquet`` in
the run's ``ingestion_date`` partition. An object whose rows Spark cannot write is refused
on its own; the rest land."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .arguments import JobArgs
from .column_types import cast_to, sql_text
from .names import quoted
from .outcomes import Ledger
from .quality_gate import QualityGate
from .read import PATH, ROW_ID, Group
from .schema import TableSchema
from .storage import Storage

_TARGET_FILE_BYTES = 128 * 1024 * 1024


def project(
    spark: SparkSession, group: Group, table: TableSchema, landing: set[str], ingested_at: str
) -> DataFrame:
    """The group's landing rows in the table's columns and types, with the metadata (and
    ``_row_id``, to spread the rows over the writers)."""
    paths = spark.createDataFrame(
        [(group.stats[p.uri].path, p.uri) for p in group.probes if p.uri in landing],
        f"{PATH} string, _source_object string",
    )
    # SQL text, one call to Spark for all of a wide table's columns.
    selected = [
        f"{cast_to(quoted(name), group.columns[name], type_name)} AS {quoted(name)}"
        if name in group.columns
        else f"CAST(NULL AS {type_name}) AS {quoted(name)}"
        for name, type_name in table.columns.items()
    ]
    frame = group.frame.join(F.broadcast(paths), PATH)
    return frame.selectExpr(
        *selected,
        "_source_object",
        f"CAST({sql_text(ingested_at)} AS TIMESTAMP) AS _ingested_at",
        ROW_ID,
    )


# Spark's exceptions for a value it cannot write or convert: the object's data, not the run.
_DATA_ERRORS = (
    "SparkUpgradeException",
    "SparkArithmeticException",
    "SparkDateTimeException",
    "SparkNumberFormatException",
    "java.lang.ArithmeticException",
    "java.time.DateTimeException",
    "java.lang.NumberFormatException",
)


def _java_causes(error: BaseException) -> list[Any]:
    """The Java exception behind a PySpark error and its causes, outermost first."""
    found = getattr(error, "java_exception", None) or getattr(error, "_origin", None)
    causes: list[Any] = []
    while found is not None and len(causes) < 20:
        causes.append(found)
        found = found.getCause()
    return causes


def data_error_message(error: BaseException) -> Optional[str]:
    """The one-line message of the data problem that failed a write, or None when the error
    is not about the data (the run then fails as it is, to be retried)."""
    for cause in reversed(_java_causes(error)):
        name = str(cause.getClass().getName())
        if any(name.endswith(kind.rsplit(".", 1)[-1]) for kind in _DATA_ERRORS):
            text = " ".join(str(cause.getMessage() or name).split())
            return text[:300]
    return None


def write_parquet(frame: DataFrame, files: int, target: str) -> None:
    """``files`` Parquet files: the rows spread by a shuffle when there are more partitions
    (so reading, casting and encoding keep the parallelism the data has)."""
    if frame.rdd.getNumPartitions() > files:
        frame = frame.repartition(files, F.col(ROW_ID))
    frame.drop(ROW_ID).write.mode("overwrite").parquet(target)


class StagedWrite:
    """The write stage as :func:`~.schema.settle_schema` calls it: each call writes the
    objects still landing in the planned table under the run's staging folder (replacing
    the call before) and returns the objects whose rows Spark could not write, with why.
    :attr:`files` are the files the last call wrote."""

    def __init__(
        self,
        spark: SparkSession,
        storage: Storage,
        *,
        job: JobArgs,
        groups: Sequence[Group],
        ledger: Ledger,
        sizes: Mapping[str, int],
        ingested_at: str,
        gate: Optional[QualityGate] = None,
    ) -> None:
        self._spark, self._storage, self._job = spark, storage, job
        self._groups, self._ledger, self._sizes = groups, ledger, sizes
        self._ingested_at = ingested_at
        self._gate = gate
        self.files: list[str] = []

    def __call__(self, table: TableSchema, refused: Mapping[str, str]) -> dict[str, str]:
        landing = {
            p.uri
            for g in self._groups
            for p in g.probes
            if p.uri not in refused and self._ledger.is_open(p.uri)
        }
        failed, self.files = self._write(table, landing)
        return failed

    def _write(self, table: TableSchema, landing: set[str]) -> tuple[dict[str, str], list[str]]:
        """Write the landing objects' rows; when Spark cannot write some rows, write object by
        object so only the objects at fault are left out."""
        staging, storage = self._job.staging, self._storage
        storage.delete(staging)
        frames = [
            project(self._spark, g, table, landing, self._ingested_at)
            for g in self._groups
            if any(p.uri in landing for p in g.probes)
        ]
        if not frames:
            if self._gate is not None:
                self._gate.check_empty(table.columns)
            return {}, []
        combined = frames[0]
        for frame in frames[1:]:
            combined = combined.unionByName(frame)
        if self._gate is not None:
            return self._write_judged(self._gate, table, combined, landing)
        try:
            write_parquet(combined, self._files_for(landing), staging)
            return {}, storage.list_parts(staging)
        except Exception as error:
            if data_error_message(error) is None:
                raise
        storage.delete(staging)
        return self._write_each(combined, landing), storage.list_parts(staging)

    def _write_judged(
        self, gate: QualityGate, table: TableSchema, combined: DataFrame, landing: set[str]
    ) -> tuple[dict[str, str], list[str]]:
        """The write with the quality rules judged on it (observed as it writes; see
        ``quality_gate``): objects refused for failing rows are left out by writing the
        others again; a failing dataset rule raises before anything is published."""
        staging, storage = self._job.staging, self._storage
        staged = gate.prepare(combined, table.columns)
        failed: dict[str, str] = {}
        try:
            write_parquet(staged, self._files_for(landing), staging)
            observed = True
        except Exception as error:
            if data_error_message(error) is None:
                raise
            storage.delete(staging)
            failed = self._write_each(gate.landing(), landing)
            observed = False  # the observation saw a failed write: aggregate instead
        refused = gate.judge(observed=observed, unwritten=failed)
        if not refused:
            return failed, storage.list_parts(staging)
        storage.delete(staging)
        others = landing - set(refused) - set(failed)
        more, files = self._write(table, others) if others else ({}, [])
        return {**failed, **refused, **more}, files

    def _write_each(self, combined: DataFrame, landing: set[str]) -> dict[str, str]:
        failed: dict[str, str] = {}
        for index, uri in enumerate(sorted(landing)):
            target = f"{self._job.staging}object-{index:06d}/"
            try:
                own = combined.where(F.col("_source_object") == uri)
                write_parquet(own, self._files_for({uri}), target)
            except Exception as error:
                message = data_error_message(error)
                if message is None:
                    raise
                failed[uri] = f"its rows cannot be written as Parquet: {message}"
                self._storage.delete(target)
        return failed

    def _files_for(self, uris: set[str]) -> int:
        return max(1, math.ceil(sum(self._sizes[u] for u in uris) / _TARGET_FILE_BYTES))


def publish(
    storage: Storage, job: JobArgs, staged: Sequence[str], ingestion_date: str
) -> list[str]:
    """Replace this batch's earlier files with the staged ones.

    Files are named ``<batch_id>-<n>.parquet`` in the run's ``ingestion_date`` partition: a
    re-run of the same input removes its earlier files before its own appear.
    """
    partition = f"{job.output}ingestion_date={ingestion_date}/"
    for old in storage.list_files(partition):
        if old.rsplit("/", 1)[-1].startswith(f"{job.batch_id}-"):
            storage.delete(old)
    written: list[str] = []
    for index, part in enumerate(staged):
        target = f"{partition}{job.batch_id}-{index:05d}.snappy.parquet"
        storage.rename(part, target)
        written.append(target)
    storage.delete(job.staging)
    return written

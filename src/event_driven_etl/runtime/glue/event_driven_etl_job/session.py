"""The Spark session settings the data contract relies on, set for the duration of a run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Optional

from pyspark.sql import SparkSession

SESSION_SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    # Parquet TIMESTAMP(NANOS) (pandas' default) is read as epoch nanoseconds, then converted.
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.files.ignoreMissingFiles": "false",
    # JSON keys and Parquet fields that differ only in case (Name, name) are two columns
    # (normalised to name, name_2), not an ambiguous one.
    "spark.sql.caseSensitive": "true",
    # A cast that does not apply gives null (the type checks decide first), on Spark 3.5 and 4.
    "spark.sql.ansi.enabled": "false",
    # Dates before 1582 and timestamps before 1900 (historical data) are written and read as
    # they are, in the proleptic Gregorian calendar that Spark 3+, Athena, Trino and pyarrow
    # use; Spark's default refuses to write them. See the Glue 3.0 migration notes:
    # https://docs.aws.amazon.com/glue/latest/dg/migrating-version-30.html
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInRead": "CORRECTED",
}
"""Session settings the data contract relies on, set for the duration of a run."""


@contextmanager
def session_settings(spark: SparkSession) -> Iterator[None]:
    """``SESSION_SETTINGS`` for the run, the session's own values back afterwards (the
    offline harness shares one session with other scripts)."""
    saved: dict[str, Optional[str]] = {key: spark.conf.get(key, None) for key in SESSION_SETTINGS}
    for key, value in SESSION_SETTINGS.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, before in saved.items():
            if before is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, before)


def configure(spark: SparkSession) -> None:
    """Session settings the data contract relies on (``run`` also sets them for its run)."""
    for key, value in SESSION_SETTINGS.items():
        spark.conf.set(key, value)

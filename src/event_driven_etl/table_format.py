"""TableFormat: how the built-in Glue job keeps the output table (Hive-style Parquet or
Apache Iceberg), and the Glue job arguments Iceberg needs."""

from __future__ import annotations

import enum

from ._contract import ICEBERG_CATALOG, TABLE_FORMATS
from ._docs import public

__all__ = ["TableFormat"]


@public
class TableFormat(enum.Enum):
    """The format of the output table the built-in job writes (prop ``table_format``)."""

    PARQUET = TABLE_FORMATS[0]
    """Hive-style Parquet in ``ingestion_date=`` partitions, registered in the catalog (and
    projected for Athena); a re-run replaces its own files. The default."""

    ICEBERG = TABLE_FORMATS[1]
    """An Apache Iceberg table in the Glue Data Catalog, written through Glue's native Iceberg
    (``--datalake-formats iceberg``): one commit per batch, its snapshot summary naming the
    batch; a re-run replaces its own rows in one commit; hidden partitioning by
    ``days(_ingested_at)``; schema evolution by column id. Needs the catalog."""


NO_NATIVE_ICEBERG = frozenset({"GlueVersion.V0_9", "GlueVersion.V1_0", "GlueVersion.V2_0"})
"""Glue versions without native Iceberg: "AWS Glue 3.0 and later supports the Apache Iceberg
framework" (5.1 ships Iceberg 1.10.0: "Using the Iceberg framework in AWS Glue",
https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-etl-format-iceberg.html)."""

_CATALOG = f"spark.sql.catalog.{ICEBERG_CATALOG}"

ICEBERG_TABLE_RETRIES = {
    "commit.retry.num-retries": "10",
    "commit.retry.min-wait-ms": "100",
    "commit.retry.max-wait-ms": "60000",
    "commit.retry.total-timeout-ms": "1800000",
}
"""Table properties for concurrent commits: runs of other batches commit at the same time,
and Iceberg's optimistic commit retries on the refreshed table (``commit.retry.*``,
https://iceberg.apache.org/docs/latest/configuration/#table-behavior-properties)."""


def iceberg_spark_conf(warehouse: str) -> dict[str, str]:
    """The Spark settings Glue's Iceberg page documents for the Glue Data Catalog as
    ``glue_catalog``: the session extensions, ``SparkCatalog`` over ``GlueCatalog`` with
    ``S3FileIO``, and the warehouse. ``cache-enabled=false``: each run reads the table's
    current metadata (a cached table would hide a concurrent run's commit from a read)."""
    return {
        "spark.sql.extensions": (
            "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
        ),
        _CATALOG: "org.apache.iceberg.spark.SparkCatalog",
        f"{_CATALOG}.warehouse": warehouse,
        f"{_CATALOG}.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
        f"{_CATALOG}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        f"{_CATALOG}.cache-enabled": "false",
    }


def glue_conf_argument(settings: dict[str, str]) -> str:
    """The value of Glue's ``--conf`` job argument for ``settings``: Glue passes it on to
    ``spark-submit`` as written, so the pairs after the first are joined by ``--conf``."""
    return " --conf ".join(f"{key}={value}" for key, value in settings.items())


def parse_glue_conf_argument(value: str) -> dict[str, str]:
    """The settings of a ``--conf`` job argument (the inverse of :func:`glue_conf_argument`)."""
    settings = {}
    for pair in value.split("--conf"):
        key, _, setting = pair.strip().partition("=")
        if key:
            settings[key] = setting.strip()
    return settings

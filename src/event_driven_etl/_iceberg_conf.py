"""The Glue job arguments of Glue's native Iceberg (``TableFormat.ICEBERG``), shared by the
construct (which writes them) and the offline harness (which reads them back)."""

from __future__ import annotations

from typing import Optional

from ._contract import ICEBERG_CATALOG

NO_NATIVE_ICEBERG = frozenset({"GlueVersion.V0_9", "GlueVersion.V1_0", "GlueVersion.V2_0"})
"""Glue versions without native Iceberg: "AWS Glue 3.0 and later supports the Apache Iceberg
framework" (5.1 ships Iceberg 1.10.0: "Using the Iceberg framework in AWS Glue",
https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-etl-format-iceberg.html)."""

_CATALOG = f"spark.sql.catalog.{ICEBERG_CATALOG}"


def iceberg_spark_conf(warehouse: str, kms_key_arn: Optional[str] = None) -> dict[str, str]:
    """The Spark settings Glue's Iceberg page documents for the Glue Data Catalog as
    ``glue_catalog``: the session extensions, ``SparkCatalog`` over ``GlueCatalog`` with
    ``S3FileIO``, and the warehouse. ``cache-enabled=false``: each run reads the table's
    current metadata (a cached table would hide a concurrent run's commit from a read).

    With ``kms_key_arn``, ``S3FileIO`` writes SSE-KMS with that key (``s3.sse.*``): it writes
    to S3 itself, not through EMRFS, so the job's security configuration does not apply to
    Iceberg's files (https://iceberg.apache.org/docs/latest/aws/#s3-server-side-encryption)."""
    encryption = (
        {f"{_CATALOG}.s3.sse.type": "kms", f"{_CATALOG}.s3.sse.key": kms_key_arn}
        if kms_key_arn
        else {}
    )
    return {
        "spark.sql.extensions": (
            "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
        ),
        _CATALOG: "org.apache.iceberg.spark.SparkCatalog",
        f"{_CATALOG}.warehouse": warehouse,
        f"{_CATALOG}.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
        f"{_CATALOG}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        f"{_CATALOG}.cache-enabled": "false",
        **encryption,
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

"""TableFormat: how the built-in Glue job keeps the output table (Hive-style Parquet or
Apache Iceberg)."""

from __future__ import annotations

import enum

from ._contract import TABLE_FORMATS
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

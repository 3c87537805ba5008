"""Read the pipeline's output the way a table reader does (pyarrow, not Spark)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from .._contract import MANIFEST_PREFIX
from ._clients import emulated_client
from ._spark import BucketMirror

HIDDEN_PREFIXES = ["_", "."]
"""Run reports, the schema file, staging: not data (Athena, Hive and Spark skip them too)."""


def read_table_rows(folder: Path) -> list[dict[str, Any]]:
    """Every row of every Parquet file under ``folder``, with every column of every file
    and the Hive partition columns from the paths.

    The files must agree on one type per column, as any table reader needs: a column whose
    type differs between files raises ``pyarrow.ArrowTypeError``.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    if not folder.exists():
        return []
    options: dict[str, Any] = {
        "format": "parquet",
        "partitioning": "hive",
        "ignore_prefixes": HIDDEN_PREFIXES,
    }
    dataset = ds.dataset(str(folder), **options)
    if not dataset.files:
        return []
    schemas = [ds.dataset(f, format="parquet").schema for f in dataset.files]
    schema = pa.unify_schemas([*schemas, dataset.partitioning.schema])
    rows: list[dict[str, Any]] = (
        ds.dataset(str(folder), schema=schema, **options).to_table().to_pylist()
    )
    return rows


def is_iceberg(table: dict[str, Any]) -> bool:
    """Whether a Glue ``Table`` is an Iceberg table (Iceberg's GlueCatalog marks it so)."""
    return str(table.get("Parameters", {}).get("table_type", "")).upper() == "ICEBERG"


class OutputReader:
    """The output bucket and its catalog table, read as a consumer would: the keys, the
    Parquet rows (pyarrow), the table's definition and SQL over it (DuckDB)."""

    def __init__(
        self,
        s3: Any,
        mirror: BucketMirror,
        *,
        bucket: str,
        catalog_database: Optional[str],
        catalog_table: Optional[str],
    ) -> None:
        self._s3 = s3
        self._mirror = mirror
        self._bucket = bucket
        self._database = catalog_database
        self._table = catalog_table

    def keys(self) -> list[str]:
        """Keys in the output bucket (manifests excluded), sorted."""
        keys = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return sorted(k for k in keys if not k.startswith(MANIFEST_PREFIX))

    def rows(self, prefix: str) -> list[dict[str, Any]]:
        """Every row of every Parquet file under ``prefix`` (see ``read_table_rows``); of the
        Iceberg table's current snapshot when the table at ``prefix`` is an Iceberg table
        (its folder also holds files that earlier snapshots replaced)."""
        table = self._iceberg_table_at(prefix)
        if table is not None:
            from ._iceberg import iceberg_rows

            return iceberg_rows(table)
        self._mirror.pull(self._s3, [self._bucket])
        return read_table_rows(self._mirror.folder(self._bucket) / prefix)

    def _iceberg_table_at(self, prefix: str) -> Optional[dict[str, Any]]:
        """The catalog table when it is an Iceberg table located at ``prefix``, else None."""
        if not (self._database and self._table):
            return None
        from botocore.exceptions import ClientError

        try:
            table = self.table_definition()
        except ClientError:  # no run has created the table yet
            return None
        # Iceberg writes the location without its trailing '/'.
        location = str(table["StorageDescriptor"].get("Location", "")).rstrip("/")
        if not is_iceberg(table) or location != f"s3://{self._bucket}/{prefix}".rstrip("/"):
            return None
        return table

    def table_definition(self, name: Optional[str] = None) -> dict[str, Any]:
        """The output table (or the pipeline's table ``name``, with table routing) as the
        (emulated) Glue Data Catalog holds it (``get_table``)."""
        if not (self._database and self._table):
            raise LookupError("this pipeline keeps no catalog table (catalog=False)")
        glue = emulated_client("glue")
        table: dict[str, Any] = glue.get_table(
            DatabaseName=self._database, Name=name or self._table
        )["Table"]
        return table

    def table_definitions(self) -> list[dict[str, Any]]:
        """Every table of the catalog database (``get_tables``): the pipeline's one table, or
        each table it routes objects to. Empty before the first run created one."""
        if not self._database:
            raise LookupError("this pipeline keeps no catalog table (catalog=False)")
        paginator = emulated_client("glue").get_paginator("get_tables")
        tables: list[dict[str, Any]] = []
        for page in paginator.paginate(DatabaseName=self._database):
            tables += page["TableList"]
        return tables

    def query(self, sql: str) -> list[dict[str, Any]]:
        """``sql`` over the tables of the catalog database through their catalog definitions
        (see ``_query``): the pipeline's table, or every table it routes objects to."""
        from ._query import query_tables

        tables = self.table_definitions() if self._database else []
        iceberg = [t for t in tables if is_iceberg(t)]
        if iceberg:  # the pipeline's one Iceberg table (Iceberg is not routed to tables)
            from ._iceberg import query_iceberg

            return query_iceberg(sql, database=str(self._database), table=iceberg[0])
        if not tables:
            tables = [self.table_definition()]  # raises LookupError as before
        self._mirror.pull(self._s3, [self._bucket])
        views = []
        for table in tables:
            location = str(table["StorageDescriptor"]["Location"])
            bucket, _, prefix = location.removeprefix("s3://").partition("/")
            views.append((table, self._mirror.folder(bucket) / prefix))
        return query_tables(sql, database=str(self._database), tables=views)

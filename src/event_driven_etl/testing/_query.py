"""SQL over the output table through its Glue catalog definition (DuckDB, not Spark)."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_DUCKDB_TYPES = {
    "bigint": "BIGINT",
    "int": "INTEGER",
    "double": "DOUBLE",
    "float": "FLOAT",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "string": "VARCHAR",
}


def query_table(
    sql: str, *, database: str, table: dict[str, Any], folder: Path
) -> list[dict[str, Any]]:
    """Run ``sql`` with the catalog table ``table`` (a Glue ``Table``) as a view over the
    Parquet files in ``folder``, each column cast to its catalog type."""
    return query_tables(sql, database=database, tables=[(table, folder)])


def query_tables(
    sql: str, *, database: str, tables: Sequence[tuple[dict[str, Any], Path]]
) -> list[dict[str, Any]]:
    """Run ``sql`` with each catalog table (a Glue ``Table``, with the folder of its Parquet
    files) as a view, each column cast to its catalog type: a query may join them."""
    import duckdb

    connection = duckdb.connect()
    try:
        connection.execute(f'CREATE SCHEMA "{database}"')
        for table, folder in tables:
            _create_view(connection, database, table, folder)
        result = connection.execute(sql)
        names = [d[0] for d in result.description]
        return [dict(zip(names, row)) for row in result.fetchall()]
    finally:
        connection.close()


def _create_view(connection: Any, database: str, table: dict[str, Any], folder: Path) -> None:
    """``<database>.<table>`` and ``<table>`` over the table's Parquet files."""
    name = str(table["Name"])
    columns = [*table["StorageDescriptor"]["Columns"], *table.get("PartitionKeys", [])]
    depth = "/".join("*=*" for _ in table.get("PartitionKeys", []))
    pattern = str(folder / depth / "*.parquet") if depth else str(folder / "*.parquet")
    if not glob.glob(pattern):
        return  # a table of the database with no files here (not this pipeline's output)
    selected = ", ".join(_column(c["Name"], c["Type"]) for c in columns)
    source = (
        f"read_parquet('{_literal(pattern)}', hive_partitioning = true, union_by_name = true,"
        " hive_types_autocast = false)"
    )
    connection.execute(f'CREATE VIEW "{database}"."{name}" AS SELECT {selected} FROM {source}')
    connection.execute(f'CREATE VIEW "{name}" AS SELECT * FROM "{database}"."{name}"')


def _column(name: str, hive_type: str) -> str:
    quoted = '"' + name.replace('"', '""') + '"'
    duck = _DUCKDB_TYPES.get(hive_type.lower())
    # Nested types (struct<...>, array<...>) are read as the files hold them.
    return f"CAST({quoted} AS {duck}) AS {quoted}" if duck else quoted


def _literal(text: str) -> str:
    return text.replace("'", "''")

"""SQL over the output table through its Glue catalog definition (DuckDB, not Spark)."""

from __future__ import annotations

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
    import duckdb

    name = str(table["Name"])
    columns = [*table["StorageDescriptor"]["Columns"], *table.get("PartitionKeys", [])]
    depth = "/".join("*=*" for _ in table.get("PartitionKeys", []))
    pattern = str(folder / depth / "*.parquet") if depth else str(folder / "*.parquet")
    selected = ", ".join(_column(c["Name"], c["Type"]) for c in columns)
    source = (
        f"read_parquet('{_literal(pattern)}', hive_partitioning = true, union_by_name = true,"
        " hive_types_autocast = false)"
    )
    connection = duckdb.connect()
    try:
        connection.execute(f'CREATE SCHEMA "{database}"')
        view = f"SELECT {selected} FROM {source}"
        connection.execute(f'CREATE VIEW "{database}"."{name}" AS {view}')
        connection.execute(f'CREATE VIEW "{name}" AS SELECT * FROM "{database}"."{name}"')
        result = connection.execute(sql)
        names = [d[0] for d in result.description]
        return [dict(zip(names, row)) for row in result.fetchall()]
    finally:
        connection.close()


def _column(name: str, hive_type: str) -> str:
    quoted = '"' + name.replace('"', '""') + '"'
    duck = _DUCKDB_TYPES.get(hive_type.lower())
    # Nested types (struct<...>, array<...>) are read as the files hold them.
    return f"CAST({quoted} AS {duck}) AS {quoted}" if duck else quoted


def _literal(text: str) -> str:
    return text.replace("'", "''")

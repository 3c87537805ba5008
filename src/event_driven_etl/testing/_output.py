"""Read the pipeline's output the way a table reader does (pyarrow, not Spark)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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

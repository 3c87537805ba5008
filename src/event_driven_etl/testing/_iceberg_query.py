"""SQL over an Iceberg table as a reader outside Spark sees it: pyiceberg loads the table from
the metadata file its catalog entry points to (``metadata_location``), scans the snapshot to
Arrow, and DuckDB runs the SQL, as ``_query`` does for the Parquet output.

The table's names resolve in its database (``orders``, ``db.orders``). Two pieces of Spark's
Iceberg SQL that the tests and readers use are kept, by naming them in the text:
``<table> VERSION AS OF <snapshot id>`` (time travel, snapshot ids only: no branch, tag or
``TIMESTAMP AS OF``) and the metadata tables ``<table>.<name>`` that pyiceberg's
``Table.inspect`` offers (``snapshots``, ``history``, ``files``, ...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.table import Table

METADATA_TABLES = frozenset(
    {
        "snapshots",
        "history",
        "files",
        "data_files",
        "delete_files",
        "manifests",
        "all_manifests",
        "partitions",
        "refs",
        "entries",
        "metadata_log_entries",
    }
)
"""Spark's Iceberg metadata tables that pyiceberg's ``Table.inspect`` reads too."""

_NAME = r'(?:"[^"]+"|`[^`]+`|[A-Za-z_][\w$]*)'


def load_table(table: Mapping[str, Any], properties: Mapping[str, str]) -> Table:
    """The Iceberg table of a Glue ``Table`` at its current metadata (read-only), its files
    read with ``properties`` (pyiceberg's FileIO settings)."""
    from pyiceberg.table import StaticTable

    location = str(table["Parameters"]["metadata_location"])
    return StaticTable.from_metadata(location, properties=dict(properties))


def current_rows(table: Table) -> list[dict[str, Any]]:
    """The rows of the table's current snapshot (none before its first commit)."""
    rows: list[dict[str, Any]] = _as_read(table.scan().to_arrow()).to_pylist()
    return rows


def query_table(sql: str, *, database: str, name: str, table: Table) -> list[dict[str, Any]]:
    """``sql`` over ``table`` (named ``name`` in ``database``) on DuckDB."""
    import duckdb

    sql, sources = _rewrite(sql, database, name)
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute(f"CREATE SCHEMA {_quoted(database)}")
        qualified = f"{_quoted(database)}.{_quoted(name)}"
        _create_view(connection, qualified, _as_read(_scan(table)))
        connection.execute(f"CREATE VIEW {_quoted(name)} AS SELECT * FROM {qualified}")
        for view, (metadata, snapshot) in sources.items():
            arrow = (
                getattr(table.inspect, metadata)() if metadata else _as_read(_scan(table, snapshot))
            )
            _create_view(connection, _quoted(view), arrow)
        result = connection.execute(sql)
        names = [d[0] for d in result.description]
        return [dict(zip(names, row)) for row in result.fetchall()]
    finally:
        connection.close()


def _scan(table: Table, snapshot: Optional[int] = None) -> pa.Table:
    if snapshot is not None and table.metadata.snapshot_by_id(snapshot) is None:
        raise ValueError(f"table has no snapshot {snapshot} (VERSION AS OF takes a snapshot id)")
    arrow: pa.Table = table.scan(snapshot_id=snapshot).to_arrow()
    return arrow


def _create_view(connection: Any, view: str, arrow: pa.Table) -> None:
    """``view`` over ``arrow`` (registered under a name of its own: a view's name may be
    qualified, a registered relation's may not)."""
    relation = f"arrow_{len(connection.execute('SELECT * FROM duckdb_views()').fetchall())}"
    connection.register(relation, arrow)
    connection.execute(f"CREATE VIEW {view} AS SELECT * FROM {relation}")


def _as_read(arrow: pa.Table) -> pa.Table:
    """Timestamps with a time zone as UTC wall-clock time, as the catalog's ``timestamp`` type
    reads (Athena, and Spark with the harness's UTC session)."""
    import pyarrow as pa

    fields = [
        pa.field(f.name, pa.timestamp(f.type.unit), f.nullable)
        if pa.types.is_timestamp(f.type) and f.type.tz is not None
        else f
        for f in arrow.schema
    ]
    return arrow.cast(pa.schema(fields))


def _rewrite(
    sql: str, database: str, name: str
) -> tuple[str, dict[str, tuple[Optional[str], Optional[int]]]]:
    """``sql`` with each metadata table and time-travel reference of the table replaced by a
    view's name, and those views: view -> (metadata table, or None and the snapshot id)."""
    sources: dict[str, tuple[Optional[str], Optional[int]]] = {}
    reference = re.compile(
        rf"(?<![\w.\"`])(?:(?P<db>{_NAME})\.)?(?P<table>{_NAME})"
        rf"(?:\.(?P<meta>{_NAME})|\s+VERSION\s+AS\s+OF\s+(?P<snapshot>\d+))",
        re.IGNORECASE,
    )

    def replace(match: re.Match[str]) -> str:
        # Glue keeps names in lower case; Spark and Athena match them case-insensitively.
        given_db = _unquoted(match["db"]) if match["db"] else database
        meta = _unquoted(match["meta"]).lower() if match["meta"] else None
        if (given_db.lower(), _unquoted(match["table"]).lower()) != (
            database.lower(),
            name.lower(),
        ):
            return match[0]
        if meta is not None:
            if meta not in METADATA_TABLES:
                return match[0]  # e.g. a column of the table's alias
            view = f"{name}${meta}"
            sources[view] = (meta, None)
        else:
            snapshot = int(match["snapshot"])
            view = f"{name}@{snapshot}"
            sources[view] = (None, snapshot)
        return _quoted(view)

    return reference.sub(replace, sql), sources


def _unquoted(identifier: str) -> str:
    return identifier[1:-1] if identifier[:1] in {'"', "`"} else identifier


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'

"""query() over an Iceberg table reads it from the catalog's ``metadata_location`` (pyiceberg,
DuckDB), not Spark: a table committed by pyiceberg's own GlueCatalog through the harness's moto
server stands in for the job's commits, so these run in seconds."""

from __future__ import annotations

import datetime
import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

from event_driven_etl.testing._iceberg import (
    SERVER,
    file_io_properties,
    iceberg_rows,
    query_iceberg,
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("flask") is None,
    reason="moto's server needs the testing extra's moto[server]",
)

REGION = "us-east-1"


def _arrow(ids: list[int], names: list[str]) -> Any:
    import pyarrow as pa

    moment = datetime.datetime(2026, 12, 6, 10, 0, tzinfo=datetime.timezone.utc)
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "name": pa.array(names, pa.string()),
            "_ingested_at": pa.array([moment] * len(ids), pa.timestamp("us", tz="UTC")),
        }
    )


@pytest.fixture
def catalog() -> Iterator[tuple[Any, Any]]:
    """pyiceberg's GlueCatalog on the emulated Glue and S3, and boto3's Glue client."""
    import boto3
    from moto import mock_aws
    from pyiceberg.catalog.glue import GlueCatalog

    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="out")
        glue = boto3.client("glue", region_name=REGION)
        glue.create_database(DatabaseInput={"Name": "lake"})
        properties = {
            **file_io_properties(),
            "glue.endpoint": SERVER.endpoint(),
            "glue.region": REGION,
            "glue.access-key-id": "testing",
            "glue.secret-access-key": "testing",
        }
        yield GlueCatalog("glue", **properties), glue


def _definition(glue: Any) -> dict[str, Any]:
    table: dict[str, Any] = glue.get_table(DatabaseName="lake", Name="orders")["Table"]
    return table


def test_query_reads_the_current_snapshot_with_its_types(catalog: tuple[Any, Any]) -> None:
    iceberg, glue = catalog
    table = iceberg.create_table(
        "lake.orders", schema=_arrow([], []).schema, location="s3://out/processed"
    )
    assert query_iceberg("SELECT * FROM orders", database="lake", table=_definition(glue)) == []
    table.append(_arrow([1, 2], ["Ann", "Bob"]))
    table.append(_arrow([3], ["Cy"]))
    sql = (
        "SELECT id, name, _ingested_at, typeof(id) AS id_type,"
        " typeof(_ingested_at) AS at_type FROM lake.orders ORDER BY id"
    )
    rows = query_iceberg(sql, database="lake", table=_definition(glue))
    at = datetime.datetime(2026, 12, 6, 10, 0)  # UTC wall-clock, as the catalog's timestamp
    assert rows == [
        {"id": i, "name": n, "_ingested_at": at, "id_type": "BIGINT", "at_type": "TIMESTAMP"}
        for i, n in [(1, "Ann"), (2, "Bob"), (3, "Cy")]
    ]
    assert sorted(r["id"] for r in iceberg_rows(_definition(glue))) == [1, 2, 3]


def test_a_snapshot_taken_before_a_rerun_still_reads_the_earlier_data(
    catalog: tuple[Any, Any],
) -> None:
    iceberg, glue = catalog
    table = iceberg.create_table(
        "lake.orders", schema=_arrow([], []).schema, location="s3://out/processed"
    )
    table.append(_arrow([1, 2], ["Ann", "Bob"]))
    before = table.current_snapshot().snapshot_id
    table.overwrite(_arrow([1, 2], ["Ann", "Bo"]))  # a re-run replacing its batch's rows
    definition = _definition(glue)

    def names(sql: str) -> list[str]:
        return [str(r["name"]) for r in query_iceberg(sql, database="lake", table=definition)]

    assert names("SELECT name FROM orders ORDER BY id") == ["Ann", "Bo"]
    assert names(f"SELECT name FROM orders VERSION AS OF {before} ORDER BY id") == ["Ann", "Bob"]
    snapshots = query_iceberg(
        'SELECT snapshot_id FROM "lake"."orders".snapshots ORDER BY committed_at',
        database="lake",
        table=definition,
    )
    assert snapshots[0]["snapshot_id"] == before and len(snapshots) >= 2
    with pytest.raises(ValueError, match="no snapshot 1 "):
        query_iceberg("SELECT * FROM orders VERSION AS OF 1", database="lake", table=definition)


def test_only_the_table_s_metadata_and_time_travel_references_become_views() -> None:
    from event_driven_etl.testing._iceberg_query import _rewrite

    sql, sources = _rewrite(
        "SELECT orders.id FROM Lake.`orders`.snapshots, other.orders.snapshots,"
        " orders VERSION AS OF 42, orders.history",
        "lake",
        "orders",
    )
    assert sql == (
        'SELECT orders.id FROM "orders$snapshots", other.orders.snapshots,'
        ' "orders@42", "orders$history"'
    )
    assert sources == {
        "orders$snapshots": ("snapshots", None),
        "orders@42": (None, 42),
        "orders$history": ("history", None),
    }

"""The output table in the (emulated) Glue Data Catalog, queried through it by DuckDB."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import boto3
import pytest
from aws_cdk import App, Stack

from event_driven_etl import EventDrivenEtlPipeline
from event_driven_etl.testing import LocalPipeline

ORDERS = (
    b"order id,amount,paid,ordered at\n"
    b"1,10.5,true,2026-11-01T10:00:00Z\n"
    b"2,4.5,false,2026-11-02T11:30:00Z\n"
)
MORE = (
    b'{"order id": 3, "amount": 5, "paid": true, "ordered at": "2026-11-03T09:00:00Z",'
    b' "channel": "web"}\n'
)


def _stack(tmp_path: Path) -> Stack:
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "Lake")
    EventDrivenEtlPipeline(stack, "Orders", key_prefix="in/", catalog_table_name="orders")
    return stack


@pytest.mark.spark
def test_a_run_creates_the_table_and_a_later_file_adds_its_column(tmp_path: Path) -> None:
    with LocalPipeline.from_stack(_stack(tmp_path), "Orders") as local:
        local.put_object("in/orders.csv", ORDERS)
        local.wait_for_runs(timeout=300)
        first = local.catalog_table_definition()
        assert first["Name"] == "orders"
        assert [(c["Name"], c["Type"]) for c in first["StorageDescriptor"]["Columns"]] == [
            ("order_id", "bigint"),
            ("amount", "double"),
            ("paid", "boolean"),
            ("ordered_at", "timestamp"),
            ("_source_object", "string"),
            ("_ingested_at", "timestamp"),
        ]
        assert first["PartitionKeys"] == [{"Name": "ingestion_date", "Type": "string"}]
        assert first["StorageDescriptor"]["Location"] == f"s3://{local.output_bucket}/processed/"
        assert first["Parameters"]["projection.ingestion_date.type"] == "date"

        local.put_object("in/more.jsonl", MORE)
        runs = local.wait_for_runs(timeout=300)
        assert [r.status for r in runs] == ["SUCCEEDED", "SUCCEEDED"]
        columns = local.catalog_table_definition()["StorageDescriptor"]["Columns"]
        assert ("channel", "string") in [(c["Name"], c["Type"]) for c in columns]

        glue = boto3.client("glue")
        [partition] = glue.get_partitions(DatabaseName=local.catalog_database, TableName="orders")[
            "Partitions"
        ]
        assert partition["StorageDescriptor"]["Location"].endswith(
            f"/processed/ingestion_date={partition['Values'][0]}/"
        )

        rows = local.query(
            "SELECT order_id, amount, paid, ordered_at, channel FROM orders ORDER BY order_id"
        )
        assert rows == [
            {
                "order_id": 1,
                "amount": 10.5,
                "paid": True,
                "ordered_at": dt.datetime(2026, 11, 1, 10),
                "channel": None,
            },
            {
                "order_id": 2,
                "amount": 4.5,
                "paid": False,
                "ordered_at": dt.datetime(2026, 11, 2, 11, 30),
                "channel": None,
            },
            {
                "order_id": 3,
                "amount": 5.0,
                "paid": True,
                "ordered_at": dt.datetime(2026, 11, 3, 9),
                "channel": "web",
            },
        ]
        [total] = local.query(
            f"SELECT sum(amount) AS total, count(*) AS n FROM {local.catalog_database}.orders"
        )
        assert total == {"total": 20.0, "n": 3}


def test_fails_query_without_a_catalog_table(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "NoCatalog")
    EventDrivenEtlPipeline(stack, "Pipeline", catalog=False)
    with (
        LocalPipeline.from_stack(stack, "Pipeline", glue_runner=lambda s, a: None) as local,
        pytest.raises(LookupError, match="no catalog table"),
    ):
        local.query("SELECT 1")

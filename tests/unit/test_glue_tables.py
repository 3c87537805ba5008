"""The built-in job with table routing (``--tables``): each table landed on its own, one read
per format per table, one run report over them (issue #22)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from event_driven_etl.runtime.glue import etl_job
from event_driven_etl.runtime.glue.event_driven_etl_job.errors import JobInputError
from event_driven_etl.runtime.glue.event_driven_etl_job.job import run
from event_driven_etl.runtime.glue.event_driven_etl_job.report import REPORT_LIST_LIMIT, RunReport
from event_driven_etl.runtime.glue.event_driven_etl_job.tables import TableRule
from event_driven_etl.testing._output import read_table_rows


def _write(folder: Path, name: str, text: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return f"file://{path}"


def _key_prefix(tmp_path: Path) -> str:
    """The key prefix of ``<tmp_path>/in/`` as the router sees a ``file://`` URI's key."""
    return f"{str(tmp_path / 'in').lstrip('/')}/"


@pytest.mark.spark
def test_tables_clash_no_more_and_each_is_read_once_per_format(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyspark.sql.readwriter import DataFrameReader

    reads: list[tuple[str, int]] = []
    original = DataFrameReader.csv

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        paths = args[0] if args and isinstance(args[0], list) else list(args)
        reads.append(("csv", len(paths)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DataFrameReader, "csv", counted)
    folder = tmp_path / "in"
    years = [_write(folder / "a", f"{i}.csv", f"year\n{2000 + i}\n") for i in range(2)]
    dates = [_write(folder / "b", f"{i}.csv", f"year\n2026-01-0{i + 1}\n") for i in range(3)]
    unrouted = _write(folder, "loose.csv", "year\n1\n")
    out = tmp_path / "out"
    rule = TableRule.of("by_folder", _key_prefix(tmp_path))
    uris = [unrouted, *years, *dates]
    report = run(spark, uris, out.as_uri() + "/", batch_id="b1", tables=rule)

    assert sorted(reads) == [("csv", 2), ("csv", 3)]  # one read per format per table
    assert [o.status for o in report.outcomes] == ["skipped", *["landed"] * 5]
    assert "not in a folder under" in str(report.outcomes[0].reason)
    assert report.tables == {"a": {"rows": 2, "landed": 2}, "b": {"rows": 3, "landed": 3}}
    assert {type(r["year"]) for r in read_table_rows(out / "a")} == {int}
    assert {str(r["year"]) for r in read_table_rows(out / "b")} == {
        "2026-01-01",
        "2026-01-02",
        "2026-01-03",
    }
    summary = json.loads((out / "_runs" / "b1.summary.json").read_text())
    assert summary["tables"] == report.tables
    assert (summary["rows"], summary["landed"], summary["skipped_count"]) == (5, 5, 1)
    assert (out / "a" / "_runs" / "b1.json").exists()  # each table's own bookkeeping


@pytest.mark.spark
def test_a_rerun_of_a_routed_batch_replaces_each_tables_output(spark: Any, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    uris = [_write(folder / "x", "1.csv", "id\n1\n2\n"), _write(folder / "y", "2.csv", "id\n3\n")]
    out = tmp_path / "out"
    rule = TableRule.of("by_folder", _key_prefix(tmp_path))
    argv = [
        "--objects",
        json.dumps(uris),
        "--output_path",
        out.as_uri() + "/",
        "--batch_id",
        "same",
        "--tables",
        rule.to_json(),
    ]
    etl_job.main(argv)
    etl_job.main(argv)  # a retry or redrive: the same input, the same identity
    assert len(read_table_rows(out / "x")) == 2 and len(read_table_rows(out / "y")) == 1


@pytest.mark.spark
def test_fails_a_refused_object_after_every_table_landed(spark: Any, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    bad = _write(folder / "x", "bad.csv", "id,name\n1,a\n2,b,extra\n")
    good = _write(folder / "y", "good.csv", "id\n3\n")
    out = tmp_path / "out"
    rule = TableRule.of("by_folder", _key_prefix(tmp_path))
    with pytest.raises(JobInputError) as raised:
        run(spark, [bad, good], out.as_uri() + "/", batch_id="b", tables=rule)
    assert str(raised.value).startswith(f"{bad}: data row 2 has 3 fields")
    assert len(read_table_rows(out / "y")) == 1
    report = json.loads((out / "_runs" / "b.json").read_text())
    assert report["status"] == "FAILED"
    assert report["tables"] == {"x": {"rows": 0, "landed": 0}, "y": {"rows": 1, "landed": 1}}


def test_the_summary_lists_the_first_tables_by_name_and_the_report_every_table() -> None:
    """The summary is a Step Functions payload (256 KiB at most, and an overflow is
    uncatchable): its ``tables`` is capped like its lists; the run report keeps them all."""
    report = RunReport("b", "2026-12-06", "2026-12-06 00:00:00")
    report.tables = {f"t{n:03d}": {"rows": n, "landed": 1} for n in range(250, 0, -1)}
    summary = report.summary()
    assert list(summary["tables"]) == [f"t{n:03d}" for n in range(1, REPORT_LIST_LIMIT + 1)]
    assert summary["tables_count"] == 250
    assert len(report.full()["tables"]) == 250


def test_fails_a_routed_table_that_exists_elsewhere_and_leaves_it_untouched() -> None:
    """A folder named like another pipeline's (or a crawler's) table in a brought database:
    its objects are refused, naming the table and both locations; the table is not rewritten."""
    import boto3
    from moto import mock_aws

    from event_driven_etl.runtime.glue.event_driven_etl_job.arguments import CatalogTable
    from event_driven_etl.runtime.glue.event_driven_etl_job.schema import CatalogSchemaStore
    from event_driven_etl.testing import _session

    _session.fix_moto()
    with mock_aws():
        glue = boto3.client("glue", region_name="us-east-1")
        glue.create_database(DatabaseInput={"Name": "lake"})
        foreign = {
            "Location": "s3://crm/crawled/orders",
            "Columns": [{"Name": "id", "Type": "int"}],
        }
        glue.create_table(
            DatabaseName="lake", TableInput={"Name": "orders", "StorageDescriptor": foreign}
        )
        catalog = CatalogTable("lake", "orders", "us-east-1")
        ours = "s3://out/processed/orders/"
        with pytest.raises(JobInputError) as raised:
            CatalogSchemaStore(catalog, ours, only_at_location=True).load()
        message = str(raised.value)
        assert "lake.orders" in message and "'s3://crm/crawled/orders'" in message
        assert repr(ours) in message
        # One table (no routing): the pipeline's own table, as before.
        assert CatalogSchemaStore(catalog, ours).load()[0].columns == {"id": "int"}
        # Its own location, with or without the final '/': its own table.
        own = CatalogSchemaStore(catalog, "s3://crm/crawled/orders/", only_at_location=True)
        assert own.load()[0].columns == {"id": "int"}


@pytest.mark.spark
def test_a_quality_rule_holding_one_table_back_lets_the_others_land(
    spark: Any, tmp_path: Path
) -> None:
    """Routing and the quality gate together: a dataset rule that fails for one table keeps
    that table's batch from readers, the other tables land, the run fails naming the rule,
    and the report holds each table's quality results."""
    folder = tmp_path / "in"
    orders = _write(folder / "orders", "o.csv", "id,amount\n1,5\n2,-3\n")
    customers = _write(folder / "customers", "c.csv", "id,name\n1,Ann\n")
    out = tmp_path / "out"
    rules = {"orders": 'Rules = [ Mean "amount" > 10 ]', "*": "Rules = [ RowCount > 0 ]"}
    with pytest.raises(JobInputError) as failed:
        run(
            spark,
            [orders, customers],
            out.as_uri() + "/",
            batch_id="b1",
            tables=TableRule.of("by_folder", _key_prefix(tmp_path)),
            quality_rules=json.dumps(rules),
        )
    assert 'Mean "amount" > 10' in str(failed.value)
    report = failed.value.report
    assert isinstance(report, RunReport)
    assert [r["name"] for r in read_table_rows(out / "customers")] == ["Ann"]
    assert read_table_rows(out / "orders") == []  # held back: nothing readers can see
    outcomes = {(q["table"], q["rule"]): q["outcome"] for q in report.quality}
    assert outcomes[("orders", 'Mean "amount" > 10')] == "failed"
    assert outcomes[("customers", "RowCount > 0")] == "passed"

"""Table routing offline: several datasets in one pipeline, each its own table (issue #22)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_glue as glue
from botocore.exceptions import ClientError

from event_driven_etl import Batching, EventDrivenEtlPipeline, Tables
from event_driven_etl import state_machine as state_machine_module
from event_driven_etl.testing import LocalPipeline
from event_driven_etl.testing._clients import emulated_client

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"
PENGUINS = (CORPUS / "penguins.csv").read_bytes()  # 344 rows, `year` an integer
CARS = (CORPUS / "cars_array.json").read_bytes()  # 406 rows, `Year` a date string
RAGGED = b"id,name\n3,Cy\n4,Di,extra\n"
GOOD = b"id,name\n1,Ann\n2,Bob\n"


def _stack(tmp_path: Path, **props: Any) -> Stack:
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "Tables")
    EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="incoming/", **props)
    return stack


def _types(local: LocalPipeline, table: str) -> dict[str, str]:
    columns = local.catalog_table_definition(table)["StorageDescriptor"]["Columns"]
    return {c["Name"]: c["Type"] for c in columns}


@pytest.mark.spark
def test_two_folders_with_clashing_column_types_land_as_two_tables(tmp_path: Path) -> None:
    with LocalPipeline.from_stack(_stack(tmp_path, tables=Tables.by_folder()), "Pipeline") as local:
        local.put_object("incoming/penguins/2026/12/penguins.csv", PENGUINS)
        local.put_object("incoming/cars/cars.json", CARS)
        runs = local.wait_for_runs(timeout=600)
        assert [r.status for r in runs] == ["SUCCEEDED", "SUCCEEDED"], [r.cause for r in runs]

        assert local.catalog_tables() == ["cars", "penguins"]
        assert _types(local, "penguins")["year"] == "bigint"
        assert _types(local, "cars")["year"] == "date"
        location = local.catalog_table_definition("cars")["StorageDescriptor"]["Location"]
        assert location == f"s3://{local.output_bucket}/processed/cars/"

        assert local.query("SELECT count(*) AS n FROM penguins") == [{"n": 344}]
        assert local.query("SELECT count(*) AS n FROM cars") == [{"n": 406}]
        [first_car] = local.query("SELECT name, year FROM cars ORDER BY name, year LIMIT 1")
        assert first_car == {"name": "amc ambassador brougham", "year": dt.date(1973, 1, 1)}
        [penguin_years] = local.query("SELECT min(year) AS low, max(year) AS high FROM penguins")
        assert penguin_years == {"low": 2007, "high": 2009}

        by_table = {next(iter(n["tables"])): n for n in local.notifications}
        assert by_table["penguins"]["tables"] == {"penguins": {"rows": 344, "landed": 1}}
        assert by_table["cars"]["tables"] == {"cars": {"rows": 406, "landed": 1}}
        assert by_table["cars"]["rows"] == 406 and by_table["cars"]["landed"] == 1


@pytest.mark.spark
def test_a_batch_of_three_tables_is_one_run_and_a_refusal_stays_in_its_table(
    tmp_path: Path,
) -> None:
    tables = Tables.mapping(
        {"zoo/": "penguins", "garage/": "cars", "crm/": "people", "crm/archive/": "archive"}
    )
    stack = _stack(tmp_path, tables=tables, batching=Batching(max_batch_size=10))
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        local.put_object("incoming/zoo/penguins.csv", PENGUINS)
        local.put_object("incoming/garage/cars.json", CARS)
        local.put_object("incoming/crm/good.csv", GOOD)
        local.put_object("incoming/crm/bad.csv", RAGGED)
        local.put_object("incoming/elsewhere/x.csv", GOOD)
        [run] = local.wait_for_runs(timeout=600)

        assert run.status == "FAILED"
        [note] = local.notifications
        uri = f"s3://{local.source_bucket}/incoming/"
        assert note["cause"].splitlines()[0].startswith(f"{uri}crm/bad.csv: data row 2 has 3")
        assert note["tables"] == {
            "cars": {"rows": 406, "landed": 1},
            "penguins": {"rows": 344, "landed": 1},
            "people": {"rows": 2, "landed": 1},
        }
        [skipped] = note["skipped"]
        assert skipped["object"] == f"{uri}elsewhere/x.csv"
        assert "matches no table of the mapping" in skipped["reason"]

        assert local.query("SELECT count(*) AS n FROM penguins") == [{"n": 344}]
        assert local.query("SELECT count(*) AS n FROM cars") == [{"n": 406}]
        assert local.query("SELECT id, name FROM people ORDER BY id") == [
            {"id": 1, "name": "Ann"},
            {"id": 2, "name": "Bob"},
        ]


@pytest.mark.spark
def test_the_longest_mapping_prefix_wins_and_names_are_normalised(tmp_path: Path) -> None:
    tables = Tables.mapping({"crm/": "people", "crm/archive/": "Old People"})
    stack = _stack(tmp_path, tables=tables, batching=Batching(max_batch_size=10))
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        local.put_object("incoming/crm/a.csv", GOOD)
        local.put_object("incoming/crm/archive/b.csv", GOOD)
        [run] = local.wait_for_runs(timeout=600)
        assert run.status == "SUCCEEDED", run.cause
        assert local.notifications[0]["tables"] == {
            "old_people": {"rows": 2, "landed": 1},
            "people": {"rows": 2, "landed": 1},
        }
        keys = local.output_keys()
        assert any(k.startswith("processed/old_people/ingestion_date=") for k in keys)
        assert any(k.startswith("processed/people/ingestion_date=") for k in keys)
        assert [r["_source_object"] for r in local.read_output_rows("processed/people/")] == [
            f"s3://{local.source_bucket}/incoming/crm/a.csv"
        ] * 2


# ------------------------------------------------------------------ the workflow (no Spark)


def _no_report(_script: Any, _arguments: dict[str, str]) -> None:
    """A Glue run that succeeds and writes no run report."""


def test_a_run_without_a_report_notifies_no_tables(tmp_path: Path) -> None:
    stack = _stack(tmp_path, tables=Tables.by_folder())
    with LocalPipeline.from_stack(stack, "Pipeline", glue_runner=_no_report) as local:
        local.put_object("incoming/orders/a.csv", GOOD)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED", run.cause
        [note] = local.notifications
        assert note["status"] == "SUCCEEDED"
        assert note["tables"] == {}
        assert note["rows"] is None and note["skipped"] == []


def test_fails_an_unescaped_brace_in_an_intrinsic_string_literal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step Functions refuses ``States.StringToJson('{}')`` (braces are reserved in intrinsic
    string literals); moto's parser takes it, so the harness refuses it as AWS would."""
    monkeypatch.setattr(
        state_machine_module, "_NO_TABLES", {"tables.$": "States.StringToJson('{}')"}
    )
    stack = _stack(tmp_path, tables=Tables.by_folder())
    local = LocalPipeline.from_stack(stack, "Pipeline", glue_runner=_no_report)
    with pytest.raises(ClientError, match=r"InvalidDefinition.*unescaped '\{' or '\}'"):
        local.start()


def _summary_without_tables(
    bucket: Callable[[], str], *, cause: str = ""
) -> Callable[[Any, dict[str, str]], None]:
    """A Glue run writing a summary without ``tables`` (a script that does not route), then
    failing with ``cause`` when one is given."""

    def run(_script: Any, arguments: dict[str, str]) -> None:
        summary = {"rows": 2, "landed": 1, "skipped": [], "quarantined": [], "cause": cause}
        key = f"processed/_runs/{arguments['--batch_id']}.summary.json"
        emulated_client("s3").put_object(Bucket=bucket(), Key=key, Body=json.dumps(summary))
        if cause:
            raise RuntimeError(cause)

    return run


@pytest.mark.parametrize("cause", ["", "orders/a.csv: bad"])
def test_a_summary_without_tables_still_notifies(tmp_path: Path, cause: str) -> None:
    """A Pass state reading a missing ``tables`` would fail the execution uncatchably."""
    holder: list[LocalPipeline] = []
    runner = _summary_without_tables(lambda: holder[0].output_bucket, cause=cause)
    stack = _stack(tmp_path, tables=Tables.by_folder())
    with LocalPipeline.from_stack(stack, "Pipeline", glue_runner=runner) as local:
        holder.append(local)
        local.put_object("incoming/orders/a.csv", GOOD)
        [run] = local.wait_for_runs(timeout=300)
        [note] = local.notifications
        assert note["status"] == ("FAILED" if cause else "SUCCEEDED"), run.cause
        assert note["tables"] == {}
        if cause:
            assert note["cause"] == cause
        else:
            assert note["rows"] == 2 and note["landed"] == 1


def test_your_own_script_with_one_table_notifies_its_summary(tmp_path: Path) -> None:
    """``glue_script`` keeps one table: the workflow never reads ``tables``."""
    holder: list[LocalPipeline] = []
    runner = _summary_without_tables(lambda: holder[0].output_bucket)
    script = glue.Code.from_asset(__file__)
    with LocalPipeline.from_stack(
        _stack(tmp_path, glue_script=script), "Pipeline", glue_runner=runner
    ) as local:
        holder.append(local)
        local.put_object("incoming/a.csv", GOOD)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED", run.cause
        [note] = local.notifications
        assert note["rows"] == 2 and note["landed"] == 1
        assert "tables" not in note


@pytest.mark.spark
def test_a_folder_named_like_a_foreign_table_is_refused_and_the_table_kept(
    tmp_path: Path,
) -> None:
    """By folder in a database you brought: a folder named like a table stored elsewhere
    (another pipeline's, a crawler's) is refused; that table is not rewritten."""
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "Tables")
    database = glue.Database(stack, "Lake", database_name="lake")
    EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        key_prefix="incoming/",
        tables=Tables.by_folder(),
        catalog_database=database,
        batching=Batching(max_batch_size=10),
    )
    foreign = {"Location": "s3://crm/crawled/orders/", "Columns": [{"Name": "id", "Type": "int"}]}
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        emulated_client("glue").create_table(
            DatabaseName="lake", TableInput={"Name": "orders", "StorageDescriptor": foreign}
        )
        local.put_object("incoming/orders/a.csv", GOOD)
        local.put_object("incoming/customers/b.csv", GOOD)
        [run] = local.wait_for_runs(timeout=600)
        assert run.status == "FAILED"
        [note] = local.notifications
        assert (
            "table 'orders' failed: the catalog table lake.orders already exists at "
            in (note["cause"])
        )
        assert "'s3://crm/crawled/orders/'" in note["cause"]
        assert f"'s3://{local.output_bucket}/processed/orders/'" in note["cause"]
        assert note["tables"] == {
            "customers": {"rows": 2, "landed": 1},
            "orders": {"rows": 0, "landed": 0},
        }
        kept = local.catalog_table_definition("orders")["StorageDescriptor"]
        assert kept["Location"] == "s3://crm/crawled/orders/"
        assert kept["Columns"] == [{"Name": "id", "Type": "int"}]

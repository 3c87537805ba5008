"""TableFormat.ICEBERG end to end offline, on the code path Glue runs: the job's
``glue_catalog`` is Iceberg's GlueCatalog with S3FileIO (local Spark 3.5 with Glue 5.1's
Iceberg 1.10.0), pointed at the emulated Glue and S3, every call checked as the job's role."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, Stack

from event_driven_etl import Batching, EventDrivenEtlPipeline, RetryPolicy, TableFormat
from event_driven_etl._iceberg_conf import iceberg_spark_conf
from event_driven_etl.testing import LocalPipeline, _iceberg

from .offline import ICEBERG_OFFLINE, iceberg_stack

pytestmark = [pytest.mark.spark, *ICEBERG_OFFLINE]

GOOD = b"id,name\n1,Ann\n2,Bob\n"
MORE = b'{"id": 3, "name": "Cy", "score": 1.5}\n'


def _stack(tmp_path: Path, **props: Any) -> Stack:
    return iceberg_stack(tmp_path, **props)


def _batches(local: LocalPipeline) -> list[str]:
    """The batch_id of each snapshot of the table, oldest first."""
    rows = local.query(
        f"SELECT summary['batch_id'] AS batch FROM {local.catalog_database}.orders.snapshots"
        " ORDER BY committed_at"
    )
    return [str(r["batch"]) for r in rows]


def test_a_batch_lands_as_one_iceberg_commit_and_a_rerun_replaces_it(tmp_path: Path) -> None:
    stack = _stack(tmp_path, batching=Batching(max_batch_size=10))
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        local.put_object("in/a.csv", GOOD)
        local.put_object("in/b.json", MORE)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED", run.cause
        table = local.catalog_table_definition()
        assert table["Parameters"]["table_type"] == "ICEBERG"
        rows = local.query("SELECT id, name, score FROM orders ORDER BY id")
        assert rows == [
            {"id": 1, "name": "Ann", "score": None},
            {"id": 2, "name": "Bob", "score": None},
            {"id": 3, "name": "Cy", "score": 1.5},
        ]
        [first] = local.glue_runs
        batch = first.arguments["--batch_id"]
        assert _batches(local) == [batch]

        local.run_glue_job_directly(dict(first.arguments))  # a redrive of the same batch
        local.wait_for_runs(timeout=300)
        assert [g.status for g in local.glue_runs] == ["SUCCEEDED", "SUCCEEDED"]
        [count] = local.query("SELECT count(*) AS n FROM orders")
        assert count == {"n": 3}  # one run's rows, not two
        assert _batches(local) == [batch, batch]


def _snapshot_counts(local: LocalPipeline) -> list[int]:
    """The table's row count as of each snapshot, oldest first (time travel)."""
    table = f"{local.catalog_database}.orders"
    ids = [
        int(r["snapshot_id"])
        for r in local.query(f"SELECT snapshot_id FROM {table}.snapshots ORDER BY committed_at")
    ]
    return [
        int(local.query(f"SELECT count(*) AS n FROM {table} VERSION AS OF {i}")[0]["n"])
        for i in ids
    ]


def test_no_snapshot_ever_holds_a_partial_or_doubled_batch(tmp_path: Path) -> None:
    retry = RetryPolicy(max_attempts=2, interval=Duration.seconds(1), retry_failed_runs=True)
    with LocalPipeline.from_stack(_stack(tmp_path, retry_policy=retry), "Pipeline") as local:
        local.fail_next_glue_run("DriverLost", "after the write", after_script=True)
        local.put_object("in/a.csv", GOOD)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED", run.cause
        assert [g.status for g in local.glue_runs] == ["FAILED", "SUCCEEDED"]
        # Before the retry, after it: each snapshot a reader could see holds the batch once.
        assert _snapshot_counts(local) == [2, 2]
        assert local.notifications[0]["rows"] == 2


def test_two_concurrent_commits_of_different_batches_both_land(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs' publish steps commit from the same table version at once: Glue refuses the
    second ``UpdateTable`` (its ``VersionId`` is stale) and Iceberg retries it on the
    refreshed table, so both batches land."""
    from moto.glue import responses

    from event_driven_etl.runtime.glue.event_driven_etl_job.arguments import (
        CatalogTable,
        JobArgs,
    )
    from event_driven_etl.runtime.glue.event_driven_etl_job.iceberg import publish_iceberg
    from event_driven_etl.testing import _spark

    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline") as local:
        local.put_object("in/a.csv", GOOD)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED", run.cause
        output = f"s3://{local.output_bucket}/processed/"
        catalog = CatalogTable(str(local.catalog_database), "orders")
        updates, conflicts = _held_updates(monkeypatch, responses.GlueResponse)
        errors: list[BaseException] = []
        with _spark._lock:
            spark = _spark.spark_session()
            _iceberg.configure_catalog(spark, iceberg_spark_conf(output))

            def publish(batch: str, day: int) -> None:
                moment = f"2026-12-0{day} 10:00:00"
                staged = f"{output}_staging/{batch}/"
                spark.sql(
                    f"SELECT CAST({10 + day} AS BIGINT) AS id, '{batch}' AS name,"
                    f" 's3://x/{batch}.csv' AS _source_object,"
                    f" CAST('{moment}' AS TIMESTAMP) AS _ingested_at"
                ).write.mode("overwrite").parquet(staged)
                job = JobArgs(
                    uris=(f"s3://x/{batch}.csv",),
                    output_path=output,
                    batch_id=batch,
                    catalog=catalog,
                    table_format="iceberg",
                )
                try:
                    publish_iceberg(spark, job, [staged], moment)
                except BaseException as error:  # reported below, on the test's thread
                    errors.append(error)

            threads = [threading.Thread(target=publish, args=(f"batch-{n}", n)) for n in (1, 2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert errors == []
        assert conflicts == [1]  # the second commit was refused once, then retried
        assert updates[0] == 3
        names = {r["name"] for r in local.query("SELECT name FROM orders")}
        assert names == {"Ann", "Bob", "batch-1", "batch-2"}
        assert set(_batches(local)[1:]) == {"batch-1", "batch-2"}


def _held_updates(
    monkeypatch: pytest.MonkeyPatch, glue_response: Any
) -> tuple[list[int], list[int]]:
    """Hold the next two ``UpdateTable`` calls until both arrived (so both commit from the
    same version); count the calls and the ``ConcurrentModificationException`` answers."""
    original = glue_response.update_table
    barrier = threading.Barrier(2, timeout=120)
    updates, conflicts = [0], [0]

    def update_table(self: Any) -> Any:
        updates[0] += 1
        if updates[0] <= 2:
            barrier.wait()
        try:
            return original(self)
        except Exception as error:
            if getattr(error, "error_type", "") == "ConcurrentModificationException":
                conflicts[0] += 1
            raise

    monkeypatch.setattr(glue_response, "update_table", update_table)
    return updates, conflicts


def test_a_new_column_and_a_promoted_type_evolve_the_table_by_column_id(tmp_path: Path) -> None:
    from event_driven_etl.testing import _spark

    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline") as local:
        location = f"s3://{local.output_bucket}/processed/"
        with _spark._lock:  # a table made elsewhere with int and float columns
            spark = _spark.spark_session()
            _iceberg.configure_catalog(spark, iceberg_spark_conf(location))
            spark.sql(
                f"CREATE TABLE glue_catalog.`{local.catalog_database}`.orders"
                " (id int, price float, _source_object string, _ingested_at timestamp)"
                f" USING iceberg PARTITIONED BY (days(_ingested_at)) LOCATION '{location}'"
            )
        # A value beyond int, with no other change to the table: the promotion alone.
        local.put_object("in/a.csv", b"id,price\n5000000000,2.5\n")
        [first] = local.wait_for_runs(timeout=300)
        assert first.status == "SUCCEEDED", first.cause
        local.put_object("in/b.csv", b"id,price,channel\n1,0.125,web\n")
        runs = local.wait_for_runs(timeout=300)
        assert [r.status for r in runs] == ["SUCCEEDED", "SUCCEEDED"], [r.cause for r in runs]
        columns = {
            c["Name"]: c["Type"]
            for c in local.catalog_table_definition()["StorageDescriptor"]["Columns"]
        }
        assert columns["id"] == "bigint" and columns["price"] == "double"
        assert columns["channel"] == "string"
        rows = local.query("SELECT id, price, channel FROM orders ORDER BY id")
        assert rows == [
            {"id": 1, "price": 0.125, "channel": "web"},
            {"id": 5000000000, "price": 2.5, "channel": None},
        ]


def test_fails_a_glue_role_that_may_not_update_the_table_and_commits_nothing(
    tmp_path: Path,
) -> None:
    """Iceberg's own GlueCatalog calls are checked as the job's role: without
    ``glue:UpdateTable`` the table is created but no commit lands, as in AWS."""
    from aws_cdk import Stage

    from event_driven_etl.testing._template import load_from_assembly

    app = Stage.of(iceberg_stack(tmp_path, "E2E"))
    assert app is not None
    template = load_from_assembly(app.synth().directory, "E2E")
    removed = 0
    for resource in template.template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy" or "GlueJobRole" not in str(
            resource["Properties"]["Roles"]
        ):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Sid") == "MaintainOutputTable":
                statement["Action"].remove("glue:UpdateTable")
                removed += 1
    assert removed == 1
    with LocalPipeline(template, "/E2E/Pipeline") as local:
        local.put_object("in/a.csv", GOOD)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        [glue_run] = local.glue_runs
        message = glue_run.error_message or ""
        assert "glue:UpdateTable" in message, message[:2000]
        assert local.read_output_rows() == []  # the table exists, with no snapshot


def test_reprocess_replaces_the_objects_rows_in_one_commit_per_batch(tmp_path: Path) -> None:
    """A reprocessing backfill retracts the objects' earlier rows and adds the new ones in the
    batch's one commit, though those rows share a data file with rows that stay (a MERGE,
    where an overwrite by filter would refuse to drop part of a file)."""
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "Lake")
    pipeline = EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        key_prefix="in/",
        catalog_table_name="orders",
        table_format=TableFormat.ICEBERG,
        batching=Batching(max_batch_size=10),
    )
    pipeline.backfill  # noqa: B018 - created on first use
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        local.put_object("in/a.csv", GOOD, notify=False)
        local.put_object("in/b.csv", b"id,name\n3,Cy\n", notify=False)
        assert local.backfill(prefix="in/").status == "SUCCEEDED"  # one batch, one file
        [landed] = _batches(local)
        # b.csv changes; reprocessing it alone replaces its row in the file a.csv's rows keep.
        local.put_object("in/b.csv", b"id,name\n3,Cyd\n", notify=False)
        replaced = local.backfill(prefix="in/b", reprocess=True)
        assert replaced.status == "SUCCEEDED" and len(replaced) == 1
        rows = local.query("SELECT id, name, _source_object AS o FROM orders ORDER BY id")
        assert [(r["id"], r["name"]) for r in rows] == [(1, "Ann"), (2, "Bob"), (3, "Cyd")]
        batches = _batches(local)
        assert len(batches) == 2 and batches[0] == landed  # one snapshot added, by batch
        assert batches[1] == local.glue_runs[-1].arguments["--batch_id"]
        # Reprocessing both again leaves the count as it is.
        assert local.backfill(prefix="in/", reprocess=True).status == "SUCCEEDED"
        [count] = local.query("SELECT count(*) AS n FROM orders")
        assert count == {"n": 3} and len(_batches(local)) == 3


@pytest.mark.parametrize("table_format", [TableFormat.PARQUET, TableFormat.ICEBERG])
def test_a_new_upload_of_a_key_replaces_its_rows_in_either_format(
    tmp_path: Path, table_format: TableFormat
) -> None:
    """A changed object uploaded again under its key (a new version, no reprocess) lands
    again and its earlier rows are retracted: Parquet rewrites the earlier batch's files,
    Iceberg does it in the batch's one commit. The table holds the key's current rows once,
    whatever the format."""
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "Lake")
    EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        key_prefix="in/",
        catalog_table_name="orders",
        table_format=table_format,
    )
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        local.put_object("in/a.csv", GOOD)
        local.put_object("in/b.csv", b"id,name\n3,Cy\n")
        local.wait_for_runs(timeout=300)
        local.put_object("in/a.csv", b"id,name\n1,Ann\n2,Bea\n4,Dan\n")
        runs = local.wait_for_runs(timeout=300)
        assert [r.status for r in runs] == ["SUCCEEDED"] * 3, [r.cause for r in runs]
        if table_format == TableFormat.ICEBERG:
            rows = local.query("SELECT id, name FROM orders")
        else:
            rows = local.read_output_rows()
    assert sorted((int(r["id"]), r["name"]) for r in rows) == [
        (1, "Ann"),
        (2, "Bea"),
        (3, "Cy"),
        (4, "Dan"),
    ]

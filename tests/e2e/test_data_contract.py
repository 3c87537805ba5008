"""The built-in job's data contract, end to end offline: outcomes, exactly once, odd keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk import App, Duration, Stack

from event_driven_etl import Batching, EventDrivenEtlPipeline, RetryPolicy, TableFormat
from event_driven_etl.testing import LocalPipeline

from .offline import TABLE_FORMATS

GOOD = b"id,name\n1,Ann\n2,Bob\n"
RAGGED = b"id,name\n3,Cy\n4,Di,extra\n"


def _stack(tmp_path: Path, **props: Any) -> Stack:
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "Contract")
    EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="in/", **props)
    return stack


@pytest.mark.spark
@pytest.mark.parametrize("table_format", TABLE_FORMATS)
def test_fails_a_batch_with_one_bad_object_naming_it_and_lands_the_others(
    tmp_path: Path, table_format: TableFormat
) -> None:
    stack = _stack(tmp_path, batching=Batching(max_batch_size=10), table_format=table_format)
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        local.put_object("in/a.csv", GOOD)
        local.put_object("in/bad one.csv", RAGGED)
        local.put_object("in/c.csv", GOOD)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        [note] = local.notifications
        assert note["status"] == "FAILED"
        bad = f"s3://{local.source_bucket}/in/bad one.csv"
        first_line = note["cause"].splitlines()[0]
        assert first_line == f"{bad}: data row 2 has 3 fields, the header has 2: '4,Di,extra'"
        assert "Traceback" not in note["cause"] and "py4j" not in note["cause"]
        landed = {r["_source_object"] for r in local.read_output_rows()}
        assert landed == {
            f"s3://{local.source_bucket}/in/a.csv",
            f"s3://{local.source_bucket}/in/c.csv",
        }


@pytest.mark.spark
def test_quarantine_mode_succeeds_and_lists_the_bad_object(tmp_path: Path) -> None:
    stack = _stack(tmp_path, bad_records="quarantine")
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        local.put_object("in/bad.csv", RAGGED)
        local.put_object("in/empty.csv", b"")
        runs = local.wait_for_runs(timeout=300)
        assert [r.status for r in runs] == ["SUCCEEDED", "SUCCEEDED"]
        notes = {n["objects"][0].rsplit("/", 1)[-1]: n for n in local.notifications}
        [entry] = notes["bad.csv"]["quarantined"]
        assert entry["object"] == f"s3://{local.source_bucket}/in/bad.csv"
        assert entry["reason"].startswith("data row 2 has 3 fields")
        assert notes["empty.csv"]["skipped"] == [
            {
                "object": f"s3://{local.source_bucket}/in/empty.csv",
                "reason": "empty object (0 bytes)",
            }
        ]
        assert notes["empty.csv"]["rows"] == 0 and notes["bad.csv"]["landed"] == 0


@pytest.mark.spark
@pytest.mark.parametrize("table_format", TABLE_FORMATS)
def test_a_retry_after_a_failure_after_writing_adds_no_rows(
    tmp_path: Path, table_format: TableFormat
) -> None:
    retry = RetryPolicy(max_attempts=2, interval=Duration.seconds(1), retry_failed_runs=True)
    stack = _stack(tmp_path, retry_policy=retry, table_format=table_format)
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        local.fail_next_glue_run("DriverLost", "after the write", after_script=True)
        local.put_object("in/a.csv", GOOD)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED"
        assert [g.status for g in local.glue_runs] == ["FAILED", "SUCCEEDED"]
        rows = local.read_output_rows()
        assert sorted(r["name"] for r in rows) == ["Ann", "Bob"]  # once, not twice
        [note] = local.notifications
        assert note["rows"] == 2


@pytest.mark.spark
@pytest.mark.parametrize("table_format", TABLE_FORMATS)
def test_keys_with_colons_and_spaces_land(tmp_path: Path, table_format: TableFormat) -> None:
    stack = _stack(tmp_path, table_format=table_format)
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        local.put_object("in/2026-11-25T10:00:00 export.csv", GOOD)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED", run.cause
        rows = local.read_output_rows()
        assert {r["_source_object"] for r in rows} == set(run.objects)


@pytest.mark.spark
def test_a_run_reads_only_its_own_objects_not_every_bucket(tmp_path: Path) -> None:
    """The script reaches S3 call by call (no copy of the buckets): a run reads its object
    and the output it maintains, never the rest of a full bucket."""
    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline") as local:
        s3 = boto3.client("s3")
        for i in range(40):  # an existing bucket full of objects that no run reads
            s3.put_object(Bucket=local.source_bucket, Key=f"archive/{i}.csv", Body=GOOD)
        local.put_object("in/a.csv", GOOD)
        local.wait_for_runs(timeout=300)
        gateway = local._session.gateway
        assert gateway is not None
        before = len(gateway.calls)
        local.put_object("in/b.csv", GOOD)
        runs = local.wait_for_runs(timeout=300)
        assert [r.status for r in runs] == ["SUCCEEDED", "SUCCEEDED"]
        source_reads = {
            key
            for action, bucket, key in gateway.calls[before:]
            if bucket == local.source_bucket and action == "s3:GetObject"
        }
        assert source_reads == {"in/b.csv"}

"""TableMaintenance offline: the maintenance job's script on local Spark 3.5 with Glue 5.1's
Iceberg, through the same ``glue_catalog`` as the pipeline's job, every call checked as the
maintenance job's role. Compaction keeps the rows and lowers the file count, only for
batches past their re-run window; old snapshots are expired; orphans removed; a re-run of a
recent batch after maintenance still lands once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Duration, Stack

from event_driven_etl import TableMaintenance
from event_driven_etl._maintenance import compaction_delay
from event_driven_etl.testing import LocalPipeline
from event_driven_etl.testing._clients import emulated_client

from .offline import ICEBERG_OFFLINE, iceberg_stack

pytestmark = [pytest.mark.spark, *ICEBERG_OFFLINE]

WORKFLOW_TIMEOUT = Duration.hours(12)  # EtlStateMachine's default


def _stack(tmp_path: Path, **props: Any) -> Stack:
    return iceberg_stack(tmp_path, table_maintenance=TableMaintenance(), **props)


def _csv(first_id: int) -> bytes:
    return f"id,name\n{first_id},a\n{first_id + 1},b\n".encode()


def _one(local: LocalPipeline, sql: str) -> Any:
    [row] = local.query(sql)
    return next(iter(row.values()))


def _files(local: LocalPipeline) -> int:
    return int(_one(local, f"SELECT count(*) FROM {local.catalog_database}.orders.files"))


def _snapshots(local: LocalPipeline) -> int:
    return int(_one(local, f"SELECT count(*) FROM {local.catalog_database}.orders.snapshots"))


def _batch_moments(local: LocalPipeline) -> list[int]:
    """Each batch's ``_ingested_at`` in epoch microseconds, oldest first."""
    rows = local.query("SELECT DISTINCT epoch_us(_ingested_at) AS t FROM orders ORDER BY t")
    return [int(r["t"]) for r in rows]


def _keys(local: LocalPipeline, prefix: str) -> list[str]:
    s3 = emulated_client("s3")
    listed = s3.list_objects_v2(Bucket=local.output_bucket, Prefix=prefix)
    return [str(o["Key"]) for o in listed.get("Contents", [])]


def test_maintenance_before_the_first_batch_finds_no_table(tmp_path: Path) -> None:
    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline") as local:
        assert local.run_maintenance() == {"table": "absent"}


def test_maintenance_compacts_expires_and_cleans_and_a_rerun_still_lands_once(
    tmp_path: Path,
) -> None:
    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline") as local:
        for index, name in enumerate(("a", "b", "c", "d")):  # four per-object runs
            local.put_object(f"in/{name}.csv", _csv(10 * index))
            local.wait_for_runs(timeout=300)
        assert [r.status for r in local.runs()] == ["SUCCEEDED"] * 4
        assert _files(local) == 4
        assert _snapshots(local) == 4
        orphan = "processed/data/left-by-a-failed-write.parquet"
        emulated_client("s3").put_object(Bucket=local.output_bucket, Key=orphan, Body=b"x")
        reports_before = _keys(local, "processed/_runs/")

        # "Now" is such that a, b and c are past their re-run window and d is not.
        moments = _batch_moments(local)
        cutoff = (moments[2] + moments[3]) / 2 / 1e6
        delay = compaction_delay(WORKFLOW_TIMEOUT).to_seconds()
        now = datetime.fromtimestamp(cutoff + delay, timezone.utc)
        done = local.run_maintenance(now=now)

        assert done["rewrite_data_files"][0]["rewritten_data_files_count"] == 3
        assert _files(local) == 2  # a, b and c in one file; d's own file untouched
        assert int(_one(local, "SELECT count(*) FROM orders")) == 8  # every row kept
        assert _snapshots(local) == 1  # older than 7 days: all but the current one
        assert orphan not in _keys(local, "processed/data/")
        assert len(_keys(local, "processed/data/")) == 2  # replaced small files deleted too
        assert _keys(local, "processed/_runs/") == reports_before  # beside the table: kept

        # A redrive of d (still inside its window) replaces its own rows, once.
        d_run = local.glue_runs[-1]
        local.run_glue_job_directly(dict(d_run.arguments))
        local.wait_for_runs(timeout=300)
        assert local.glue_runs[-1].status == "SUCCEEDED", local.glue_runs[-1].error_message
        assert int(_one(local, "SELECT count(*) FROM orders")) == 8
        assert int(_one(local, "SELECT count(*) FROM orders WHERE id >= 30")) == 2

        # The default "now" is the virtual clock: once d is past its window too, it joins.
        local.advance(delay + timedelta(days=1).total_seconds())
        local.run_maintenance()
        assert _files(local) == 1
        assert int(_one(local, "SELECT count(*) FROM orders")) == 8


def test_a_failed_maintenance_run_is_notified_on_the_notification_topic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from event_driven_etl.runtime.glue.event_driven_etl_job import maintenance

    def fails(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("S3 throttled the listing")

    monkeypatch.setattr(maintenance, "maintain", fails)
    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline") as local:
        with pytest.raises(RuntimeError, match="S3 throttled"):
            local.run_maintenance()
        local.wait_for_runs(timeout=120)
        [notification] = local.notifications
        assert notification["status"] == "FAILED"
        assert notification["error"] == "Glue job run FAILED"
        assert "S3 throttled the listing" in notification["cause"]
        assert notification["glue_job_run_id"].startswith("jr_")

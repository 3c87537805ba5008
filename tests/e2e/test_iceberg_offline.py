"""TableFormat.ICEBERG end to end offline, on the code path Glue runs: the job's
``glue_catalog`` is Iceberg's GlueCatalog with S3FileIO (local Spark 3.5 with Glue 5.1's
Iceberg 1.10.0), pointed at the emulated Glue and S3, every call checked as the job's role."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack

from event_driven_etl import Batching, EventDrivenEtlPipeline, TableFormat
from event_driven_etl.testing import LocalPipeline
from event_driven_etl.testing._iceberg import ICEBERG_JARS, iceberg_jars, jars_dir

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(
        not iceberg_jars(), reason=f"run scripts/setup: {', '.join(ICEBERG_JARS)} in {jars_dir()}"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("flask") is None,
        reason="moto's server needs the testing extra's moto[server]",
    ),
]

GOOD = b"id,name\n1,Ann\n2,Bob\n"
MORE = b'{"id": 3, "name": "Cy", "score": 1.5}\n'


def _stack(tmp_path: Path, **props: Any) -> Stack:
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "Lake")
    EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        key_prefix="in/",
        catalog_table_name="orders",
        table_format=TableFormat.ICEBERG,
        **props,
    )
    return stack


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

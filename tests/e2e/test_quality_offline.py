"""Data quality rules end to end offline: a row rule's failing rows quarantined while the
rest land, a dataset rule holding the batch back (readers see nothing, the run FAILED), the
results in the notification and as CloudWatch metrics, and a real file's real defect."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pyarrow.parquet as pq
import pytest
from aws_cdk import App, Stack

from event_driven_etl import EventDrivenEtlPipeline, TableFormat
from event_driven_etl.testing import LocalPipeline

from .offline import TABLE_FORMATS

pytestmark = pytest.mark.spark

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"
ORDERS = b"order_id,amount\n1,10\n2,-3\n3,\n4,7\n"
RULES = 'Rules = [ RowCount > 0, IsComplete "amount", ColumnValues "amount" >= 0 ]'


def _stack(tmp_path: Path, **props: Any) -> Stack:
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "Quality")
    EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="in/", **props)
    return stack


def _quarantined_rows(local: LocalPipeline) -> list[dict[str, Any]]:
    s3 = boto3.client("s3", region_name="us-east-1")
    rows: list[dict[str, Any]] = []
    for key in local.output_keys():
        if "/_quality/" in key and key.endswith(".parquet"):
            body = s3.get_object(Bucket=local.output_bucket, Key=key)["Body"].read()
            rows += pq.read_table(io.BytesIO(body)).to_pylist()
    return rows


@pytest.mark.parametrize("table_format", TABLE_FORMATS)
def test_failing_rows_are_quarantined_with_their_rules_and_the_rest_lands(
    tmp_path: Path, table_format: TableFormat
) -> None:
    stack = _stack(
        tmp_path, bad_records="quarantine", quality_rules=RULES, table_format=table_format
    )
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        local.put_object("in/orders.csv", ORDERS)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED"
        assert sorted(r["order_id"] for r in local.read_output_rows()) == [1, 4]
        bad = {r["order_id"]: list(r["_failed_rules"]) for r in _quarantined_rows(local)}
        assert bad == {  # the values kept as text
            "2": ['ColumnValues "amount" >= 0'],
            "3": ['IsComplete "amount"', 'ColumnValues "amount" >= 0'],  # NULL fails >= 0 too
        }
        [note] = local.notifications
        assert note["rows"] == 2
        assert note["quality"] == [
            {
                "table": "quality_pipeline",
                "rule": "RowCount > 0",
                "outcome": "passed",
                "observed": 2,
            },
            {
                "table": "quality_pipeline",
                "rule": 'IsComplete "amount"',
                "outcome": "failed",
                "observed": 1,
            },
            {
                "table": "quality_pipeline",
                "rule": 'ColumnValues "amount" >= 0',
                "outcome": "failed",
                "observed": 2,
            },
        ]
        metrics = boto3.client("cloudwatch", region_name="us-east-1").list_metrics(
            Namespace="EventDrivenEtl/DataQuality", MetricName="RulesFailed"
        )["Metrics"]
        assert metrics and metrics[0]["Dimensions"][0]["Name"] == "JobName"


@pytest.mark.parametrize("table_format", TABLE_FORMATS)
def test_a_failing_dataset_rule_holds_the_batch_back_and_fails_the_run(
    tmp_path: Path, table_format: TableFormat
) -> None:
    rules = 'Rules = [ Mean "amount" > 100, IsComplete "order_id" ]'
    stack = _stack(
        tmp_path, bad_records="quarantine", quality_rules=rules, table_format=table_format
    )
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        local.put_object("in/orders.csv", ORDERS)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        assert local.read_output_rows() == []  # readers never see the batch
        [note] = local.notifications
        first_line = note["cause"].splitlines()[0]
        assert 'quality rule Mean "amount" > 100 failed' in first_line
        assert "observed 4.666666666666667" in first_line
        assert {q["rule"]: q["outcome"] for q in note["quality"]} == {
            'Mean "amount" > 100': "failed",
            'IsComplete "order_id"': "passed",
        }
        assert note["quarantined"] == []  # held back, not quarantined: a re-run replays it


def test_a_ruleset_catches_the_missing_measurements_of_the_real_penguins_file(
    tmp_path: Path,
) -> None:
    """palmerpenguins' CSV has two penguins with every measure NA: IsComplete catches them."""
    rules = (
        'Rules = [ IsComplete "bill_length_mm", '
        'ColumnValues "species" in ["Adelie", "Chinstrap", "Gentoo"], '
        'ColumnValues "body_mass_g" between 2500 and 6500 ]'
    )
    stack = _stack(tmp_path, bad_records="quarantine", quality_rules=rules)
    expected = pd.read_csv(CORPUS / "penguins.csv")
    missing = int(expected["bill_length_mm"].isna().sum())
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        local.put_object("in/penguins.csv", (CORPUS / "penguins.csv").read_bytes())
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED"
        assert len(local.read_output_rows()) == len(expected) - missing
        quarantined = _quarantined_rows(local)
        assert len(quarantined) == missing == 2
        assert all(r["bill_length_mm"] is None for r in quarantined)
        [note] = local.notifications
        assert [(q["outcome"], q["observed"]) for q in note["quality"]] == [
            ("failed", 2),
            ("passed", 0),
            ("failed", 2),  # the same two penguins have no body mass: NULL fails between
        ]


def _ids(local: LocalPipeline) -> list[int]:
    return sorted(int(row["id"]) for row in local.read_output_rows())


@pytest.mark.parametrize("changed", [b"id,name\n3,Cy\n", b""], ids=["one-row", "emptied"])
@pytest.mark.parametrize("table_format", TABLE_FORMATS)
def test_a_redrive_held_by_a_dataset_rule_leaves_none_of_its_batch_s_rows(
    tmp_path: Path, table_format: TableFormat, changed: bytes
) -> None:
    """Issue #22 (review 5, R1): a batch landed a.csv; the object changed, the batch's
    redrive read it again and a dataset rule held the batch back. The redrive publishes
    nothing, so it removes what its first run published (Parquet: the batch's files;
    Iceberg: one commit deleting the batch's rows), as its released mark and its FAILED
    report say; the next batch holding the object lands it once. Emptied, the object is
    skipped and the rule holds back an empty batch (review 6, F3: Iceberg kept the rows
    when no object was left to hold back)."""
    stack = _stack(tmp_path, quality_rules="Rules = [ RowCount > 1 ]", table_format=table_format)
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        local.put_object("in/a.csv", b"id,name\n1,Ann\n2,Bob\n")
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED", run.cause
        assert _ids(local) == [1, 2]
        local.put_object("in/a.csv", changed, notify=False)
        [first] = local.glue_runs
        local.run_glue_job_directly(dict(first.arguments))  # the batch's redrive
        local.wait_for_runs(timeout=300)
        redrive = local.glue_runs[-1]
        assert redrive.status == "FAILED" and "RowCount > 1" in str(redrive.error_message)
        assert _ids(local) == []
        local.put_object("in/a.csv", b"id,name\n4,Dan\n5,Eve\n")
        runs = local.wait_for_runs(timeout=300)
        assert runs[-1].status == "SUCCEEDED", runs[-1].cause
        assert _ids(local) == [4, 5]

"""The built-in Glue script: plain functions, and the transform on local PySpark 3.5."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from event_driven_etl.runtime.glue import etl_job


def test_parse_args_reads_glue_style_arguments() -> None:
    argv = [
        "--JOB_ID",
        "j1",
        "--objects",
        '["s3://b/k"]',
        "--manifest",
        "",
        "--output_path=s3://o/p/",
    ]
    args = etl_job.parse_args(argv)
    assert args["objects"] == '["s3://b/k"]'
    assert args["output_path"] == "s3://o/p/"
    assert args["JOB_ID"] == "j1"


def test_empty_argument_value_is_kept_empty() -> None:
    assert etl_job.parse_args(["--manifest", "--objects", "[]"]) == {
        "manifest": "",
        "objects": "[]",
    }


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["Order ID", "customerName", "total (EUR)"], ["order_id", "customer_name", "total_eur"]),
        (["a", "A", "a "], ["a", "a_2", "a_3"]),
        (["", "1st"], ["column_1", "_1st"]),
        (["_source_object"], ["source_object"]),
        (["ingestion_date"], ["ingestion_date_2"]),
    ],
)
def test_column_names_are_normalised_and_unique(names: list[str], expected: list[str]) -> None:
    assert etl_job.normalise_column_names(names) == expected


@pytest.mark.parametrize(
    ("uri", "fmt"),
    [
        ("s3://b/a.csv", "csv"),
        ("s3://b/a.CSV.gz", "csv"),
        ("s3://b/a.jsonl", "json"),
        ("s3://b/x.parquet", "parquet"),
    ],
)
def test_object_format_follows_the_extension(uri: str, fmt: str) -> None:
    assert etl_job.object_format(uri) == fmt


def test_fails_unsupported_format_names_the_object_and_the_allowed_ones() -> None:
    with pytest.raises(
        etl_job.JobInputError,
        match=r"unsupported object format for 's3://b/a.xlsx': expected one of .csv",
    ):
        etl_job.object_format("s3://b/a.xlsx")


def test_manifest_lines_accept_json_strings_and_bare_uris() -> None:
    assert etl_job.parse_manifest_lines(['"s3://b/a b.csv"', "s3://b/c.csv", ""]) == [
        "s3://b/a b.csv",
        "s3://b/c.csv",
    ]


def test_hadoop_glob_characters_are_escaped() -> None:
    assert etl_job.hadoop_path("s3://b/x[1]*.csv") == "s3://b/x\\[1\\]\\*.csv"


def test_fails_without_objects(spark: Any) -> None:
    with pytest.raises(etl_job.JobInputError, match="no objects to process"):
        etl_job.object_uris(spark, {"objects": "[]", "manifest": ""})


def test_fails_objects_that_are_not_a_json_list(spark: Any) -> None:
    with pytest.raises(etl_job.JobInputError, match="--objects must be a JSON list"):
        etl_job.object_uris(spark, {"objects": "s3://b/k.csv"})


@pytest.mark.spark
def test_run_lands_csv_and_json_as_partitioned_parquet(spark: Any, tmp_path: Path) -> None:
    csv = tmp_path / "in" / "orders file.csv"
    csv.parent.mkdir()
    csv.write_text("Order ID,Customer Name\n1,Ann\n2,Bob\n")
    jsonl = tmp_path / "in" / "more.jsonl"
    jsonl.write_text("\n".join(json.dumps({"Order ID": str(i), "extra": i}) for i in (3, 4)) + "\n")
    out = tmp_path / "out"
    moment = datetime(2026, 1, 2, 3, 4, 5)
    uris = [f"file://{csv}", f"file://{jsonl}"]
    rows = etl_job.run(spark, uris, out.as_uri() + "/", ingested_at=moment)
    assert rows == 4
    assert (out / "ingestion_date=2026-01-02").is_dir()
    written = spark.read.parquet(str(out)).orderBy("order_id").collect()
    assert [r.order_id for r in written] == ["1", "2", "3", "4"]
    assert written[0].customer_name == "Ann" and written[2].customer_name is None
    assert written[2].extra == 3
    assert written[0]._source_object == f"file://{csv}"
    assert str(written[0].ingestion_date) == "2026-01-02"


@pytest.mark.spark
def test_main_reads_a_manifest(spark: Any, tmp_path: Path) -> None:
    data = tmp_path / "a.csv"
    data.write_text("x\n1\n")
    manifest = tmp_path / "batch.jsonl"
    manifest.write_text(json.dumps(data.as_uri()) + "\n")
    out = tmp_path / "out"
    rows = etl_job.main(
        ["--objects", "[]", "--manifest", manifest.as_uri(), "--output_path", out.as_uri() + "/"]
    )
    assert rows == 1

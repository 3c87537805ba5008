"""The built-in job's side of the backfill: its manifest form and ``--reprocess``."""

from __future__ import annotations

import pytest

from event_driven_etl.runtime.glue.event_driven_etl_job.arguments import (
    CatalogTable,
    JobArgs,
    parse_manifest,
    parse_manifest_lines,
)
from event_driven_etl.runtime.glue.event_driven_etl_job.errors import JobInputError


def test_a_backfill_manifest_is_one_json_object_with_reprocess() -> None:
    lines = ['{"objects": ["s3://b/a.csv", "s3://b/b c.csv"], "reprocess": true}', ""]
    assert parse_manifest(lines) == (["s3://b/a.csv", "s3://b/b c.csv"], {"reprocess": "true"})


def test_live_manifests_carry_no_arguments() -> None:
    lines = ['"s3://b/c.csv"', "s3://b/d.csv"]
    assert parse_manifest(lines) == (["s3://b/c.csv", "s3://b/d.csv"], {})
    assert parse_manifest_lines(lines) == ["s3://b/c.csv", "s3://b/d.csv"]


@pytest.mark.parametrize(("given", "expected"), [("true", True), ("false", False), ("", False)])
def test_reprocess_argument(given: str, expected: bool) -> None:
    job = JobArgs.from_args({"output_path": "s3://o/p/", "reprocess": given}, ["s3://b/a.csv"])
    assert job.reprocess is expected


def test_fails_a_reprocess_that_is_not_true_or_false() -> None:
    with pytest.raises(JobInputError, match="--reprocess"):
        JobArgs.from_args({"output_path": "s3://o/p/", "reprocess": "yes"}, ["s3://b/a.csv"])


def test_live_runs_do_not_reprocess() -> None:
    assert JobArgs.from_args({"output_path": "s3://o/p/"}, ["s3://b/a.csv"]).reprocess is False


def test_reprocessing_into_an_iceberg_table_is_accepted() -> None:
    """Its earlier rows are retracted in the batch's own Iceberg commit (a MERGE), so the
    job takes the combination (issue #22; it used to refuse it)."""
    for reprocess in (True, False):
        JobArgs(
            uris=("s3://in/a.csv",),
            output_path="s3://out/processed/",
            batch_id="b1",
            catalog=CatalogTable("db", "orders"),
            table_format="iceberg",
            reprocess=reprocess,
        ).check()

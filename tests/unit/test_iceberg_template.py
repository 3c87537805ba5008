"""TableFormat.ICEBERG in the template: Glue's native Iceberg arguments, the role's catalog
permissions for Iceberg commits, grant_query for Iceberg readers, and the refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from event_driven_etl import EventDrivenEtlPipeline, GlueEtlJob, TableFormat, ValidationError
from event_driven_etl._iceberg_conf import parse_glue_conf_argument
from event_driven_etl.runtime.glue.event_driven_etl_job.arguments import CatalogTable, JobArgs
from event_driven_etl.runtime.glue.event_driven_etl_job.errors import JobInputError

from ..helpers import only_resource, policy_statements, template_of


def _arguments(stack: Stack) -> dict[str, Any]:
    job = only_resource(template_of(stack), "AWS::Glue::Job")
    return dict(job["Properties"]["DefaultArguments"])


def _conf(arguments: dict[str, Any]) -> dict[str, str]:
    """The ``--conf`` settings, the output bucket's token written as ``<bucket>``."""
    value = arguments["--conf"]
    if isinstance(value, dict):  # Fn::Join of the text and the bucket's Ref
        value = "".join(p if isinstance(p, str) else "<bucket>" for p in value["Fn::Join"][1])
    return parse_glue_conf_argument(value)


def test_the_default_table_format_leaves_the_job_s_arguments_as_they_were(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline")
    arguments = _arguments(stack)
    assert not {"--datalake-formats", "--conf", "--table_format"} & arguments.keys()


def test_iceberg_gets_glue_s_native_iceberg_arguments(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline", table_format=TableFormat.ICEBERG)
    arguments = _arguments(stack)
    assert arguments["--datalake-formats"] == "iceberg"
    assert arguments["--table_format"] == "iceberg"
    catalog = "spark.sql.catalog.glue_catalog"
    assert _conf(arguments) == {
        "spark.sql.extensions": (
            "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
        ),
        catalog: "org.apache.iceberg.spark.SparkCatalog",
        f"{catalog}.warehouse": "s3://<bucket>/processed/",
        f"{catalog}.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
        f"{catalog}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        f"{catalog}.cache-enabled": "false",
    }


@pytest.mark.parametrize("version", ["V6_0", "V6_1"])
def test_glue_6_gets_the_same_native_iceberg_arguments_as_5_1(stack: Stack, version: str) -> None:
    """AWS documents one way to turn Iceberg on for Glue 3.0 and later (``--datalake-formats
    iceberg`` and the ``glue_catalog`` ``--conf``, "Using the Iceberg framework in AWS Glue");
    Glue 6.0 ships Iceberg 1.11.0 on Spark 4.1 with no other setting to add ("Migrating AWS
    Glue for Spark jobs to AWS Glue version 6.0",
    https://docs.aws.amazon.com/glue/latest/dg/migrating-version-60.html)."""
    from event_driven_etl import NewerGlueVersion

    given = glue.GlueVersion.V6_0 if version == "V6_0" else NewerGlueVersion.V6_1
    EventDrivenEtlPipeline(stack, "Pipeline", table_format=TableFormat.ICEBERG, glue_version=given)
    job = only_resource(template_of(stack), "AWS::Glue::Job")
    assert job["Properties"]["GlueVersion"] == version[1:].replace("_", ".")
    other = Stack()
    EventDrivenEtlPipeline(other, "Pipeline", table_format=TableFormat.ICEBERG)
    for name in ("--datalake-formats", "--table_format"):
        assert _arguments(stack)[name] == _arguments(other)[name]
    assert _conf(_arguments(stack)) == _conf(_arguments(other))


def test_the_iceberg_role_may_commit_to_that_table_only(stack: Stack) -> None:
    EventDrivenEtlPipeline(
        stack, "Pipeline", catalog_table_name="orders", table_format=TableFormat.ICEBERG
    )
    statements = policy_statements(template_of(stack), "GlueJobRole")
    [statement] = [s for s in statements if s.get("Sid") == "MaintainOutputTable"]
    assert statement["Action"] == [
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:CreateTable",
        "glue:UpdateTable",
    ]
    text = json.dumps(statement["Resource"])
    assert "/orders" in text and '"*"' not in text
    # Metadata and data files are written under the table's location, the output prefix.
    [writes] = [s for s in statements if s.get("Sid") == "WriteOutputAndQuarantine"]
    assert "processed/*" in json.dumps(writes["Resource"])


def test_grant_query_gives_iceberg_readers_the_table_and_its_files(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", table_format=TableFormat.ICEBERG)
    analyst = iam.Role(stack, "Analyst", assumed_by=iam.AccountRootPrincipal())
    pipeline.grant_query(analyst)
    statements = policy_statements(template_of(stack), "Analyst")
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {"glue:GetDatabase", "glue:GetTable", "s3:GetObject*"} <= actions
    assert not any("Partition" in a for a in actions)


def test_fails_iceberg_with_catalog_false(stack: Stack) -> None:
    with pytest.raises(ValidationError, match=r"table_format=TableFormat.ICEBERG: .*catalog=False"):
        EventDrivenEtlPipeline(stack, "Pipeline", table_format=TableFormat.ICEBERG, catalog=False)


def test_fails_iceberg_on_a_glue_version_without_native_iceberg(stack: Stack) -> None:
    with pytest.raises(ValidationError, match=r"glue_version=GlueVersion.V2_0: .*Iceberg"):
        EventDrivenEtlPipeline(
            stack,
            "Pipeline",
            table_format=TableFormat.ICEBERG,
            glue_script=glue.Code.from_bucket(s3.Bucket(stack, "Scripts"), "job.py"),
            glue_version=glue.GlueVersion.V2_0,
        )


def test_fails_table_format_given_as_a_string(stack: Stack) -> None:
    with pytest.raises(ValidationError, match=r"table_format='iceberg': must be one of"):
        EventDrivenEtlPipeline(stack, "Pipeline", table_format="iceberg")  # type: ignore[arg-type]  # the wrong type is the point


def test_fails_an_iceberg_glue_job_without_a_catalog_database(stack: Stack) -> None:
    buckets = s3.Bucket(stack, "In"), s3.Bucket(stack, "Out")
    with pytest.raises(
        ValidationError, match=r"table_format=TableFormat.ICEBERG: .*catalog_database"
    ):
        GlueEtlJob(
            stack,
            "Job",
            source_bucket=buckets[0],
            output_bucket=buckets[1],
            table_format=TableFormat.ICEBERG,
        )


def test_fails_the_job_run_with_iceberg_but_no_catalog_table() -> None:
    job = JobArgs(
        uris=("s3://b/k.csv",), output_path="s3://o/t/", batch_id="b", table_format="iceberg"
    )
    with pytest.raises(JobInputError, match="--table_format iceberg needs the table's catalog"):
        job.check()
    catalogued = JobArgs(
        uris=("s3://b/k.csv",),
        output_path="s3://o/t/",
        batch_id="b",
        table_format="delta",
        catalog=CatalogTable("db", "t"),
    )
    with pytest.raises(JobInputError, match="--table_format must be one of parquet, iceberg"):
        catalogued.check()


def test_iceberg_files_are_written_with_the_output_key(stack: Stack) -> None:
    """S3FileIO writes to S3 itself (not through EMRFS, which the security configuration
    encrypts): with ``encryption_key`` the catalog's ``s3.sse.*`` name that key."""
    from aws_cdk import aws_kms as kms

    EventDrivenEtlPipeline(
        stack, "Pipeline", table_format=TableFormat.ICEBERG, encryption_key=kms.Key(stack, "Key")
    )
    conf = _arguments(stack)["--conf"]
    parts = conf["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else json.dumps(p) for p in parts)
    assert "spark.sql.catalog.glue_catalog.s3.sse.type=kms" in text
    assert 'spark.sql.catalog.glue_catalog.s3.sse.key={"Fn::GetAtt": ["Key' in text

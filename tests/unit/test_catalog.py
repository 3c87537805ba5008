"""The output as a Glue Data Catalog table; Glue version, Flex and their validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Duration, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Annotations, Match

from event_driven_etl import EventDrivenEtlPipeline, ValidationError

from ..helpers import (
    only_resource,
    policy_statements,
    resources_of_type,
    state_machine_definition,
    template_of,
)


def _job(stack: Stack) -> dict[str, Any]:
    return dict(only_resource(template_of(stack), "AWS::Glue::Job")["Properties"])


def test_a_catalog_database_is_created_and_the_job_maintains_its_table(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline")
    template = template_of(stack)
    database = only_resource(template, "AWS::Glue::Database")
    assert database["DeletionPolicy"] == "Delete"  # no retained resource with a fixed name
    name = database["Properties"]["DatabaseInput"]["Name"]
    assert name == name.lower() and "-" not in name
    assert pipeline.catalog_table_name == "teststack_pipeline"
    arguments = _job(stack)["DefaultArguments"]
    assert arguments["--catalog_table"] == "teststack_pipeline"
    assert "Ref" in json.dumps(arguments["--catalog_database"])


def test_the_glue_role_may_change_that_table_only(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline", catalog_table_name="orders")
    [statement] = [
        s
        for s in policy_statements(template_of(stack), "GlueJobRole")
        if s.get("Sid") == "MaintainOutputTable"
    ]
    text = json.dumps(statement["Resource"])
    assert statement["Action"] == [
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:CreateTable",
        "glue:UpdateTable",
        "glue:GetPartition",
        "glue:BatchCreatePartition",
    ]
    assert ":catalog" in text and ":database/" in text and ":table/" in text
    assert "/orders" in text and '"*"' not in text


def test_grant_query_reads_catalog_table_and_output(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline")
    analyst = iam.Role(stack, "Analyst", assumed_by=iam.AccountRootPrincipal())
    pipeline.grant_query(analyst)
    statements = policy_statements(template_of(stack), "Analyst")
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {"glue:GetTable", "glue:GetPartitions", "s3:GetObject*"} <= actions
    catalog = next(s for s in statements if "glue:GetTable" in s["Action"])
    assert ":table/" in json.dumps(catalog["Resource"])


def test_fails_grant_query_without_a_catalog(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", catalog=False)
    assert pipeline.catalog_database is None and pipeline.catalog_table_name is None
    assert not resources_of_type(template_of(stack), "AWS::Glue::Database")
    with pytest.raises(ValidationError, match="grant_query: catalog=False"):
        pipeline.grant_query(iam.Role(stack, "R", assumed_by=iam.AccountRootPrincipal()))


def test_a_brought_database_is_used(stack: Stack) -> None:
    database = glue.Database.from_database_arn(
        stack, "Db", "arn:aws:glue:eu-west-1:111111111111:database/lake"
    )
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", catalog_database=database)
    assert pipeline.catalog_database is database
    assert not resources_of_type(template_of(stack), "AWS::Glue::Database")
    assert _job(stack)["DefaultArguments"]["--catalog_database"] == "lake"


def test_flex_runs_a_flex_job_with_more_patience(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline", execution_class=glue.ExecutionClass.FLEX)
    job = _job(stack)
    assert job["ExecutionClass"] == "FLEX"
    assert job["Timeout"] == 120
    assert state_machine_definition(template_of(stack))["TimeoutSeconds"] == 24 * 3600


def test_glue_6_is_allowed(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline", glue_version=glue.GlueVersion.V6_0)
    assert _job(stack)["GlueVersion"] == "6.0"
    Annotations.from_stack(stack).has_no_warning("*", Match.string_like_regexp("Glue 6"))


def test_the_harness_warns_when_local_spark_is_not_the_jobs_line() -> None:
    import warnings

    import pyspark

    from event_driven_etl.testing import SparkLineWarning
    from event_driven_etl.testing._spark import SPARK_LINES, check_spark_line

    local = ".".join(pyspark.__version__.split(".")[:2])
    for version, line in SPARK_LINES.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_spark_line(version)
        warned = [w for w in caught if issubclass(w.category, SparkLineWarning)]
        assert bool(warned) == (line != local), (version, local)
    assert {"3.5", "4.1"} == set(SPARK_LINES.values())


def test_fails_built_in_script_on_glue_4(stack: Stack) -> None:
    with pytest.raises(
        ValidationError, match=r"glue_version=GlueVersion.V4_0: the built-in script needs Glue 5.0"
    ):
        EventDrivenEtlPipeline(stack, "Pipeline", glue_version=glue.GlueVersion.V4_0)


def test_fails_flex_combinations_glue_rejects(stack: Stack) -> None:
    with pytest.raises(ValidationError) as raised:
        EventDrivenEtlPipeline(
            stack,
            "Pipeline",
            execution_class=glue.ExecutionClass.FLEX,
            worker_type=glue.WorkerType.G_4X,
            job_run_queuing=True,
        )
    message = str(raised.value)
    assert "worker_type=WorkerType.G_4X: FLEX runs on G.1X or G.2X workers only" in message
    assert "job_run_queuing=True: Glue does not queue FLEX runs" in message


def test_fails_a_table_name_athena_cannot_use(stack: Stack) -> None:
    with pytest.raises(
        ValidationError, match=r"catalog_table_name='Orders-2026': must be 1 to 255"
    ):
        EventDrivenEtlPipeline(stack, "Pipeline", catalog_table_name="Orders-2026")


def test_fails_a_database_with_catalog_off(stack: Stack) -> None:
    database = glue.Database.from_database_arn(
        stack, "Db", "arn:aws:glue:eu-west-1:111111111111:database/lake"
    )
    with pytest.raises(
        ValidationError, match=r"catalog_database=.*has no effect with catalog=False"
    ):
        EventDrivenEtlPipeline(stack, "Pipeline", catalog=False, catalog_database=database)


def test_job_timeout_given_is_kept_with_flex(stack: Stack) -> None:
    EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        execution_class=glue.ExecutionClass.FLEX,
        job_timeout=Duration.minutes(30),
    )
    assert _job(stack)["Timeout"] == 30

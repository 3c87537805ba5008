"""glue_version: aws-cdk-lib's GlueVersion values and NewerGlueVersion.V6_1 (Glue 6.1), written
to the job as Glue reads it, always with an explicit worker type."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3

from event_driven_etl import EventDrivenEtlPipeline, GlueEtlJob, NewerGlueVersion, ValidationError

from ..helpers import only_resource, template_of

ACCEPTED = [
    (glue.GlueVersion.V5_0, "5.0"),
    (glue.GlueVersion.V5_1, "5.1"),
    (glue.GlueVersion.V6_0, "6.0"),
    (NewerGlueVersion.V6_1, "6.1"),
]


def _job(stack: Stack) -> dict[str, Any]:
    return dict(only_resource(template_of(stack), "AWS::Glue::Job")["Properties"])


@pytest.mark.parametrize(("version", "written"), ACCEPTED, ids=[w for _, w in ACCEPTED])
def test_glue_version_is_written_to_the_job_with_an_explicit_worker_type(
    stack: Stack, version: Any, written: str
) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline", glue_version=version)
    job = _job(stack)
    assert job["GlueVersion"] == written
    # Glue 6.1 gives a job without a worker type Graviton workers: the type is always set.
    assert job["WorkerType"] == "G.1X" and job["NumberOfWorkers"] == 2


def test_glue_6_1_keeps_the_worker_type_the_user_chose(stack: Stack) -> None:
    EventDrivenEtlPipeline(
        stack, "Pipeline", glue_version=NewerGlueVersion.V6_1, worker_type=glue.WorkerType.G_2X
    )
    job = _job(stack)
    assert (job["GlueVersion"], job["WorkerType"]) == ("6.1", "G.2X")
    assert job["Command"]["Name"] == "glueetl"


def test_glue_6_1_runs_flex_on_g_1x(stack: Stack) -> None:
    EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        glue_version=NewerGlueVersion.V6_1,
        execution_class=glue.ExecutionClass.FLEX,
    )
    job = _job(stack)
    assert (job["GlueVersion"], job["ExecutionClass"], job["WorkerType"]) == (
        "6.1",
        "FLEX",
        "G.1X",
    )


def test_glue_etl_job_alone_accepts_glue_6_1(stack: Stack) -> None:
    bucket = s3.Bucket(stack, "In")
    out = s3.Bucket(stack, "Out")
    GlueEtlJob(
        stack, "Job", source_bucket=bucket, output_bucket=out, glue_version=NewerGlueVersion.V6_1
    )
    assert _job(stack)["GlueVersion"] == "6.1"


def test_fails_glue_6_1_flex_on_a_worker_type_flex_does_not_offer(stack: Stack) -> None:
    with pytest.raises(ValidationError, match=r"worker_type=WorkerType.G_4X: FLEX runs on G.1X"):
        EventDrivenEtlPipeline(
            stack,
            "Pipeline",
            glue_version=NewerGlueVersion.V6_1,
            execution_class=glue.ExecutionClass.FLEX,
            worker_type=glue.WorkerType.G_4X,
        )


def test_fails_glue_version_given_as_a_string(stack: Stack) -> None:
    with pytest.raises(ValidationError) as error:
        EventDrivenEtlPipeline(stack, "Pipeline", glue_version="6.1")  # type: ignore[arg-type]  # the check under test
    message = str(error.value)
    assert "glue_version='6.1': must be a glue.GlueVersion" in message
    assert "NewerGlueVersion.V6_1" in message


def test_fails_glue_version_of_another_type_without_a_repr(stack: Stack) -> None:
    with pytest.raises(ValidationError) as error:
        EventDrivenEtlPipeline(stack, "Pipeline", glue_version=6.1)  # type: ignore[arg-type]  # the check under test
    message = str(error.value)
    assert "glue_version=float: must be a glue.GlueVersion" in message
    assert "object at 0x" not in message


def test_fails_glue_4_for_the_built_in_script_naming_the_value_as_written(stack: Stack) -> None:
    with pytest.raises(ValidationError, match=r"glue_version=GlueVersion.V4_0: the built-in"):
        EventDrivenEtlPipeline(stack, "Pipeline", glue_version=glue.GlueVersion.V4_0)


def test_the_harness_warns_when_local_spark_is_not_glue_6_1s_line() -> None:
    import pyspark

    from event_driven_etl.testing import SparkLineWarning
    from event_driven_etl.testing._spark import check_spark_line

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_spark_line("6.1")
    spark_4_1 = pyspark.__version__.startswith("4.1.")
    assert [w.category for w in caught] == ([] if spark_4_1 else [SparkLineWarning])

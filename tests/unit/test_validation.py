"""Bad props raise one ValidationError naming the prop, the bad value and what is allowed."""

from __future__ import annotations

from typing import cast

import pytest
from aws_cdk import CfnParameter, Duration, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from event_driven_etl import (
    Batching,
    EtlStateMachine,
    EventDrivenEtlPipeline,
    GlueEtlJob,
    RetryPolicy,
    TriggerFunction,
    ValidationError,
)

from ..helpers import only_resource, resources_of_type, template_of


def test_validation_error_is_a_value_error() -> None:
    assert issubclass(ValidationError, ValueError)


def test_fails_retry_policy_with_negative_attempts() -> None:
    with pytest.raises(
        ValidationError, match=r"max_attempts=-1: must be a whole number from 0 to 100"
    ):
        RetryPolicy(max_attempts=-1)


def test_fails_retry_policy_with_backoff_below_one() -> None:
    with pytest.raises(
        ValidationError, match=r"backoff_rate=0.5: must be a number from 1.0 to 10.0"
    ):
        RetryPolicy(backoff_rate=0.5)


def test_fails_retry_policy_with_sub_second_interval() -> None:
    with pytest.raises(
        ValidationError, match=r"interval=Duration.millis\(500\): must be from 1 second\(s\)"
    ):
        RetryPolicy(interval=Duration.millis(500))


def test_fails_retry_policy_collects_every_problem() -> None:
    with pytest.raises(ValidationError) as raised:
        RetryPolicy(max_attempts=1000, backoff_rate=0, interval=Duration.days(2))
    assert len(raised.value.problems) == 3
    assert "RetryPolicy: 3 invalid props" in str(raised.value)


def test_fails_batching_size_out_of_range() -> None:
    with pytest.raises(
        ValidationError, match=r"max_batch_size=20000: must be a whole number from 1 to 10000"
    ):
        Batching(max_batch_size=20_000)


def test_fails_batching_window_over_five_minutes() -> None:
    with pytest.raises(
        ValidationError,
        match=r"max_batching_window=6 minutes: must be from 0 second\(s\) to 5 minute\(s\)",
    ):
        Batching(max_batching_window=Duration.minutes(6))


def test_fails_batching_over_ten_without_window() -> None:
    with pytest.raises(
        ValidationError, match=r"must be above zero when max_batch_size \(50\) is over 10"
    ):
        Batching(max_batch_size=50, max_batching_window=Duration.seconds(0))


def test_batching_up_to_ten_needs_no_window() -> None:
    assert Batching(max_batch_size=10, max_batching_window=Duration.seconds(0)).max_batch_size == 10


def test_fails_prefix_with_leading_slash(stack: Stack) -> None:
    with pytest.raises(ValidationError, match=r"key_prefix='/incoming/': must not start with '/'"):
        EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="/incoming/")


def test_fails_empty_suffix(stack: Stack) -> None:
    with pytest.raises(ValidationError, match=r"key_suffix='': must be a non-empty string"):
        EventDrivenEtlPipeline(stack, "Pipeline", key_suffix="")


def test_fails_pipeline_collects_problems_of_all_parts_before_creating_anything(
    stack: Stack,
) -> None:
    with pytest.raises(ValidationError) as raised:
        EventDrivenEtlPipeline(
            stack,
            "Pipeline",
            key_prefix="/in/",
            number_of_workers=1,
            max_concurrent_runs=0,
            extra_job_arguments={"--objects": "x"},
            workflow_timeout=Duration.seconds(5),
        )
    message = str(raised.value)
    assert "EventDrivenEtlPipeline 'Pipeline': 5 invalid props" in message
    for fragment in (
        "key_prefix=",
        "number_of_workers=1",
        "max_concurrent_runs=0",
        "'--objects'",
        "timeout=5 seconds",
    ):
        assert fragment in message
    assert stack.node.try_find_child("Pipeline") is None


def test_fails_output_prefix_without_trailing_slash(stack: Stack) -> None:
    with pytest.raises(ValidationError, match=r"output_prefix='processed': must be a key prefix"):
        EventDrivenEtlPipeline(stack, "Pipeline", output_prefix="processed")


def test_fails_retry_policy_of_wrong_type(stack: Stack) -> None:
    with pytest.raises(ValidationError, match=r"retry_policy=3: must be a RetryPolicy \(e.g."):
        EventDrivenEtlPipeline(stack, "Pipeline", retry_policy=3)  # type: ignore[arg-type]  # the wrong type under test


def test_unresolved_tokens_are_not_judged(stack: Stack) -> None:
    with pytest.raises(ValidationError, match="max_batch_size"):
        Batching(max_batch_size=-1)  # a literal out of range is judged ...
    size = CfnParameter(stack, "BatchSize", type="Number").value_as_number
    prefix = CfnParameter(stack, "Prefix").value_as_string
    assert size < 0  # ... and a number token looks like a very negative number
    EventDrivenEtlPipeline(stack, "Pipeline", key_prefix=prefix, batching=Batching(cast(int, size)))
    template = template_of(stack)
    mapping = only_resource(template, "AWS::Lambda::EventSourceMapping")["Properties"]
    assert mapping["BatchSize"] == {"Ref": "BatchSize"}
    rules = resources_of_type(template, "AWS::Events::Rule").values()
    patterns = [r["Properties"]["EventPattern"] for r in rules]
    assert {"key": [{"prefix": {"Ref": "Prefix"}}]} in [p["detail"].get("object") for p in patterns]


def test_fails_glue_job_with_reserved_argument(stack: Stack) -> None:
    bucket = s3.Bucket(stack, "B")
    with pytest.raises(
        ValidationError, match=r"extra_arguments='--output_path': the pipeline sets"
    ):
        GlueEtlJob(
            stack,
            "Job",
            source_bucket=bucket,
            output_bucket=bucket,
            extra_arguments={"--output_path": "x"},
        )


def test_fails_glue_job_argument_without_dashes(stack: Stack) -> None:
    bucket = s3.Bucket(stack, "B")
    with pytest.raises(
        ValidationError, match=r"extra_arguments='table': argument names must start with '--'"
    ):
        GlueEtlJob(
            stack, "Job", source_bucket=bucket, output_bucket=bucket, extra_arguments={"table": "x"}
        )


def test_fails_state_machine_with_empty_pipeline_name(stack: Stack) -> None:
    job = glue.Job.from_job_attributes(stack, "Job", job_name="nightly")
    topic = sns.Topic(stack, "Topic")
    with pytest.raises(ValidationError, match=r"pipeline_name='': must be a string of 1 to 256"):
        EtlStateMachine(stack, "Workflow", glue_job=job, notification_topic=topic, pipeline_name="")


def test_fails_trigger_filters_without_a_source_bucket(stack: Stack) -> None:
    job = glue.Job.from_job_attributes(stack, "Job", job_name="nightly")
    workflow = EtlStateMachine(
        stack, "Workflow", glue_job=job, notification_topic=sns.Topic(stack, "T")
    )
    with pytest.raises(ValidationError, match=r"filters need source_bucket"):
        TriggerFunction(stack, "Trigger", state_machine=workflow.state_machine, key_prefix="in/")


def test_fails_trigger_retry_attempts_above_lambda_limit(stack: Stack) -> None:
    job = glue.Job.from_job_attributes(stack, "Job", job_name="nightly")
    workflow = EtlStateMachine(
        stack, "Workflow", glue_job=job, notification_topic=sns.Topic(stack, "T")
    )
    with pytest.raises(
        ValidationError, match=r"retry_attempts=3: must be a whole number from 0 to 2"
    ):
        TriggerFunction(stack, "Trigger", state_machine=workflow.state_machine, retry_attempts=3)


def test_fails_unknown_bad_records_mode(stack: Stack) -> None:
    with pytest.raises(
        ValidationError, match=r"bad_records='skip': must be one of 'fail', 'quarantine'"
    ):
        EventDrivenEtlPipeline(stack, "Pipeline", bad_records="skip")
    assert stack.node.try_find_child("Pipeline") is None


def test_fails_glue_job_quarantine_inside_the_table(stack: Stack) -> None:
    source, output = s3.Bucket(stack, "Source"), s3.Bucket(stack, "Output")
    with pytest.raises(
        ValidationError,
        match=r"quarantine_prefix='processed/bad/': must not be under 'processed/' "
        r"\(the table prefix\)",
    ):
        GlueEtlJob(
            stack,
            "Job",
            source_bucket=source,
            output_bucket=output,
            quarantine_prefix="processed/bad/",
        )


def test_fails_output_prefix_under_the_manifests(stack: Stack) -> None:
    with pytest.raises(
        ValidationError,
        match=r"output_prefix='manifests/out/': must not be under 'manifests/' "
        r"\(the manifest prefix\)",
    ):
        EventDrivenEtlPipeline(stack, "Pipeline", output_prefix="manifests/out/")


def test_fails_one_bucket_for_input_and_output_without_a_prefix(stack: Stack) -> None:
    bucket = s3.Bucket(stack, "Lake")
    with pytest.raises(
        ValidationError,
        match=r"key_prefix=None: with output_bucket the source bucket, the rule would match "
        r"'processed/'",
    ):
        EventDrivenEtlPipeline(stack, "Pipeline", source_bucket=bucket, output_bucket=bucket)


def test_fails_a_key_prefix_that_holds_the_output(stack: Stack) -> None:
    bucket = s3.Bucket(stack, "Lake")
    with pytest.raises(ValidationError, match=r"key_prefix='data/': .* would match 'data/out/'"):
        EventDrivenEtlPipeline(
            stack,
            "Pipeline",
            source_bucket=bucket,
            output_bucket=bucket,
            key_prefix="data/",
            output_prefix="data/out/",
        )


def test_one_bucket_with_separate_prefixes_is_fine(stack: Stack) -> None:
    bucket = s3.Bucket(stack, "Lake")
    EventDrivenEtlPipeline(
        stack, "Pipeline", source_bucket=bucket, output_bucket=bucket, key_prefix="incoming/"
    )


def test_fails_durations_aws_cannot_take_naming_the_users_props(stack: Stack) -> None:
    with pytest.raises(ValidationError) as raised:
        EventDrivenEtlPipeline(
            stack,
            "Pipeline",
            job_timeout=Duration.seconds(90),
            freshness_period=Duration.seconds(301),
            workflow_timeout=Duration.millis(90_500),
            extra_job_arguments={"--objects": "[]"},
        )
    message = str(raised.value)
    assert (
        "job_timeout=1 minute 30 seconds: must be from 1 minute(s) to 168 hour(s), in whole minutes"
        in message
    )
    assert "freshness_period=5 minutes 1 second: must be from 5 minute(s)" in message
    assert "workflow_timeout=Duration.millis(90500): must be from 1 minute(s)" in message
    assert "extra_job_arguments='--objects'" in message
    assert "timeout=" not in message.replace("job_timeout=", "").replace("workflow_timeout=", "")


def test_fails_a_retry_interval_with_a_fraction_of_a_second() -> None:
    with pytest.raises(ValidationError, match=r"interval=Duration.millis\(1500\): .*whole seconds"):
        RetryPolicy(interval=Duration.millis(1500))


def test_fails_a_job_timeout_longer_than_the_workflow_timeout(stack: Stack) -> None:
    with pytest.raises(
        ValidationError, match=r"job_timeout=3 hours: must not be longer than workflow_timeout"
    ):
        EventDrivenEtlPipeline(
            stack, "Pipeline", job_timeout=Duration.hours(3), workflow_timeout=Duration.hours(2)
        )


def test_fails_a_bucket_name_where_a_bucket_is_meant(stack: Stack) -> None:
    with pytest.raises(
        TypeError,  # ValidationError is a TypeError too
        match=r"source_bucket='my-bucket': must be an s3.IBucket \(e.g. s3.Bucket.from_bucket_name",
    ):
        EventDrivenEtlPipeline(stack, "Pipeline", source_bucket="my-bucket")  # type: ignore[arg-type]  # the wrong type under test


def test_fails_standalone_glue_job_with_a_leading_slash_or_an_empty_name(stack: Stack) -> None:
    source, output = s3.Bucket(stack, "Source"), s3.Bucket(stack, "Output")
    with pytest.raises(ValidationError) as raised:
        GlueEtlJob(
            stack,
            "Job",
            source_bucket=source,
            output_bucket=output,
            source_key_prefix="/in/",
            job_name="",
        )
    message = str(raised.value)
    assert "source_key_prefix='/in/': must not start with '/'" in message
    assert "job_name='': must be 1 to 255 characters" in message

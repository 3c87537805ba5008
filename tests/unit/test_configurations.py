"""Issue #18: the pipeline works the first time away from the defaults (template-level
promises; the offline ones are in tests/e2e/test_configurations_offline.py)."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from event_driven_etl import (
    Batching,
    EtlStateMachine,
    EventDrivenEtlPipeline,
    GlueEtlJob,
    RetryPolicy,
    TriggerFunction,
    ValidationError,
)
from event_driven_etl._contract import INLINE_LIMIT_BYTES
from event_driven_etl.glue_job import _SECURITY_CONFIGURATION_NAME_LIMIT
from event_driven_etl.runtime.glue.event_driven_etl_job.report import summary_uri_of
from event_driven_etl.trigger import _TRIGGER_MAX_CONCURRENCY

from ..helpers import logical_id, only_resource, resources_of_type, template_of

ROOT = Path(__file__).resolve().parents[2]


def test_the_run_summary_sits_beside_its_report_whatever_the_bucket_is_called() -> None:
    report = "s3://logs.json.example/out.json/_runs/batch.json"
    assert summary_uri_of(report) == "s3://logs.json.example/out.json/_runs/batch.summary.json"


def test_the_readme_states_the_manifest_threshold_the_trigger_uses() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "64 KB of URIs" not in readme  # the old, wrong threshold
    assert f"over {INLINE_LIMIT_BYTES:,} bytes of URIs" in readme


def test_bring_your_own_names_its_topic_in_the_stacks_partition(tmp_path: Path) -> None:
    module = runpy.run_path(str(ROOT / "examples/bring_your_own/app.py"))
    stack = module["build"](App(outdir=str(tmp_path / "cdk.out")))
    from aws_cdk.assertions import Template

    text = json.dumps(Template.from_stack(stack).to_json())
    assert not re.search(r'"arn:aws:sns:', text)
    assert "AWS::Partition" in text


# ------------------------------------------------------------------ breaks at run time


def test_the_job_state_notifier_failing_is_alarmed(stack: Stack) -> None:
    """Item 4: a notifier that cannot publish would fail unseen."""
    EventDrivenEtlPipeline(stack, "Pipeline")
    template = template_of(stack)
    machines = resources_of_type(template, "AWS::StepFunctions::StateMachine")
    [notifier] = [lid for lid in machines if "JobStateNotifier" in lid]
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")
    [alarm] = [a for lid, a in alarms.items() if "JobStateNotifierFailedAlarm" in lid]
    props = alarm["Properties"]
    assert props["MetricName"] == "ExecutionsFailed"
    assert props["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": notifier}}]
    assert props["Threshold"] == 0 and props["EvaluationPeriods"] == 1
    assert props["AlarmActions"]  # to the alarm topic


def test_batches_stay_full_under_load(stack: Stack) -> None:
    """Item 5: the SQS event source caps its concurrency, so pollers do not split batches."""
    EventDrivenEtlPipeline(stack, "Pipeline", batching=Batching(max_batch_size=500))
    mapping = only_resource(template_of(stack), "AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"]["ScalingConfig"] == {
        "MaximumConcurrency": _TRIGGER_MAX_CONCURRENCY
    }
    assert mapping["Properties"]["BatchSize"] == 500


# ------------------------------------------------------------------ breaks at synth or deploy


@pytest.mark.parametrize("prop", ["notification_topic", "alarm_topic"])
def test_a_topic_of_another_stack_synthesizes_without_a_cycle(tmp_path: Path, prop: str) -> None:
    """Item 6: a central alerting stack's topic; its policy matches the alarms by the
    pipeline stack's name instead of naming their ARNs."""
    app = App(outdir=str(tmp_path / "cdk.out"))
    central = Stack(app, "Central")
    topic = sns.Topic(central, "Alerts", master_key=kms.Key(central, "Key"))
    pipeline_stack = Stack(app, "Pipelines")
    props: dict[str, Any] = {prop: topic}
    EventDrivenEtlPipeline(pipeline_stack, "Pipeline", **props)
    app.synth()  # DependencyCycle before the fix
    policy = only_resource(template_of(central), "AWS::SNS::TopicPolicy")
    [statement] = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    source = json.dumps(statement["Condition"]["ArnLike"]["aws:SourceArn"])
    assert ":alarm:Pipelines-*" in source


def test_a_long_construct_path_keeps_the_security_configuration_name_within_glue_limits(
    stack: Stack,
) -> None:
    """Item 7: CDK names it with up to 256 characters; Glue takes 255."""
    scope: Construct = stack
    for i in range(6):
        scope = Construct(scope, f"Level{i}" + "x" * 34)
    EventDrivenEtlPipeline(scope, "Pipeline")
    assert len(scope.node.path) > 222
    [config] = resources_of_type(template_of(stack), "AWS::Glue::SecurityConfiguration").values()
    assert len(config["Properties"]["Name"]) <= _SECURITY_CONFIGURATION_NAME_LIMIT


def test_a_short_path_keeps_the_security_configuration_name_cdk_gave_it(stack: Stack) -> None:
    """No replacement of deployed configurations: the same name as CDK's default."""
    EventDrivenEtlPipeline(stack, "Pipeline")
    [config] = resources_of_type(template_of(stack), "AWS::Glue::SecurityConfiguration").values()
    assert config["Properties"]["Name"] == "TestStackPipelineGlueJobSecurityConfiguration8B30B878"


@pytest.mark.parametrize(
    "ownership",
    [None, s3.ObjectOwnership.BUCKET_OWNER_ENFORCED],
    ids=["plain", "bucket-owner-enforced"],
)
def test_a_brought_access_logs_bucket_gets_logs_by_bucket_policy_never_an_acl(
    stack: Stack, ownership: s3.ObjectOwnership | None
) -> None:
    """Item 8: CDK read the app's flags there and set ACL LogDeliveryWrite (or failed on
    S3's default ownership with a message not naming the prop)."""
    logs_bucket = s3.Bucket(stack, "Logs", object_ownership=ownership)
    EventDrivenEtlPipeline(stack, "Pipeline", access_logs_bucket=logs_bucket)
    template = template_of(stack)
    buckets = resources_of_type(template, "AWS::S3::Bucket")
    logs_id = logical_id(logs_bucket)
    assert "AccessControl" not in buckets[logs_id].get("Properties", {})
    for lid in ("Source", "Output"):
        [bucket] = [b for k, b in buckets.items() if f"Pipeline{lid}Bucket" in k]
        assert bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {
            "Ref": logs_id
        }
    policies = resources_of_type(template, "AWS::S3::BucketPolicy")
    [policy] = [p for p in policies.values() if p["Properties"]["Bucket"] == {"Ref": logs_id}]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    delivery = [
        s for s in statements if s.get("Principal") == {"Service": "logging.s3.amazonaws.com"}
    ]
    assert len(delivery) == 2
    assert all(
        s["Condition"]["StringEquals"] == {"aws:SourceAccount": "111111111111"} for s in delivery
    )


def test_an_imported_access_logs_bucket_is_warned_about_with_its_statement(stack: Stack) -> None:
    logs_bucket = s3.Bucket.from_bucket_name(stack, "Logs", "central-access-logs")
    EventDrivenEtlPipeline(stack, "Pipeline", access_logs_bucket=logs_bucket)
    warnings = _warnings(stack)
    [text] = [w for w in warnings if "access_logs_bucket central-access-logs" in w]
    assert '"logging.s3.amazonaws.com"' in text and "111111111111" in text


# ------------------------------------------------------------------ strict prop checking


def _warnings(stack: Stack) -> list[str]:
    from aws_cdk.assertions import Annotations, Match

    return [
        str(m.entry.data)
        for m in Annotations.from_stack(stack).find_warning("*", Match.any_value())
    ]


def _problems(error: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return list(error.value.problems)


@pytest.mark.parametrize(
    ("prop", "value", "shown", "allowed"),
    [
        ("execution_class", "FLEX", "'FLEX'", "ExecutionClass.FLEX"),
        ("alarms", "false", "'false'", "True or False"),
        ("dashboard", "yes", "'yes'", "True or False"),
        ("catalog", "yes", "'yes'", "True or False"),
        ("job_timeout", 30, "30", "aws_cdk.Duration"),
        ("workflow_timeout", 3600, "3600", "aws_cdk.Duration"),
        ("freshness_period", 600, "600", "aws_cdk.Duration"),
        ("job_run_queuing", "yes", "'yes'", "True or False"),
        ("log_retention", 30, "30", "RetentionDays.ONE_YEAR"),
        ("extra_job_arguments", {"--x": 1}, "{'--x': 1}", "string values"),
        ("worker_type", "G.1X", "'G.1X'", "WorkerType.G_1X"),
        ("removal_policy", "destroy", "'destroy'", "RemovalPolicy.DESTROY"),
        ("number_of_workers", 2.5, "2.5", "whole number"),
        ("output_prefix", 5, "5", "a string"),
    ],
)
def test_fails_a_prop_of_the_wrong_type_naming_it_before_cdk_sees_it(
    stack: Stack, prop: str, value: Any, shown: str, allowed: str
) -> None:
    """Item 9: a wrong type is refused by the construct (not coerced, not CDK's TypeError
    naming CDK's parameter), and nothing is left in the tree."""
    with pytest.raises(ValidationError) as error:
        EventDrivenEtlPipeline(stack, "Pipeline", **{prop: value})
    [problem] = _problems(error)
    assert problem.startswith(f"{prop}={shown}: ")
    assert allowed in problem
    assert stack.node.try_find_child("Pipeline") is None


def test_fails_type_and_value_problems_together_in_one_error(stack: Stack) -> None:
    with pytest.raises(ValidationError) as error:
        EventDrivenEtlPipeline(
            stack,
            "Pipeline",
            alarms="no",  # type: ignore[arg-type]  # the wrong type under test
            job_timeout=30,  # type: ignore[arg-type]  # the wrong type under test
            number_of_workers=1,
            key_prefix="/incoming/",
        )
    problems = _problems(error)
    assert [p.split("=", 1)[0] for p in problems] == [
        "job_timeout",
        "alarms",
        "key_prefix",
        "number_of_workers",
    ]
    # The README shows this very error.
    readme = (ROOT / "README.md").read_text()
    shown = readme.split("<!-- readme-test: skip (shows an error message, not code) -->\n```\n")[1]
    assert shown.split("\n```", 1)[0] == str(error.value)
    assert len(problems) == 4
    assert isinstance(error.value, ValueError) and isinstance(error.value, TypeError)


def test_fails_a_glue_job_given_a_bucket_name_with_a_validation_error(stack: Stack) -> None:
    bucket = s3.Bucket(stack, "Out")
    with pytest.raises(ValidationError, match=r"source_bucket='raw': must be an s3.IBucket"):
        GlueEtlJob(stack, "Job", source_bucket="raw", output_bucket=bucket)  # type: ignore[arg-type]  # the wrong type under test
    assert stack.node.try_find_child("Job") is None


def test_fails_sub_constructs_of_the_wrong_type_naming_their_props(stack: Stack) -> None:
    topic = sns.Topic(stack, "Topic")
    with pytest.raises(ValidationError) as error:
        EtlStateMachine(
            stack,
            "Workflow",
            glue_job="nightly",  # type: ignore[arg-type]  # the wrong type under test
            notification_topic=topic,
            include_execution_data="yes",  # type: ignore[arg-type]  # the wrong type under test
        )
    assert [p.split("=", 1)[0] for p in _problems(error)] == [
        "glue_job",
        "include_execution_data",
    ]
    with pytest.raises(ValidationError) as error:
        TriggerFunction(stack, "Trigger", state_machine="arn:aws:states:...")  # type: ignore[arg-type]  # the wrong type under test
    [problem] = _problems(error)
    assert problem.startswith("state_machine='arn:aws:states:...': must be an sfn.IStateMachine")


def test_fails_a_retry_policy_with_wrong_types_in_one_error() -> None:
    with pytest.raises(ValidationError) as error:
        RetryPolicy(interval=30, jitter="no")  # type: ignore[arg-type]  # the wrong type under test
    assert [p.split("=", 1)[0] for p in _problems(error)] == ["interval", "jitter"]


@pytest.mark.parametrize(
    ("props", "prop", "allowed"),
    [
        ({"worker_type": glue.WorkerType.G_025X}, "worker_type=WorkerType.G_025X", "streaming"),
        ({"worker_type": glue.WorkerType.STANDARD}, "worker_type=WorkerType.STANDARD", "G_1X"),
        (
            {"catalog": False, "catalog_table_name": "orders"},
            "catalog_table_name='orders'",
            "catalog=False",
        ),
        (
            {"extra_job_arguments": {"--conf": "spark.x=1"}},
            "extra_job_arguments='--conf'",
            "internally",
        ),
        (
            {"extra_job_arguments": {"--JOB_NAME": "x"}},
            "extra_job_arguments='--JOB_NAME'",
            "internally",
        ),
        ({"output_prefix": "out*/"}, "output_prefix='out*/'", "IAM"),
        ({"key_prefix": "in?/"}, "key_prefix='in?/'", "IAM"),
        ({"output_prefix": "manifests/"}, "output_prefix='manifests/'", "manifests"),
    ],
)
def test_fails_an_invalid_combination_naming_the_users_prop(
    stack: Stack, props: dict[str, Any], prop: str, allowed: str
) -> None:
    """Item 10 (and 11: a clash with the pipeline's fixed manifest prefix names output_prefix,
    never manifest_prefix, which the user cannot set)."""
    with pytest.raises(ValidationError) as error:
        EventDrivenEtlPipeline(stack, "Pipeline", **props)
    problems = _problems(error)
    assert any(p.startswith(f"{prop}: ") and allowed in p for p in problems), problems
    assert not any(p.startswith("manifest_prefix") for p in problems)


def test_fails_a_notification_topic_key_without_its_topic(stack: Stack) -> None:
    key = kms.Key(stack, "Key")
    with pytest.raises(ValidationError) as error:
        EventDrivenEtlPipeline(stack, "Pipeline", notification_topic_key=key)
    [problem] = _problems(error)
    assert problem.startswith("notification_topic_key=kms.Key at 'TestStack/Key': ")
    assert "0x" not in problem


def test_fails_a_retry_policy_whose_cap_is_below_its_first_wait() -> None:
    with pytest.raises(
        ValidationError,
        match=r"max_delay=10 seconds: must not be shorter than interval \(30 seconds\)",
    ):
        RetryPolicy(interval=Duration.seconds(30), max_delay=Duration.seconds(10))


def test_fails_two_pipelines_writing_one_output_location(stack: Stack) -> None:
    shared = s3.Bucket(stack, "Shared")
    EventDrivenEtlPipeline(stack, "Orders", output_bucket=shared)
    with pytest.raises(
        ValidationError,
        match=r"output_prefix='processed/': the pipeline at 'TestStack/Orders' already writes",
    ):
        EventDrivenEtlPipeline(stack, "Customers", output_bucket=shared)
    EventDrivenEtlPipeline(stack, "Crm", output_bucket=shared, output_prefix="crm/")  # its own


def test_messages_show_construct_paths_and_described_tokens_never_a_repr(stack: Stack) -> None:
    """Item 11: no ``<aws_cdk... object at 0x...>``, no ``${Token[...]}``."""
    topic = sns.Topic(stack, "Alerts")
    with pytest.raises(ValidationError) as error:
        EventDrivenEtlPipeline(stack, "Pipeline", alarm_topic=topic, alarms=False, key_prefix="/x")
    text = str(error.value)
    assert "alarm_topic=sns.Topic at 'TestStack/Alerts': has no effect" in text
    assert "0x" not in text and "${Token[" not in text


def test_a_self_trigger_message_names_the_prefixes_the_user_set(stack: Stack) -> None:
    bucket = s3.Bucket(stack, "One")
    with pytest.raises(ValidationError) as error:
        EventDrivenEtlPipeline(
            stack, "Pipeline", source_bucket=bucket, output_bucket=bucket, output_prefix="curated/"
        )
    text = str(error.value)
    assert "'curated/'" in text and "'processed/'" not in text


def test_warnings_a_user_pastes_carry_no_unresolved_token(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "Agnostic")  # no account, no region: both are tokens
    topic = sns.Topic.from_topic_arn(stack, "Ops", "arn:aws:sns:us-east-1:111111111111:ops")
    key = kms.Key.from_key_arn(stack, "OpsKey", "arn:aws:kms:us-east-1:111111111111:key/k")
    raw = s3.Bucket.from_bucket_name(stack, "Raw", "raw-landing")
    EventDrivenEtlPipeline(
        stack, "Pipeline", notification_topic=topic, notification_topic_key=key, source_bucket=raw
    )
    warnings = [w for w in _warnings(stack) if "event-driven-etl" in w or "must allow" in w]
    assert len(warnings) >= 3
    for text in warnings:
        assert "${Token[" not in text, text
    assert len(set(warnings)) == len(warnings)  # each said once


def test_an_imported_alarm_topic_key_warning_names_the_alarm_topic(stack: Stack) -> None:
    """Item 2: the warning pointed at notification_topic_key for the alarm topic's key."""
    key = kms.Key.from_key_arn(stack, "Imported", "arn:aws:kms:eu-west-1:111111111111:key/k")
    topic = sns.Topic(stack, "Alerts", master_key=key)
    EventDrivenEtlPipeline(stack, "Pipeline", alarm_topic=topic)
    [text] = [w for w in _warnings(stack) if "key policy is not changed" in w]
    assert text.startswith("alarm_topic's key is imported")

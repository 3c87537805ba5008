"""Operations surface: alarms, the Glue job-state rule, dashboard, metrics, grants, events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from event_driven_etl import Batching, EventDrivenEtlPipeline, ValidationError
from event_driven_etl.testing._iam import AccessDeniedError, Principal
from tests.helpers import (
    evaluated_policies,
    logical_id,
    policy_statements,
    resources_of_type,
    state_machine_definition,
    template_of,
)

DEFAULT_ALARMS = {
    "ExecutionsFailedAlarm": ("AWS/States", "ExecutionsFailed", "Sum"),
    "ExecutionsTimedOutAlarm": ("AWS/States", "ExecutionsTimedOut", "Sum"),
    "ExecutionsThrottledAlarm": ("AWS/States", "ExecutionThrottled", "Sum"),
    "ExecutionsAbortedAlarm": ("AWS/States", "ExecutionsAborted", "Sum"),
    "TriggerErrorsAlarm": ("AWS/Lambda", "Errors", "Sum"),
    "TriggerThrottlesAlarm": ("AWS/Lambda", "Throttles", "Sum"),
    "DeadLetterQueueAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum"),
    "JobStateNotifierFailedAlarm": ("AWS/States", "ExecutionsFailed", "Sum"),
}


def _alarms(stack: Stack) -> dict[str, dict[str, object]]:
    found = resources_of_type(template_of(stack), "AWS::CloudWatch::Alarm")
    result = {}
    for alarm_id, alarm in found.items():
        name = next((n for n in [*DEFAULT_ALARMS, "FreshnessAlarm"] if n in alarm_id), alarm_id)
        result[name] = alarm["Properties"]
    return result


@pytest.mark.parametrize("batching", [None, Batching()], ids=["per_object", "batching"])
def test_default_alarms_fire_on_first_occurrence_and_notify_the_topic(
    stack: Stack, batching: Batching | None
) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", batching=batching)
    topic_id = logical_id(pipeline.notification_topic)
    alarms = _alarms(stack)
    assert set(alarms) == set(DEFAULT_ALARMS)
    for name, (namespace, metric, statistic) in DEFAULT_ALARMS.items():
        alarm = alarms[name]
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
            namespace,
            metric,
            statistic,
        )
        assert alarm["Threshold"] == 0
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["EvaluationPeriods"] == 1
        assert alarm["Period"] == 300
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["AlarmDescription"]
    assert len(pipeline.alarms) == 8


def test_separate_alarm_topic_receives_alarms(stack: Stack) -> None:
    ops = sns.Topic(stack, "Ops")
    EventDrivenEtlPipeline(stack, "Pipeline", alarm_topic=ops)
    ops_id = logical_id(ops)
    assert all(a["AlarmActions"] == [{"Ref": ops_id}] for a in _alarms(stack).values())


def test_alarms_can_be_turned_off(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", alarms=False)
    assert _alarms(stack) == {}
    assert pipeline.glue_job_failed_rule is None


def test_freshness_alarm_fires_when_nothing_succeeded(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline", freshness_period=Duration.hours(6))
    alarm = _alarms(stack)["FreshnessAlarm"]
    assert alarm["MetricName"] == "ExecutionsSucceeded"
    assert alarm["Period"] == 6 * 3600
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["Threshold"] == 1
    assert alarm["TreatMissingData"] == "breaching"


def test_fails_freshness_period_below_five_minutes(stack: Stack) -> None:
    with pytest.raises(ValidationError, match=r"freshness_period=1 minute"):
        EventDrivenEtlPipeline(stack, "Pipeline", freshness_period=Duration.minutes(1))


def test_glue_job_state_change_rule_starts_the_notifier_with_a_dead_letter_queue(
    stack: Stack,
) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline")
    job_id = logical_id(pipeline.glue_job.job)
    rules = resources_of_type(template_of(stack), "AWS::Events::Rule")
    [rule] = [
        r for r in rules.values() if r["Properties"]["EventPattern"]["source"] == ["aws.glue"]
    ]
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.glue"],
        "detail-type": ["Glue Job State Change"],
        "detail": {"jobName": [{"Ref": job_id}], "state": ["FAILED", "TIMEOUT", "ERROR"]},
    }
    [target] = rule["Properties"]["Targets"]
    machines = resources_of_type(template_of(stack), "AWS::StepFunctions::StateMachine")
    [notifier_id] = [i for i in machines if "JobStateNotifier" in i]
    assert target["Arn"] == {"Ref": notifier_id}
    assert machines[notifier_id]["Properties"]["StateMachineType"] == "EXPRESS"
    dlq_id = logical_id(pipeline.trigger.dead_letter_queue)
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 185


def test_notifier_publishes_the_notification_schema_with_the_status_attribute(
    stack: Stack,
) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline")
    states = state_machine_definition(template_of(stack), "JobStateNotifier")["States"]
    [choice] = states["Started by the workflow?"]["Choices"]
    # A run of the workflow is the workflow's to notify: one failure, one notification.
    assert choice == {
        "Variable": "$.run.text",
        "StringMatches": '*"--batch_id"*',
        "Next": "The workflow notifies it",
    }
    publish = states["Notify failure"]
    assert publish["Parameters"]["MessageAttributes"] == {
        "status": {"DataType": "String", "StringValue": "FAILED"}
    }
    message = publish["Parameters"]["Message"]
    assert message["status"] == "FAILED"
    assert message["glue_job_run_id.$"] == "$.detail.jobRunId"
    assert message["error.$"] == "States.Format('Glue job run {}', $.detail.state)"
    assert states["Read the run"]["Catch"][0]["Next"] == "Notify failure"


def test_topic_policy_lets_no_service_but_the_alarms_publish(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline")
    [policy] = resources_of_type(template_of(stack), "AWS::SNS::TopicPolicy").values()
    principals = [s.get("Principal") for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    assert principals == ["*", {"Service": "cloudwatch.amazonaws.com"}]


def test_pipeline_key_lets_cloudwatch_publish_and_eventbridge_dead_letter(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline")
    key = resources_of_type(template_of(stack), "AWS::KMS::Key")[
        logical_id(pipeline.encryption_key)
    ]
    principals = json.dumps(key["Properties"]["KeyPolicy"])
    assert "events.amazonaws.com" in principals and "cloudwatch.amazonaws.com" in principals


def test_dashboard_is_off_by_default_and_shows_the_pipeline_when_on(stack: Stack) -> None:
    assert EventDrivenEtlPipeline(stack, "Quiet").dashboard is None
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", dashboard=True)
    assert pipeline.dashboard is not None
    [dashboard] = resources_of_type(template_of(stack), "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for title in (
        "Objects received",
        "Executions",
        "Glue run time",
        "Trigger errors",
        "Dead-letter queue depth",
    ):
        assert title in body
    for metric in (
        "MatchedEvents",
        "ExecutionsSucceeded",
        "ExecutionsFailed",
        "glue.driver.aggregate.elapsedTime",
        "ApproximateNumberOfMessagesVisible",
    ):
        assert metric in body


def test_metric_methods_name_the_right_metrics(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline")
    assert pipeline.metric_executions_succeeded().metric_name == "ExecutionsSucceeded"
    assert pipeline.metric_executions_failed().metric_name == "ExecutionsFailed"
    assert pipeline.metric_execution_duration().metric_name == "ExecutionTime"
    assert pipeline.metric_trigger_errors().metric_name == "Errors"
    assert pipeline.metric_objects_received().metric_name == "MatchedEvents"
    assert pipeline.metric_executions_failed(period=Duration.hours(1)).period.to_seconds() == 3600


def _principal(stack: Stack, role: iam.Role, resolver: Any) -> Principal:
    return Principal(_arn(stack, role, resolver))


def _arn(stack: Stack, construct: Any, resolver: Any) -> str:
    return str(resolver.get_att(logical_id(construct), "Arn"))


def test_grant_write_source_lets_the_grantee_upload_under_the_prefix_only(stack: Stack) -> None:
    key = kms.Key(stack, "Key")
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="incoming/", encryption_key=key)
    role = iam.Role(stack, "Uploader", assumed_by=iam.AccountRootPrincipal())
    pipeline.grant_write_source(role)
    policies, resolver = evaluated_policies(stack)
    uploader = _principal(stack, role, resolver)
    bucket = _arn(stack, pipeline.source_bucket, resolver)
    policies.check(uploader, "s3:PutObject", f"{bucket}/incoming/a.csv", resource_policy_of=bucket)
    with pytest.raises(AccessDeniedError):
        policies.check(uploader, "s3:PutObject", f"{bucket}/other/a.csv", resource_policy_of=bucket)
    key_arn = _arn(stack, key, resolver)
    assert policies.key_allows(uploader, "kms:GenerateDataKey", key_arn, {})[0]
    assert not policies.key_allows(uploader, "kms:ScheduleKeyDeletion", key_arn, {})[0]


def test_grant_read_output_lets_the_grantee_read_the_output_only(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline")
    role = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())
    pipeline.grant_read_output(role)
    policies, resolver = evaluated_policies(stack)
    reader = _principal(stack, role, resolver)
    bucket = _arn(stack, pipeline.output_bucket, resolver)
    policies.check(
        reader, "s3:GetObject", f"{bucket}/processed/x.parquet", resource_policy_of=bucket
    )
    for action, key in (("s3:GetObject", "manifests/m.jsonl"), ("s3:PutObject", "processed/x")):
        with pytest.raises(AccessDeniedError):
            policies.check(reader, action, f"{bucket}/{key}", resource_policy_of=bucket)


def test_grant_subscribe_notifications_lets_the_grantee_subscribe(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline")
    role = iam.Role(stack, "Subscriber", assumed_by=iam.AccountRootPrincipal())
    pipeline.grant_subscribe_notifications(role)
    policies, resolver = evaluated_policies(stack)
    topic = str(resolver.ref(logical_id(pipeline.notification_topic)))
    policies.check(_principal(stack, role, resolver), "sns:Subscribe", topic)
    with pytest.raises(AccessDeniedError):
        policies.check(_principal(stack, role, resolver), "sns:Publish", topic)


def test_on_success_and_on_failure_return_rules_for_this_state_machine(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline")
    pipeline.on_success("Succeeded")
    pipeline.on_failure("Failed")
    machine_id = logical_id(pipeline.state_machine.state_machine)
    rules = resources_of_type(template_of(stack), "AWS::Events::Rule")
    patterns = [
        r["Properties"]["EventPattern"]
        for r in rules.values()
        if r["Properties"]["EventPattern"]["source"] == ["aws.states"]
    ]
    assert {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"stateMachineArn": [{"Ref": machine_id}], "status": ["SUCCEEDED"]},
    } in patterns
    assert any(p["detail"]["status"] == ["FAILED", "TIMED_OUT", "ABORTED"] for p in patterns)


def test_brought_bucket_grants_use_its_key(stack: Stack) -> None:
    key = kms.Key(stack, "BucketKey")
    bucket = s3.Bucket(stack, "Mine", encryption_key=key)
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", source_bucket=bucket)
    role = iam.Role(stack, "Uploader", assumed_by=iam.AccountRootPrincipal())
    pipeline.grant_write_source(role)
    key_id = logical_id(key)
    assert key_id in json.dumps(policy_statements(template_of(stack), "Uploader"))


def test_the_pipelines_alarms_may_publish_to_the_topic(stack: Stack) -> None:
    """A topic with a policy of its own denies CloudWatch unless the policy allows it."""
    EventDrivenEtlPipeline(stack, "Pipeline")
    template = template_of(stack)
    statements = [
        s
        for policy in resources_of_type(template, "AWS::SNS::TopicPolicy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    [alarms] = [s for s in statements if s.get("Sid") == "AllowThePipelinesAlarms"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Action"] == "sns:Publish"
    assert alarms["Condition"]["StringEquals"] == {"aws:SourceAccount": "111111111111"}
    arns = alarms["Condition"]["ArnLike"]["aws:SourceArn"]
    assert len(arns) == len(resources_of_type(template, "AWS::CloudWatch::Alarm"))


def test_a_separate_alarm_topic_is_notified_of_every_failed_run(stack: Stack) -> None:
    ops = sns.Topic(stack, "Ops")
    EventDrivenEtlPipeline(stack, "Pipeline", alarm_topic=ops)
    definition = state_machine_definition(template_of(stack), "JobStateNotifier")
    assert definition["StartAt"] == "Notify failure"  # no "Started by the workflow?" filter
    assert "Read the run" not in definition["States"]

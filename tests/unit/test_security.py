"""Secure by default: encryption, logging, data safety, least privilege as a reviewed table."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import IConstruct

from event_driven_etl import Batching, EventDrivenEtlPipeline, ValidationError
from tests.helpers import logical_id, only_resource, resources_of_type, template_of

IAM_TABLE = Path(__file__).resolve().parents[1] / "snapshots" / "iam_table.json"
ALLOWED_STAR_ACTIONS = {
    # Service requirement: these APIs have no resource-level permissions.
    "cloudwatch:PutMetricData",
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
}


def _id(stack: Stack, construct: IConstruct) -> str:
    return logical_id(construct)


def _flatten(value: Any) -> str:
    from event_driven_etl._hygiene import flatten_cfn_reference

    return flatten_cfn_reference(value)


_ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")
"""An asset's content hash: the script's object key changes with every edit of the script."""


def iam_table(stack: Stack) -> dict[str, list[str]]:
    """role logical id -> sorted 'Effect action on resource' lines of its inline policies."""
    template = template_of(stack)
    table: dict[str, set[str]] = {}
    for policy in resources_of_type(template, "AWS::IAM::Policy").values():
        for role in policy["Properties"]["Roles"]:
            lines = table.setdefault(_flatten(role), set())
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = (
                    statement["Action"]
                    if isinstance(statement["Action"], list)
                    else [statement["Action"]]
                )
                resources = (
                    statement["Resource"]
                    if isinstance(statement["Resource"], list)
                    else [statement["Resource"]]
                )
                condition = (
                    f" if {json.dumps(statement['Condition'], sort_keys=True)}"
                    if "Condition" in statement
                    else ""
                )
                for action in actions:
                    for resource in resources:
                        target = _ASSET_HASH.sub("<asset hash>", _flatten(resource))
                        lines.add(f"{statement['Effect']} {action} on {target}{condition}")
    return {role: sorted(lines) for role, lines in sorted(table.items())}


def test_every_role_permission_matches_the_reviewed_table(app: Any) -> None:
    """Any widening of a role is a visible diff of tests/snapshots/iam_table.json."""
    stacks = {}
    configurations: dict[str, dict[str, Any]] = {
        "per_object": {},
        "batching": {"batching": Batching()},
    }
    for name, props in configurations.items():
        stack = Stack(app, f"Iam{name.title().replace('_', '')}")
        EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="incoming/", **props)
        stacks[name] = stack
    tables = {name: iam_table(stack) for name, stack in stacks.items()}
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        IAM_TABLE.write_text(json.dumps(tables, indent=2) + "\n")
    assert tables == json.loads(IAM_TABLE.read_text())


@pytest.mark.parametrize("batching", [None, Batching()], ids=["per_object", "batching"])
def test_resource_star_only_where_the_service_requires_it(
    stack: Stack, batching: Batching | None
) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline", batching=batching)
    star_actions = set()
    for role, lines in iam_table(stack).items():
        if role.startswith("<BucketNotificationsHandler"):
            continue
        for line in lines:
            _, action, _, resource = line.split(" ", 3)
            if resource.split(" if ")[0] == "*":
                star_actions.add(action)
    assert star_actions <= ALLOWED_STAR_ACTIONS, star_actions - ALLOWED_STAR_ACTIONS


def test_no_aws_managed_policies_on_the_pipeline_roles(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline", batching=Batching())
    for role_id, role in resources_of_type(template_of(stack), "AWS::IAM::Role").items():
        if role_id.startswith("Pipeline"):
            assert "ManagedPolicyArns" not in role["Properties"], role_id


def test_buckets_are_retained_by_default(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline")
    buckets = resources_of_type(template_of(stack), "AWS::S3::Bucket")
    for bucket in (pipeline.source_bucket, pipeline.output_bucket):
        assert buckets[_id(stack, bucket)]["DeletionPolicy"] == "Retain"


def test_removal_policy_prop_applies_to_created_buckets(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", removal_policy=RemovalPolicy.DESTROY)
    buckets = resources_of_type(template_of(stack), "AWS::S3::Bucket")
    assert buckets[_id(stack, pipeline.source_bucket)]["DeletionPolicy"] == "Delete"


def test_created_buckets_log_access_to_the_access_log_bucket(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline")
    assert pipeline.access_logs_bucket is not None
    logs_id = _id(stack, pipeline.access_logs_bucket)
    buckets = resources_of_type(template_of(stack), "AWS::S3::Bucket")
    for bucket, prefix in (
        (pipeline.source_bucket, "source/"),
        (pipeline.output_bucket, "output/"),
    ):
        assert buckets[_id(stack, bucket)]["Properties"]["LoggingConfiguration"] == {
            "DestinationBucketName": {"Ref": logs_id},
            "LogFilePrefix": prefix,
        }
    assert "AccessControl" not in buckets[logs_id]["Properties"]  # delivery by bucket policy


def test_brought_access_log_bucket_is_used_and_none_is_created(stack: Stack) -> None:
    mine = s3.Bucket(stack, "MyLogs")
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", access_logs_bucket=mine)
    assert pipeline.access_logs_bucket is mine
    assert not [
        k
        for k in resources_of_type(template_of(stack), "AWS::S3::Bucket")
        if "AccessLogsBucket" in k
    ]


def test_workflow_excludes_execution_data_from_logs_unless_asked(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Quiet")
    EventDrivenEtlPipeline(stack, "Verbose", include_execution_data=True)
    machines = resources_of_type(template_of(stack), "AWS::StepFunctions::StateMachine")
    flags = {
        i: m["Properties"]["LoggingConfiguration"]["IncludeExecutionData"]
        for i, m in machines.items()
    }
    assert sorted(v for i, v in flags.items() if "Workflow" in i) == [False, True]
    # The job-state notifier never logs its input (Glue's error messages may quote data).
    assert [v for i, v in flags.items() if "JobStateNotifier" in i] == [False, False]


def test_log_retention_prop_applies_to_every_log_group(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline", log_retention=logs.RetentionDays.ONE_MONTH)
    groups = resources_of_type(template_of(stack), "AWS::Logs::LogGroup")
    assert len(groups) == 3  # trigger, workflow, job-state notifier
    assert {g["Properties"]["RetentionInDays"] for g in groups.values()} == {30}


def test_customer_key_encrypts_buckets_topic_queues_table_and_logs(stack: Stack) -> None:
    key = kms.Key(stack, "CustomerKey", enable_key_rotation=True)
    EventDrivenEtlPipeline(stack, "Pipeline", encryption_key=key, batching=Batching())
    template = template_of(stack)
    key_arn = {"Fn::GetAtt": [_id(stack, key), "Arn"]}
    buckets = resources_of_type(template, "AWS::S3::Bucket")
    for bucket_id in ("PipelineSourceBucket", "PipelineOutputBucket"):
        [bucket] = [b for k, b in buckets.items() if k.startswith(bucket_id)]
        rule = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"] == {
            "KMSMasterKeyID": key_arn,
            "SSEAlgorithm": "aws:kms",
        }
    assert only_resource(template, "AWS::SNS::Topic")["Properties"]["KmsMasterKeyId"] == key_arn
    for queue in resources_of_type(template, "AWS::SQS::Queue").values():
        assert queue["Properties"]["KmsMasterKeyId"] == key_arn
    sse = only_resource(template, "AWS::DynamoDB::Table")["Properties"]["SSESpecification"]
    assert sse["KMSMasterKeyId"] == key_arn
    for group in resources_of_type(template, "AWS::Logs::LogGroup").values():
        assert group["Properties"]["KmsKeyId"] == key_arn
    assert not [k for k in resources_of_type(template, "AWS::KMS::Key") if k.startswith("Pipeline")]


def test_customer_key_policy_admits_exactly_the_services_that_use_it(stack: Stack) -> None:
    key = kms.Key(stack, "CustomerKey")
    EventDrivenEtlPipeline(stack, "Pipeline", encryption_key=key, batching=Batching())
    policy = resources_of_type(template_of(stack), "AWS::KMS::Key")[_id(stack, key)]["Properties"][
        "KeyPolicy"
    ]
    services = {
        json.dumps(s["Principal"]["Service"])
        for s in policy["Statement"]
        if "Service" in s.get("Principal", {})
    }
    assert services == {
        '"cloudwatch.amazonaws.com"',
        '"events.amazonaws.com"',
        '{"Fn::Join": ["", ["logs.eu-west-1.", {"Ref": "AWS::URLSuffix"}]]}',
    }


def test_topic_imported_without_its_key_gets_publish_only(stack: Stack) -> None:
    topic = sns.Topic.from_topic_arn(stack, "Ops", "arn:aws:sns:eu-west-1:111111111111:ops")
    EventDrivenEtlPipeline(stack, "Pipeline", notification_topic=topic)
    table = iam_table(stack)
    workflow = next(lines for role, lines in table.items() if "Workflow" in role)
    assert "Allow sns:Publish on arn:aws:sns:eu-west-1:111111111111:ops" in workflow


def test_fails_source_bucket_in_another_account(stack: Stack) -> None:
    foreign = s3.Bucket.from_bucket_attributes(
        stack, "Foreign", bucket_name="their-raw", account="222222222222"
    )
    with pytest.raises(
        ValidationError,
        match=r"source_bucket='their-raw \(account 222222222222\)': "
        r"must be in the stack's account \(111111111111\)",
    ):
        EventDrivenEtlPipeline(stack, "Pipeline", source_bucket=foreign)


def test_fails_source_bucket_in_another_region(stack: Stack) -> None:
    foreign = s3.Bucket.from_bucket_attributes(
        stack, "Foreign", bucket_name="us-raw", region="us-east-1"
    )
    with pytest.raises(
        ValidationError, match=r"region us-east-1\)': must be in the stack's region \(eu-west-1\)"
    ):
        EventDrivenEtlPipeline(stack, "Pipeline", source_bucket=foreign)


def test_fails_alarm_topic_with_alarms_off(stack: Stack) -> None:
    with pytest.raises(ValidationError, match=r"alarm_topic=.*has no effect with alarms=False"):
        EventDrivenEtlPipeline(stack, "Pipeline", alarms=False, alarm_topic=sns.Topic(stack, "T"))

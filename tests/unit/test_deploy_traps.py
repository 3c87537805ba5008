"""What a real deployment would reject, refused or avoided at synth (issue #11)."""

from __future__ import annotations

import json

import pytest
from aws_cdk import App, BootstraplessSynthesizer, Environment, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from event_driven_etl import EventDrivenEtlPipeline, ValidationError

from ..helpers import (
    logical_id,
    only_resource,
    policy_statements,
    resources_of_type,
    template_of,
)


def test_destroy_then_deploy_meets_no_retained_fixed_name(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline")
    template = template_of(stack)
    configuration = only_resource(template, "AWS::Glue::SecurityConfiguration")
    assert configuration["DeletionPolicy"] == "Delete"
    for group in resources_of_type(template, "AWS::Logs::LogGroup").values():
        name = group["Properties"].get("LogGroupName")
        if group.get("DeletionPolicy") == "Retain" and name is not None:
            # a retained, named log group carries the stack's own id in its name
            assert "AWS::StackId" in json.dumps(name), name


def test_a_deep_construct_path_gets_a_short_unique_pipeline_name() -> None:
    app = App()
    scope: Construct = Stack(app, "Deep")
    for level in range(30):
        scope = Construct(scope, f"Level{level:02d}WithAFairlyLongDescriptiveName")
    pipeline = EventDrivenEtlPipeline(scope, "Pipeline")
    assert len(pipeline.node.path) > 300
    assert len(pipeline.pipeline_name) <= 256
    assert pipeline.pipeline_name.startswith("Deep/Level00")
    assert pipeline.state_machine.pipeline_name == pipeline.pipeline_name


def test_fails_a_bootstrapless_stack_with_a_clear_reason() -> None:
    app = App()
    stack = Stack(app, "NoAssets", synthesizer=BootstraplessSynthesizer())
    with pytest.raises(
        ValidationError, match=r"synthesizer='BootstraplessSynthesizer': cannot publish assets"
    ):
        EventDrivenEtlPipeline(stack, "Pipeline")


@pytest.mark.parametrize("region", ["cn-north-1", "us-gov-west-1"])
def test_other_partitions_get_their_own_principals_and_arns(region: str) -> None:
    from aws_cdk import Environment

    app = App()
    stack = Stack(app, "Partition", env=Environment(account="111111111111", region=region))
    EventDrivenEtlPipeline(stack, "Pipeline")
    text = json.dumps(template_of(stack).to_json())
    # CloudWatch Logs' regional principal takes the partition's domain (amazonaws.com.cn in
    # China) from AWS::URLSuffix at deploy time.
    assert f'"logs.{region}.", {{"Ref": "AWS::URLSuffix"}}' in text
    assert f"logs.{region}.amazonaws.com" not in text
    # ARNs are built from the partition, never spelled "arn:aws:" by the construct.
    assert '"arn:aws:' not in text


def test_an_imported_topic_and_key_get_warnings_naming_the_statements(stack: Stack) -> None:
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_sns as sns
    from aws_cdk.assertions import Annotations, Match

    topic = sns.Topic.from_topic_arn(stack, "Ops", "arn:aws:sns:eu-west-1:111111111111:ops")
    key = kms.Key.from_key_arn(
        stack,
        "OpsKey",
        "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    )
    EventDrivenEtlPipeline(stack, "Pipeline", notification_topic=topic, notification_topic_key=key)
    annotations = Annotations.from_stack(stack)
    annotations.has_warning(
        "/TestStack/Pipeline",
        Match.string_like_regexp(
            'notification topic is imported.*"Principal": \\{"Service": '
            '"cloudwatch.amazonaws.com"\\}.*"sns:Publish".*"aws:SourceAccount": "111111111111"'
        ),
    )
    annotations.has_warning(
        "/TestStack/Pipeline",
        Match.string_like_regexp('notification_topic_key is imported.*"kms:GenerateDataKey\\*"'),
    )


def test_a_created_topic_gets_no_such_warning(stack: Stack) -> None:
    from aws_cdk.assertions import Annotations, Match

    EventDrivenEtlPipeline(stack, "Pipeline")
    Annotations.from_stack(stack).has_no_warning("*", Match.string_like_regexp("is imported"))


def test_a_source_bucket_imported_by_name_gets_a_warning_naming_the_key_statement(
    stack: Stack,
) -> None:
    from aws_cdk import aws_s3 as s3
    from aws_cdk.assertions import Annotations, Match

    bucket = s3.Bucket.from_bucket_name(stack, "Landing", "landing-zone")
    EventDrivenEtlPipeline(stack, "Pipeline", source_bucket=bucket)
    Annotations.from_stack(stack).has_warning(
        "/TestStack/Pipeline",
        Match.string_like_regexp(
            "source bucket landing-zone is imported without its encryption key.*"
            'source_bucket_key=.*"Action": "kms:Decrypt".*"kms:ViaService": '
            '"s3.eu-west-1.amazonaws.com"'
        ),
    )


def test_source_bucket_key_lets_the_glue_role_and_writers_use_it(stack: Stack) -> None:
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3
    from aws_cdk.assertions import Annotations, Match

    bucket = s3.Bucket.from_bucket_name(stack, "Landing", "landing-zone")
    key_arn = "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    key = kms.Key.from_key_arn(stack, "LandingKey", key_arn)
    pipeline = EventDrivenEtlPipeline(
        stack, "Pipeline", source_bucket=bucket, source_bucket_key=key
    )
    uploader = iam.Role(stack, "Uploader", assumed_by=iam.AccountRootPrincipal())
    pipeline.grant_write_source(uploader)
    template = template_of(stack)
    glue_actions = {
        (json.dumps(s["Resource"]), a)
        for s in policy_statements(template, "GlueJobRole")
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert (json.dumps(key_arn), "kms:Decrypt") in glue_actions
    uploader_actions = {
        a
        for s in policy_statements(template, "Uploader")
        if s["Resource"] == key_arn
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {"kms:Encrypt", "kms:GenerateDataKey*"} <= uploader_actions
    Annotations.from_stack(stack).has_no_warning(
        "*", Match.string_like_regexp("imported without its encryption key")
    )


def test_fails_source_bucket_key_without_a_source_bucket(stack: Stack) -> None:
    from aws_cdk import aws_kms as kms

    key = kms.Key(stack, "Key")
    with pytest.raises(ValidationError, match=r"source_bucket_key=.*is for a source_bucket you"):
        EventDrivenEtlPipeline(stack, "Pipeline", source_bucket_key=key)


@pytest.mark.parametrize("batched", [False, True], ids=["per_object", "batching"])
def test_eventbridge_keeps_its_scoped_key_grant_in_every_mode(stack: Stack, batched: bool) -> None:
    """EventBridge writes to the (KMS-encrypted) dead-letter and event queues: with a
    customer key and a topic the user brings, the key must still let it, from this account."""
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_sns as sns

    from event_driven_etl import Batching

    key = kms.Key(stack, "CustomerKey")
    topic = sns.Topic(stack, "Ops")
    EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        encryption_key=key,
        notification_topic=topic,
        batching=Batching() if batched else None,
    )
    policy = resources_of_type(template_of(stack), "AWS::KMS::Key")[logical_id(key)]["Properties"][
        "KeyPolicy"
    ]
    [events] = [
        s for s in policy["Statement"] if s.get("Principal") == {"Service": "events.amazonaws.com"}
    ]
    # AWS does not support aws:SourceAccount/aws:SourceArn in key policies for EventBridge:
    # the statement is scoped by SQS's encryption context to this account's queues.
    assert events["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:sqs:arn": {
                "Fn::Join": [
                    "",
                    ["arn:", {"Ref": "AWS::Partition"}, ":sqs:eu-west-1:111111111111:*"],
                ]
            }
        }
    }
    assert sorted(events["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_cdks_notifications_handler_is_tidied_in_each_stack_that_has_one(app: App) -> None:
    """The first pipeline of stack A watches a bucket of stack B (whose handler is in B); the
    second creates its own bucket, and with it a handler in A: that one is tidied too."""
    env = Environment(account="111111111111", region="eu-west-1")
    raw = s3.Bucket(Stack(app, "B", env=env), "Raw")
    stack = Stack(app, "A", env=env)
    EventDrivenEtlPipeline(stack, "Watching", source_bucket=raw, key_prefix="in/")
    EventDrivenEtlPipeline(stack, "Own")
    functions = resources_of_type(template_of(stack), "AWS::Lambda::Function")
    [handler] = [f for k, f in functions.items() if k.startswith("BucketNotificationsHandler")]
    skipped = [s["id"] for s in handler["Metadata"]["checkov"]["skip"]]
    assert skipped == ["CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117"]
    assert "DependsOn" not in handler  # on its role, which Fn::GetAtt names already (W3005)

"""Ingestion at scale on the template: per-object hardening, batching queue, DLQs, warnings."""

from __future__ import annotations

import json

from aws_cdk import Duration, Stack
from aws_cdk.assertions import Annotations, Match
from constructs import IConstruct

from event_driven_etl import Batching, EventDrivenEtlPipeline
from tests.helpers import (
    logical_id,
    only_resource,
    policy_statements,
    resources_of_type,
    template_of,
)


def _id(stack: Stack, construct: IConstruct) -> str:
    return logical_id(construct)


def test_per_object_mode_retries_then_dead_letters_async_invocations(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline")
    dlq = _id(stack, pipeline.trigger.dead_letter_queue)
    config = only_resource(template_of(stack), "AWS::Lambda::EventInvokeConfig")["Properties"]
    assert config["MaximumRetryAttempts"] == 2
    assert config["MaximumEventAgeInSeconds"] == 6 * 3600
    assert config["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": [dlq, "Arn"]}}
    }


def test_per_object_rule_target_has_its_own_retry_policy_and_dead_letter_queue(
    stack: Stack,
) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline")
    dlq = _id(stack, pipeline.trigger.dead_letter_queue)
    rule = next(
        r
        for r in resources_of_type(template_of(stack), "AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"]["source"] == ["aws.s3"]
    )
    [target] = rule["Properties"]["Targets"]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq, "Arn"]}}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    assert target["Arn"] == {"Fn::GetAtt": [_id(stack, pipeline.trigger.function), "Arn"]}


def test_batching_puts_an_encrypted_queue_with_dead_letter_queue_before_the_function(
    stack: Stack,
) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", batching=Batching(max_batch_size=500))
    template = template_of(stack)
    assert pipeline.trigger.queue is not None
    queue = resources_of_type(template, "AWS::SQS::Queue")[_id(stack, pipeline.trigger.queue)][
        "Properties"
    ]
    dlq = _id(stack, pipeline.trigger.dead_letter_queue)
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
        "maxReceiveCount": 5,
    }
    assert queue["VisibilityTimeout"] == 6 * 300  # six times the 5-minute function timeout
    assert "KmsMasterKeyId" in queue
    function = resources_of_type(template, "AWS::Lambda::Function")[
        _id(stack, pipeline.trigger.function)
    ]
    assert function["Properties"]["Timeout"] == 300
    rule = next(
        r
        for r in resources_of_type(template, "AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"]["source"] == ["aws.s3"]
    )
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [_id(stack, pipeline.trigger.queue), "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq, "Arn"]}}


def test_batching_event_source_reports_batch_item_failures(stack: Stack) -> None:
    EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        batching=Batching(max_batch_size=1000, max_batching_window=Duration.seconds(90)),
    )
    mapping = only_resource(template_of(stack), "AWS::Lambda::EventSourceMapping")["Properties"]
    assert mapping["BatchSize"] == 1000
    assert mapping["MaximumBatchingWindowInSeconds"] == 90
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_batching_has_no_async_invoke_config(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline", batching=Batching())
    assert resources_of_type(template_of(stack), "AWS::Lambda::EventInvokeConfig") == {}


def test_batching_dedup_table_remembers_taken_objects_for_a_while(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", batching=Batching())
    assert pipeline.trigger.dedup_table is not None
    table = only_resource(template_of(stack), "AWS::DynamoDB::Table")["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_batching_function_may_write_marks_and_manifests_only(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", batching=Batching())
    template = template_of(stack)
    function = resources_of_type(template, "AWS::Lambda::Function")[
        _id(stack, pipeline.trigger.function)
    ]
    variables = function["Properties"]["Environment"]["Variables"]
    assert pipeline.trigger.dedup_table is not None
    assert variables["DEDUP_TABLE"] == {"Ref": _id(stack, pipeline.trigger.dedup_table)}
    assert variables["MANIFEST_BUCKET"] == {"Ref": _id(stack, pipeline.output_bucket)}
    assert variables["MANIFEST_PREFIX"] == "manifests/"
    statements = policy_statements(template, "PipelineTriggerRole")
    dynamo = next(s for s in statements if "dynamodb:PutItem" in json.dumps(s["Action"]))
    assert sorted(dynamo["Action"]) == [
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ]
    puts = [s for s in statements if "s3:PutObject" in json.dumps(s["Action"])]
    assert puts and all("/manifests/*" in json.dumps(s["Resource"]) for s in puts)


def test_manifests_expire(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", batching=Batching())
    bucket = resources_of_type(template_of(stack), "AWS::S3::Bucket")[
        _id(stack, pipeline.output_bucket)
    ]
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert {
        "Id": "ExpireManifests",
        "Prefix": "manifests/",
        "ExpirationInDays": 30,
        "Status": "Enabled",
    } in rules


def test_warns_at_synth_when_one_glue_run_meets_per_object_mode(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline", max_concurrent_runs=1)
    Annotations.from_stack(stack).has_warning(
        "/TestStack/Pipeline",
        Match.string_like_regexp("max_concurrent_runs=1 with one execution per object"),
    )


def test_no_warning_with_batching_or_more_concurrency(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Batched", max_concurrent_runs=1, batching=Batching())
    EventDrivenEtlPipeline(stack, "Default")
    Annotations.from_stack(stack).has_no_warning(
        "*", Match.string_like_regexp("max_concurrent_runs=1")
    )


def test_glue_job_run_queuing_is_on_by_default_except_with_flex(stack: Stack) -> None:
    from aws_cdk import aws_glue as glue

    EventDrivenEtlPipeline(stack, "Pipeline")
    EventDrivenEtlPipeline(stack, "Flex", execution_class=glue.ExecutionClass.FLEX)
    EventDrivenEtlPipeline(stack, "Off", job_run_queuing=False)
    jobs = template_of(stack).find_resources("AWS::Glue::Job")
    queuing = {
        logical_id.split("GlueJob")[0]: job["Properties"]["JobRunQueuingEnabled"]
        for logical_id, job in jobs.items()
    }
    assert queuing == {"Pipeline": True, "Flex": False, "Off": False}


def test_only_the_object_created_rule_may_send_to_the_event_queue(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline", batching=Batching())
    template = template_of(stack)
    rule_id = next(
        lid
        for lid, r in resources_of_type(template, "AWS::Events::Rule").items()
        if "ObjectCreatedRule" in lid
    )
    events_statements = [
        (lid, statement)
        for lid, p in resources_of_type(template, "AWS::SQS::QueuePolicy").items()
        for statement in p["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Principal") == {"Service": "events.amazonaws.com"}
    ]
    # Every queue EventBridge writes to admits it only for a named rule of the pipeline.
    for _lid, statement in events_statements:
        assert statement["Effect"] == "Allow"
        [source] = statement["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][:1]
        assert resources_of_type(template, "AWS::Events::Rule").get(source) is not None
    event_queue = [st for lid, st in events_statements if "EventQueue" in lid]
    assert [st["Condition"]["ArnEquals"]["aws:SourceArn"] for st in event_queue] == [
        {"Fn::GetAtt": [rule_id, "Arn"]}
    ]

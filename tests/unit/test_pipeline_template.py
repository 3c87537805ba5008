"""The behaviour contract of DESIGN.md, asserted on the synthesized template."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match

from event_driven_etl import EventDrivenEtlPipeline, RetryPolicy
from event_driven_etl.state_machine import _CONCURRENCY_ERRORS, _TRANSIENT_ERRORS
from tests.helpers import (
    assembly_of,
    logical_id,
    only_resource,
    policy_statements,
    resources_of_type,
    state_machine_definition,
    template_of,
)


def _pipeline(stack: Stack, **props: Any) -> EventDrivenEtlPipeline:
    return EventDrivenEtlPipeline(stack, "Pipeline", **props)


def _rule_pattern(stack: Stack) -> dict[str, Any]:
    rules = resources_of_type(template_of(stack), "AWS::Events::Rule")
    created = [r for r in rules.values() if r["Properties"]["EventPattern"]["source"] == ["aws.s3"]]
    assert len(created) == 1
    return dict(created[0]["Properties"]["EventPattern"])


# ---------------------------------------------------------------- trigger Lambda


def test_trigger_environment_names_the_real_state_machine(stack: Stack) -> None:
    pipeline = _pipeline(stack)
    template = template_of(stack)
    machine_id = logical_id(pipeline.state_machine.state_machine)
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "handler.handler",
            "Environment": {
                "Variables": Match.object_like({"STATE_MACHINE_ARN": {"Ref": machine_id}})
            },
        },
    )
    assert "arn:aws:states:region" not in json.dumps(template.to_json())


def test_trigger_runs_latest_python_on_arm64(stack: Stack) -> None:
    _pipeline(stack)
    template_of(stack).has_resource_properties(
        "AWS::Lambda::Function",
        {"Runtime": "python3.14", "Architectures": ["arm64"], "Handler": "handler.handler"},
    )


def test_trigger_role_may_start_only_this_state_machine(stack: Stack) -> None:
    pipeline = _pipeline(stack)
    template = template_of(stack)
    machine_id = logical_id(pipeline.state_machine.state_machine)
    statements = policy_statements(template, "PipelineTriggerRole")
    start = [s for s in statements if "states:StartExecution" in json.dumps(s["Action"])]
    assert start == [
        {"Action": "states:StartExecution", "Effect": "Allow", "Resource": {"Ref": machine_id}}
    ]
    assert all(s["Resource"] != "*" for s in statements)


def test_trigger_function_has_no_managed_policies(stack: Stack) -> None:
    _pipeline(stack)
    for role_id, role in resources_of_type(template_of(stack), "AWS::IAM::Role").items():
        if role_id.startswith("Pipeline"):
            assert "ManagedPolicyArns" not in role["Properties"], role_id


# ---------------------------------------------------------------- event rule


def test_rule_matches_object_created_in_the_source_bucket_only(stack: Stack) -> None:
    pipeline = _pipeline(stack)
    pattern = _rule_pattern(stack)
    bucket_id = logical_id(pipeline.source_bucket)
    assert pattern == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [{"Ref": bucket_id}]}},
    }


def test_rule_with_prefix_matches_the_prefix(stack: Stack) -> None:
    _pipeline(stack, key_prefix="incoming/")
    assert _rule_pattern(stack)["detail"]["object"] == {"key": [{"prefix": "incoming/"}]}


def test_rule_with_suffix_matches_the_suffix(stack: Stack) -> None:
    _pipeline(stack, key_suffix=".csv")
    assert _rule_pattern(stack)["detail"]["object"] == {"key": [{"suffix": ".csv"}]}


def test_rule_with_prefix_and_suffix_requires_both(stack: Stack) -> None:
    _pipeline(stack, key_prefix="incoming/", key_suffix=".csv")
    matchers = _rule_pattern(stack)["detail"]["object"]["key"]
    # One matcher: two entries in one array would mean OR.
    assert matchers == [{"wildcard": "incoming/*.csv"}]


def test_rule_filters_match_the_url_encoded_key_of_events(stack: Stack) -> None:
    _pipeline(stack, key_prefix="raw data/", key_suffix=".csv")
    assert _rule_pattern(stack)["detail"]["object"] == {"key": [{"wildcard": "raw+data/*.csv"}]}


def test_source_bucket_sends_events_to_eventbridge(stack: Stack) -> None:
    _pipeline(stack)
    template_of(stack).has_resource_properties(
        "Custom::S3BucketNotifications",
        {"NotificationConfiguration": {"EventBridgeConfiguration": {}}},
    )


def test_brought_bucket_gets_eventbridge_notifications_and_no_extra_source_bucket(
    stack: Stack,
) -> None:
    mine = s3.Bucket(stack, "Mine")
    _pipeline(stack, source_bucket=mine)
    template = template_of(stack)
    template.has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "BucketName": {"Ref": logical_id(mine)},
            "NotificationConfiguration": {"EventBridgeConfiguration": {}},
        },
    )
    buckets = resources_of_type(template, "AWS::S3::Bucket")
    assert not [b for b in buckets if b.startswith("PipelineSourceBucket")]


def test_imported_bucket_gets_eventbridge_notifications(stack: Stack) -> None:
    imported = s3.Bucket.from_bucket_name(stack, "Imported", "existing-raw-bucket")
    _pipeline(stack, source_bucket=imported)
    template_of(stack).has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "BucketName": "existing-raw-bucket",
            "NotificationConfiguration": {"EventBridgeConfiguration": {}},
        },
    )
    assert _rule_pattern(stack)["detail"] == {"bucket": {"name": ["existing-raw-bucket"]}}


# ---------------------------------------------------------------- buckets


def test_created_buckets_are_private_encrypted_tls_only(stack: Stack) -> None:
    _pipeline(stack)
    template = template_of(stack)
    buckets = resources_of_type(template, "AWS::S3::Bucket")
    for bucket_id in ("PipelineSourceBucket", "PipelineOutputBucket"):
        [bucket] = [b for k, b in buckets.items() if k.startswith(bucket_id)]
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert "LoggingConfiguration" in props
        assert bucket["DeletionPolicy"] == "Retain"
    for policy in resources_of_type(template, "AWS::S3::BucketPolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny"
            and s.get("Condition", {}).get("Bool") == {"aws:SecureTransport": "false"}
            for s in statements
        )


def test_source_bucket_is_versioned(stack: Stack) -> None:
    _pipeline(stack)
    [source] = [
        b
        for k, b in resources_of_type(template_of(stack), "AWS::S3::Bucket").items()
        if k.startswith("PipelineSourceBucket")
    ]
    assert source["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


# ---------------------------------------------------------------- workflow


def test_glue_task_waits_for_the_job_with_sync(stack: Stack) -> None:
    _pipeline(stack)
    states = state_machine_definition(template_of(stack))["States"]
    task = states["Run Glue job"]
    assert task["Resource"].endswith(":states:::glue:startJobRun.sync")
    assert task["Next"] == "Read run report"
    # The report is read over the outcome's defaults, then its fields: a report without one
    # (your own script's) keeps the default instead of failing the Pass state.
    assert states["Read run report"]["Next"] == "Complete run report"
    assert states["Complete run report"]["Next"] == "Read outcome"
    assert states["Read outcome"]["Next"] == "Notify success"


def test_the_run_report_is_read_into_the_success_notification(stack: Stack) -> None:
    _pipeline(stack)
    states = state_machine_definition(template_of(stack))["States"]
    read = states["Read run report"]
    assert read["Resource"].endswith(":states:::aws-sdk:s3:getObject")
    assert read["Parameters"]["Key.$"] == (
        "States.Format('processed/_runs/{}.summary.json', $$.Execution.Name)"
    )
    # No report (your own script): notify with the defaults; any other error fails the run.
    assert read["Catch"] == [
        {
            "ErrorEquals": ["S3.NoSuchKeyException"],
            "ResultPath": None,
            "Next": "Notify success",
        },
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Glue run failed?"},
    ]
    message = states["Notify success"]["Parameters"]["Message"]
    assert message["skipped.$"] == "$.outcome.skipped"
    assert message["quarantined.$"] == "$.outcome.quarantined"
    assert message["rows.$"] == "$.outcome.rows"


def test_a_failed_run_is_notified_with_the_reports_cause(stack: Stack) -> None:
    _pipeline(stack)
    states = state_machine_definition(template_of(stack))["States"]
    assert states["Read failed run"]["Next"] == "Read failure report"
    read = states["Read failure report"]
    assert read["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Notify failure"}
    ]
    assert read["Next"] == "Complete failure report"
    assert states["Complete failure report"]["Next"] == "Report names the cause?"
    assert states["Use report cause"]["Parameters"]["error"]["Cause.$"] == (
        "$.failure_report.report.cause"
    )
    assert states["Apply report cause"]["Next"] == "Notify failure"


def test_glue_task_receives_the_objects_as_job_arguments(stack: Stack) -> None:
    _pipeline(stack)
    arguments = state_machine_definition(template_of(stack))["States"]["Run Glue job"][
        "Parameters"
    ]["Arguments"]
    assert arguments == {
        "--objects.$": "States.JsonToString($.objects)",
        "--manifest.$": "$.manifest",
        "--batch_id.$": "$$.Execution.Name",
    }


def test_glue_task_retries_transient_errors_per_retry_policy(stack: Stack) -> None:
    _pipeline(
        stack,
        retry_policy=RetryPolicy(max_attempts=5, interval=Duration.seconds(10), backoff_rate=3),
    )
    retriers = state_machine_definition(template_of(stack))["States"]["Run Glue job"]["Retry"]
    transient = next(r for r in retriers if r["ErrorEquals"] == list(_TRANSIENT_ERRORS))
    assert transient["MaxAttempts"] == 5
    assert transient["IntervalSeconds"] == 10
    assert transient["BackoffRate"] == 3


def test_concurrent_runs_exceeded_is_retried_generously_with_jitter(stack: Stack) -> None:
    _pipeline(stack)
    retriers = state_machine_definition(template_of(stack))["States"]["Run Glue job"]["Retry"]
    concurrency = next(r for r in retriers if r["ErrorEquals"] == list(_CONCURRENCY_ERRORS))
    assert "Glue.ConcurrentRunsExceededException" in concurrency["ErrorEquals"]
    assert concurrency["JitterStrategy"] == "FULL"
    assert concurrency["MaxAttempts"] == 40
    assert concurrency["IntervalSeconds"] == 30 and concurrency["BackoffRate"] == 1.5
    assert concurrency["MaxDelaySeconds"] == 300  # the 5-minute cap
    assert retriers.index(concurrency) == 0  # before any broader matcher


def test_retry_policy_cap_and_jitter_reach_the_retrier(stack: Stack) -> None:
    policy = RetryPolicy(max_delay=Duration.seconds(90), jitter=False)
    _pipeline(stack, retry_policy=policy)
    retriers = state_machine_definition(template_of(stack))["States"]["Run Glue job"]["Retry"]
    transient = next(r for r in retriers if r["ErrorEquals"] == list(_TRANSIENT_ERRORS))
    assert transient["MaxDelaySeconds"] == 90
    assert transient["JitterStrategy"] == "NONE"


def test_failed_glue_run_is_not_retried_by_default(stack: Stack) -> None:
    _pipeline(stack)
    retriers = state_machine_definition(template_of(stack))["States"]["Run Glue job"]["Retry"]
    assert all("States.TaskFailed" not in r["ErrorEquals"] for r in retriers)
    assert all("States.ALL" not in r["ErrorEquals"] for r in retriers)


def test_failed_glue_run_is_retried_when_asked_and_only_a_failed_run(stack: Stack) -> None:
    policy = RetryPolicy(
        max_attempts=4,
        interval=Duration.seconds(10),
        backoff_rate=3,
        max_delay=Duration.seconds(100),
        retry_failed_runs=True,
    )
    _pipeline(stack, retry_policy=policy)
    states = state_machine_definition(template_of(stack))["States"]
    # No retrier on States.TaskFailed: AccessDenied or a missing job would be retried too.
    assert all("States.TaskFailed" not in r["ErrorEquals"] for r in states["Run Glue job"]["Retry"])
    assert states["Run Glue job"]["Catch"][0]["Next"] == "Retry failed run?"
    [rule] = states["Retry failed run?"]["Choices"]
    assert rule["And"] == [
        {"Variable": "$.error.Error", "StringEquals": "States.TaskFailed"},
        {"Variable": "$.error.Cause", "StringMatches": '*"JobRunState":"FAILED"*'},
        {"Variable": "$.run_retries.count", "NumericLessThan": 4},
    ]
    assert states["Retry failed run?"]["Default"] == "Glue run failed?"
    seconds = states["Schedule run retry"]["Parameters"]["seconds.$"]
    # interval x backoff, capped at max_delay, with full jitter:
    assert seconds == (
        "States.MathRandom(0, States.ArrayGetItem(States.Array(10, 30, 90, 100), "
        "$.run_retries.count))"
    )
    assert states["Wait before run retry"] == {
        "Type": "Wait",
        "SecondsPath": "$.run_retries.seconds",
        "Next": "Run Glue job",
    }


def test_any_error_is_caught_notified_and_fails_the_execution(stack: Stack) -> None:
    _pipeline(stack)
    states = state_machine_definition(template_of(stack))["States"]
    catch = states["Run Glue job"]["Catch"]
    assert catch == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Glue run failed?"}
    ]
    assert states["No Glue run"]["Next"] == "Notify failure"
    assert states["Notify failure"]["Next"] == "Failed"
    assert states["Failed"]["Type"] == "Fail"


def test_success_notification_comes_after_the_job_and_ends_the_execution(stack: Stack) -> None:
    _pipeline(stack)
    states = state_machine_definition(template_of(stack))["States"]
    assert states["Notify success"]["Resource"].endswith(":states:::sns:publish")
    assert states["Notify success"]["End"] is True


def test_notifications_carry_the_contract_fields_and_status_attribute(stack: Stack) -> None:
    _pipeline(stack)
    states = state_machine_definition(template_of(stack))["States"]
    success = states["Notify success"]["Parameters"]
    failure = states["Notify failure"]["Parameters"]
    assert success["Message"]["pipeline"] == "TestStack/Pipeline"
    assert success["Message"]["status"] == "SUCCEEDED"
    assert success["Message"]["execution.$"] == "$$.Execution.Id"
    assert success["Message"]["objects.$"] == "$.objects"
    assert success["Message"]["glue_job_run_id.$"] == "$.glue.Id"
    assert success["MessageAttributes"] == {
        "status": {"DataType": "String", "StringValue": "SUCCEEDED"}
    }
    assert failure["Message"]["status"] == "FAILED"
    assert failure["Message"]["error.$"] == "$.error.Error"
    assert failure["Message"]["cause.$"] == "$.error.Cause"
    assert failure["MessageAttributes"] == {
        "status": {"DataType": "String", "StringValue": "FAILED"}
    }


def test_pipeline_name_overrides_the_construct_path(stack: Stack) -> None:
    _pipeline(stack, pipeline_name="orders-ingest")
    message = state_machine_definition(template_of(stack))["States"]["Notify success"][
        "Parameters"
    ]["Message"]
    assert message["pipeline"] == "orders-ingest"


def test_workflow_has_timeout_logging_all_and_tracing(stack: Stack) -> None:
    _pipeline(stack)
    template = template_of(stack)
    machines = resources_of_type(template, "AWS::StepFunctions::StateMachine")
    [machine] = [m["Properties"] for i, m in machines.items() if "Workflow" in i]
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert state_machine_definition(template)["TimeoutSeconds"] == 12 * 3600
    groups = resources_of_type(template, "AWS::Logs::LogGroup")
    names = [json.dumps(g["Properties"].get("LogGroupName", "")) for g in groups.values()]
    assert any('"/aws/vendedlogs/states/' in n for n in names)


def test_workflow_role_may_use_the_topic_key(stack: Stack) -> None:
    pipeline = _pipeline(stack)
    key_id = logical_id(pipeline.encryption_key)
    statements = policy_statements(template_of(stack), "PipelineWorkflowStateMachineRole")
    kms = [s for s in statements if "kms:GenerateDataKey*" in json.dumps(s["Action"])]
    assert kms and kms[0]["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert any(s["Action"] == "sns:Publish" for s in statements)


def test_brought_topic_with_its_key_gets_publish_and_key_grants(stack: Stack) -> None:
    from aws_cdk import aws_kms as kms

    key = kms.Key.from_key_arn(stack, "TopicKey", "arn:aws:kms:eu-west-1:111111111111:key/abc")
    topic = sns.Topic.from_topic_arn(stack, "Topic", "arn:aws:sns:eu-west-1:111111111111:ops")
    _pipeline(stack, notification_topic=topic, notification_topic_key=key)
    statements = policy_statements(template_of(stack), "PipelineWorkflowStateMachineRole")
    assert {
        "Action": "sns:Publish",
        "Effect": "Allow",
        "Resource": "arn:aws:sns:eu-west-1:111111111111:ops",
    } in statements
    assert any(s["Resource"] == "arn:aws:kms:eu-west-1:111111111111:key/abc" for s in statements)


# ---------------------------------------------------------------- topic


def test_created_topic_is_kms_encrypted_and_tls_only(stack: Stack) -> None:
    _pipeline(stack)
    template = template_of(stack)
    topic = only_resource(template, "AWS::SNS::Topic")
    assert "KmsMasterKeyId" in topic["Properties"]
    policy = only_resource(template, "AWS::SNS::TopicPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s.get("Condition", {}).get("Bool") == {"aws:SecureTransport": "false"} for s in statements
    )


# ---------------------------------------------------------------- Glue job


def test_glue_job_is_glue_5_1_pyspark_with_no_glue_retries(stack: Stack) -> None:
    _pipeline(stack)
    job = only_resource(template_of(stack), "AWS::Glue::Job")["Properties"]
    assert job["GlueVersion"] == "5.1"
    assert "ExecutionClass" not in job or job["ExecutionClass"] == "STANDARD"
    assert job["DefaultArguments"]["--enable-auto-scaling"] == "true"
    assert job["Command"]["Name"] == "glueetl"
    assert job["MaxRetries"] == 0
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 10}
    assert job["WorkerType"] == "G.1X"
    assert job["NumberOfWorkers"] == 2
    assert job["Timeout"] == 60
    assert "SecurityConfiguration" in job


def test_glue_job_tuning_props_reach_the_job(stack: Stack) -> None:
    from aws_cdk import aws_glue as glue

    _pipeline(
        stack,
        worker_type=glue.WorkerType.G_2X,
        number_of_workers=5,
        job_timeout=Duration.minutes(30),
        max_concurrent_runs=25,
        job_run_queuing=True,
        extra_job_arguments={"--target_table": "orders"},
    )
    job = only_resource(template_of(stack), "AWS::Glue::Job")["Properties"]
    assert (job["WorkerType"], job["NumberOfWorkers"], job["Timeout"]) == ("G.2X", 5, 30)
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 25}
    assert job["JobRunQueuingEnabled"] is True
    assert job["DefaultArguments"]["--target_table"] == "orders"


def test_glue_job_writes_to_the_output_bucket(stack: Stack) -> None:
    pipeline = _pipeline(stack)
    out_id = logical_id(pipeline.output_bucket)
    job = only_resource(template_of(stack), "AWS::Glue::Job")["Properties"]
    assert job["DefaultArguments"]["--output_path"] == {
        "Fn::Join": ["", ["s3://", {"Ref": out_id}, "/processed/"]]
    }


def test_glue_role_is_least_privilege(stack: Stack) -> None:
    _pipeline(stack, key_prefix="incoming/")
    template = template_of(stack)
    role = next(
        r
        for k, r in resources_of_type(template, "AWS::IAM::Role").items()
        if k.startswith("PipelineGlueJobRole")
    )
    assert "ManagedPolicyArns" not in role["Properties"]
    statements = policy_statements(template, "PipelineGlueJobRole")
    text = json.dumps(statements)
    assert "/incoming/*" in text  # source reads limited to the prefix
    assert "/processed/*" in text
    wildcard = [s for s in statements if s["Resource"] == "*"]
    assert wildcard == [
        {
            "Action": "cloudwatch:PutMetricData",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "Glue"}},
            "Effect": "Allow",
            "Resource": "*",
            "Sid": "PublishGlueMetrics",
        }
    ]


def test_glue_security_configuration_encrypts_logs_and_bookmarks(stack: Stack) -> None:
    _pipeline(stack)
    config = only_resource(template_of(stack), "AWS::Glue::SecurityConfiguration")
    encryption = config["Properties"]["EncryptionConfiguration"]
    assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert encryption["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
    assert encryption["S3Encryptions"][0]["S3EncryptionMode"] in {"SSE-S3", "SSE-KMS"}


def test_built_in_script_is_the_default(stack: Stack) -> None:
    from pathlib import Path

    from event_driven_etl.glue_job import _BUILT_IN_SCRIPT

    _pipeline(stack)
    job = only_resource(template_of(stack), "AWS::Glue::Job")["Properties"]
    location = job["Command"]["ScriptLocation"]
    asset_name = location.rsplit("/", 1)[-1]
    outdir = Path(assembly_of(stack).directory)
    assert (outdir / f"asset.{asset_name}").read_bytes() == _BUILT_IN_SCRIPT.read_bytes()


def test_both_notifications_retry_a_throttled_or_failing_publish(stack: Stack) -> None:
    _pipeline(stack)
    states = state_machine_definition(template_of(stack))["States"]
    for name in ("Notify success", "Notify failure"):
        [retrier] = states[name]["Retry"]
        assert {"SNS.ThrottlingException", "SNS.KMSThrottlingException"} <= set(
            retrier["ErrorEquals"]
        )
        assert retrier["MaxAttempts"] == 6 and retrier["JitterStrategy"] == "FULL"
        assert retrier["MaxDelaySeconds"] == 60


def test_a_failed_runs_cause_is_read_only_when_whole(stack: Stack) -> None:
    """Step Functions cuts a cause at 32,768 characters; a cut JSON must not be parsed."""
    from event_driven_etl._contract import INLINE_LIMIT_BYTES

    _pipeline(stack)
    template = template_of(stack)
    choice = state_machine_definition(template)["States"]["Glue run failed?"]
    [rule] = choice["Choices"]
    patterns = [c.get("StringMatches") for c in rule["And"]]
    assert '{*"JobRunState"*}' in patterns
    # The handler and the construct agree on one inline limit, well under the cause limit.
    [function] = [
        f
        for lid, f in resources_of_type(template, "AWS::Lambda::Function").items()
        if lid.startswith("PipelineTriggerFunction")
    ]
    assert function["Properties"]["Environment"]["Variables"]["INLINE_LIMIT_BYTES"] == str(
        INLINE_LIMIT_BYTES
    )
    assert 2 * INLINE_LIMIT_BYTES < 32_768

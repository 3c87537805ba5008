"""The synth benchmark's baseline: the same resources as one EventDrivenEtlPipeline (defaults),
written by hand with aws-cdk-lib's L2 constructs and no library code in between."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "event_driven_etl"


def _bucket(scope: Construct, name: str, **extra: object) -> s3.Bucket:
    return s3.Bucket(
        scope,
        name,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        removal_policy=RemovalPolicy.RETAIN,
        **extra,  # type: ignore[arg-type]
    )


def add_handwritten_pipeline(stack: Stack, prefix: str) -> None:
    """One pipeline's resources under ``prefix`` (so N of them fit in one stack)."""
    scope = Construct(stack, prefix)
    key = kms.Key(scope, "Key", enable_key_rotation=True)
    access_logs = _bucket(scope, "AccessLogs", versioned=True)
    source = _bucket(
        scope,
        "Source",
        versioned=True,
        event_bridge_enabled=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix="source/",
    )
    output = _bucket(
        scope,
        "Output",
        versioned=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix="output/",
    )
    topic = sns.Topic(scope, "Topic", master_key=key, enforce_ssl=True)

    glue_role = iam.Role(scope, "GlueRole", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"))
    source.grant_read(glue_role, "incoming/*")
    output.grant_read_write(glue_role, "processed/*")
    key.grant_encrypt_decrypt(glue_role)
    security = glue.SecurityConfiguration(
        scope,
        "Security",
        s3_encryption=glue.S3Encryption.s3_managed(),
        cloud_watch_encryption=glue.CloudWatchEncryption.kms(key),
        job_bookmarks_encryption=glue.JobBookmarksEncryption.client_side_kms(key),
    )
    job = glue.PySparkEtlJob(
        scope,
        "Job",
        role=glue_role,
        script=glue.Code.from_asset(str(PACKAGE / "runtime" / "glue" / "etl_job.py")),
        glue_version=glue.GlueVersion.V5_0,
        worker_configuration=glue.WorkerConfiguration(
            worker_type=glue.WorkerType.G_1X, number_of_workers=2
        ),
        max_retries=0,
        max_concurrent_runs=10,
        security_configuration=security,
        default_arguments={"--output_path": f"s3://{output.bucket_name}/processed/"},
    )

    run = tasks.GlueStartJobRun(
        scope,
        "Run Glue job",
        glue_job_name=job.job_name,
        integration_pattern=sfn.IntegrationPattern.RUN_JOB,
        arguments=sfn.TaskInput.from_object(
            {"--objects": sfn.JsonPath.json_to_string(sfn.JsonPath.list_at("$.objects"))}
        ),
        result_path="$.glue",
    )
    run.add_retry(
        errors=["Glue.ConcurrentRunsExceededException"],
        max_attempts=40,
        jitter_strategy=sfn.JitterType.FULL,
    )
    run.add_retry(errors=["Glue.ThrottlingException"], max_attempts=3)
    success = tasks.SnsPublish(
        scope,
        "Notify success",
        topic=topic,
        message=sfn.TaskInput.from_object({"status": "SUCCEEDED"}),
    )
    failure = tasks.SnsPublish(
        scope,
        "Notify failure",
        topic=topic,
        message=sfn.TaskInput.from_object({"status": "FAILED"}),
    )
    details = sfn.Choice(scope, "Glue run failed?")
    details.when(
        sfn.Condition.string_equals("$.error.Error", "States.TaskFailed"),
        sfn.Pass(
            scope, "Read failed run", parameters={"run.$": "States.StringToJson($.error.Cause)"}
        ),
    ).otherwise(sfn.Pass(scope, "No Glue run"))
    details.afterwards().next(failure).next(sfn.Fail(scope, "Failed"))
    run.add_catch(details, result_path="$.error")
    log_group = logs.LogGroup(scope, "WorkflowLogs", retention=logs.RetentionDays.ONE_YEAR)
    machine = sfn.StateMachine(
        scope,
        "Workflow",
        definition_body=sfn.DefinitionBody.from_chainable(run.next(success)),
        timeout=Duration.hours(12),
        tracing_enabled=True,
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL),
    )
    topic.grant_publish(machine)

    dlq = sqs.Queue(
        scope,
        "DeadLetters",
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
    )
    function = lambda_.Function(
        scope,
        "Trigger",
        runtime=lambda_.Runtime.PYTHON_3_14,
        architecture=lambda_.Architecture.ARM_64,
        handler="handler.handler",
        code=lambda_.Code.from_asset(
            str(PACKAGE / "runtime" / "trigger"), exclude=["__pycache__", "*.pyc"]
        ),
        environment={"STATE_MACHINE_ARN": machine.state_machine_arn},
        log_group=logs.LogGroup(scope, "TriggerLogs", retention=logs.RetentionDays.ONE_YEAR),
        timeout=Duration.minutes(1),
    )
    function.configure_async_invoke(retry_attempts=2, on_failure=destinations.SqsDestination(dlq))
    machine.grant_start_execution(function)
    rule = events.Rule(
        scope,
        "ObjectCreated",
        event_pattern=events.EventPattern(
            source=["aws.s3"],
            detail_type=["Object Created"],
            detail={
                "bucket": {"name": [source.bucket_name]},
                "object": {"key": [{"prefix": "incoming/"}]},
            },
        ),
    )
    rule.add_target(targets.LambdaFunction(function, dead_letter_queue=dlq, retry_attempts=185))

    action = cw_actions.SnsAction(topic)
    metrics = {
        "Failed": machine.metric_failed(),
        "TimedOut": machine.metric_timed_out(),
        "Throttled": machine.metric_throttled(),
        "Aborted": machine.metric_aborted(),
        "Errors": function.metric_errors(),
        "Throttles": function.metric_throttles(),
        "Dlq": dlq.metric_approximate_number_of_messages_visible(),
    }
    for name, metric in metrics.items():
        alarm = metric.create_alarm(
            scope,
            f"{name}Alarm",
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )
        alarm.add_alarm_action(action)
    glue_rule = events.Rule(
        scope,
        "GlueFailed",
        event_pattern=events.EventPattern(
            source=["aws.glue"],
            detail_type=["Glue Job State Change"],
            detail={"jobName": [job.job_name], "state": ["FAILED", "TIMEOUT", "ERROR"]},
        ),
    )
    glue_rule.add_target(targets.SnsTopic(topic))

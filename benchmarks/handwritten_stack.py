"""The synth benchmark's baseline: one EventDrivenEtlPipeline (defaults) written by hand with
aws-cdk-lib's L2 constructs and no library code in between, with the same settings.

It has 38 of the pipeline's 46 resources: no Glue Data Catalog database, and its Glue
job-state rule publishes to the topic directly, so there is no Express notifier workflow (its
state machine, log group, role and the rule's role, those roles' two policies, and the alarm
on its failed executions).
tests/test_readme.py checks this difference, which the README states.
"""

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
        minimum_tls_version=1.2,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=RemovalPolicy.RETAIN,
        **extra,  # type: ignore[arg-type]
    )


def _key(scope: Construct, stack: Stack) -> kms.Key:
    key = kms.Key(scope, "Key", enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN)
    for service in ("events.amazonaws.com", "cloudwatch.amazonaws.com"):
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(service)],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"
                    )
                }
            },
        )
    )
    return key


def _notify(
    scope: Construct, name: str, topic: sns.ITopic, status: str, **fields: str
) -> tasks.SnsPublish:
    message = {
        "pipeline": scope.node.path,
        "status": status,
        "execution": sfn.JsonPath.execution_id,
        "objects": sfn.JsonPath.list_at("$.objects"),
        "manifest": sfn.JsonPath.string_at("$.manifest"),
        **{k: sfn.JsonPath.string_at(v) for k, v in fields.items()},
    }
    return tasks.SnsPublish(
        scope,
        name,
        topic=topic,
        message=sfn.TaskInput.from_object(message),
        message_attributes={"status": tasks.MessageAttribute(value=status)},
        result_path=sfn.JsonPath.DISCARD,
    )


def add_handwritten_pipeline(stack: Stack, prefix: str) -> None:
    """One pipeline's resources and settings under ``prefix`` (N of them fit in one stack)."""
    scope = Construct(stack, prefix)
    scope.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
    key = _key(scope, stack)
    access_logs = _bucket(
        scope,
        "AccessLogs",
        versioned=True,
        lifecycle_rules=[
            s3.LifecycleRule(
                expiration=Duration.days(365), noncurrent_version_expiration=Duration.days(30)
            )
        ],
    )
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
        lifecycle_rules=[
            s3.LifecycleRule(prefix="manifests/", expiration=Duration.days(30)),
            s3.LifecycleRule(
                abort_incomplete_multipart_upload_after=Duration.days(7),
                noncurrent_version_expiration=Duration.days(30),
            ),
        ],
    )
    topic = sns.Topic(scope, "Topic", master_key=key, enforce_ssl=True)

    glue_role = iam.Role(scope, "GlueRole", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"))
    source.grant_read(glue_role, "incoming/*")
    output.grant_read_write(glue_role, "processed/*")
    output.grant_read(glue_role, "manifests/*")
    key.grant_encrypt_decrypt(glue_role)
    log_groups = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws-glue/*"
    glue_role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=[
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:AssociateKmsKey",
            ],
            resources=[log_groups, f"{log_groups}:log-stream:*"],
        )
    )
    glue_role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
        )
    )
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
        timeout=Duration.hours(1),
        max_retries=0,
        max_concurrent_runs=10,
        job_run_queuing_enabled=False,
        security_configuration=security,
        default_arguments={
            "--output_path": f"s3://{output.bucket_name}/processed/",
            "--enable-glue-datacatalog": "false",
        },
        description="hand-written baseline",
    )

    normalise = sfn.Pass(
        scope,
        "Normalise input",
        parameters={"defaults": {"objects": [], "manifest": ""}, "input.$": "$"},
    )
    merge = sfn.Pass(
        scope,
        "Apply defaults",
        output_path="$.merged",
        parameters={"merged.$": "States.JsonMerge($.defaults, $.input, false)"},
    )
    run = tasks.GlueStartJobRun(
        scope,
        "Run Glue job",
        glue_job_name=job.job_name,
        integration_pattern=sfn.IntegrationPattern.RUN_JOB,
        arguments=sfn.TaskInput.from_object(
            {
                "--objects": sfn.JsonPath.json_to_string(sfn.JsonPath.list_at("$.objects")),
                "--manifest": sfn.JsonPath.string_at("$.manifest"),
            }
        ),
        result_selector={
            "Id": sfn.JsonPath.string_at("$.Id"),
            "JobRunState": sfn.JsonPath.string_at("$.JobRunState"),
        },
        result_path="$.glue",
    )
    run.add_retry(
        errors=[
            "Glue.ConcurrentRunsExceededException",
            "Glue.ResourceNumberLimitExceededException",
        ],
        max_attempts=40,
        interval=Duration.seconds(30),
        backoff_rate=1.5,
        max_delay=Duration.minutes(5),
        jitter_strategy=sfn.JitterType.FULL,
    )
    run.add_retry(
        errors=[
            "Glue.ThrottlingException",
            "Glue.InternalServiceException",
            "Glue.OperationTimeoutException",
            "Glue.AWSGlueException",
        ],
        max_attempts=3,
        interval=Duration.seconds(30),
        backoff_rate=2.0,
        jitter_strategy=sfn.JitterType.FULL,
    )
    success = _notify(
        scope,
        "Notify success",
        topic,
        "SUCCEEDED",
        glue_job_run_id="$.glue.Id",
        glue_job_run_state="$.glue.JobRunState",
    )
    failure = _notify(
        scope,
        "Notify failure",
        topic,
        "FAILED",
        glue_job_run_id="$.failed_run.run.Id",
        error="$.error.Error",
        cause="$.error.Cause",
    )
    details = sfn.Choice(scope, "Glue run failed?")
    details.when(
        sfn.Condition.and_(
            sfn.Condition.string_equals("$.error.Error", "States.TaskFailed"),
            sfn.Condition.string_matches("$.error.Cause", '{*"JobRunState"*'),
        ),
        sfn.Pass(
            scope,
            "Read failed run",
            result_path="$.failed_run",
            parameters={"run.$": "States.StringToJson($.error.Cause)"},
        ),
    ).otherwise(
        sfn.Pass(
            scope,
            "No Glue run",
            result_path="$.failed_run",
            parameters={"run": {"Id.$": "States.StringToJson('null')"}},
        )
    )
    details.afterwards().next(failure).next(
        sfn.Fail(
            scope,
            "Failed",
            error="EtlPipelineFailed",
            cause_path="States.Format('{}: {}', $.error.Error, $.error.Cause)",
        )
    )
    run.add_catch(details, errors=["States.ALL"], result_path="$.error")
    log_group = logs.LogGroup(
        scope,
        "WorkflowLogs",
        retention=logs.RetentionDays.ONE_YEAR,
        encryption_key=key,
        removal_policy=RemovalPolicy.RETAIN,
        log_group_name=f"/aws/vendedlogs/states/{prefix}-baseline",
    )
    machine = sfn.StateMachine(
        scope,
        "Workflow",
        definition_body=sfn.DefinitionBody.from_chainable(
            normalise.next(merge).next(run).next(success)
        ),
        timeout=Duration.hours(12),
        tracing_enabled=True,
        logs=sfn.LogOptions(
            destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False
        ),
        comment="hand-written baseline",
    )
    topic.grant_publish(machine)

    dlq = sqs.Queue(
        scope,
        "DeadLetters",
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        data_key_reuse=Duration.hours(1),
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    trigger_role = iam.Role(
        scope, "TriggerRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com")
    )
    trigger_logs = logs.LogGroup(
        scope,
        "TriggerLogs",
        retention=logs.RetentionDays.ONE_YEAR,
        encryption_key=key,
        removal_policy=RemovalPolicy.RETAIN,
    )
    function = lambda_.Function(
        scope,
        "Trigger",
        runtime=lambda_.Runtime.PYTHON_3_14,
        architecture=lambda_.Architecture.ARM_64,
        handler="handler.handler",
        code=lambda_.Code.from_asset(
            str(PACKAGE / "runtime" / "trigger"), exclude=["__pycache__", "*.pyc", "__init__.py"]
        ),
        environment={
            "STATE_MACHINE_ARN": machine.state_machine_arn,
            "INLINE_LIMIT_BYTES": "16000",
            "SOURCE_BUCKET": source.bucket_name,
        },
        role=trigger_role,
        log_group=trigger_logs,
        memory_size=256,
        timeout=Duration.minutes(1),
        description="hand-written baseline",
    )
    trigger_logs.grant_write(trigger_role)
    function.configure_async_invoke(
        retry_attempts=2,
        max_event_age=Duration.hours(6),
        on_failure=destinations.SqsDestination(dlq),
    )
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
    rule.add_target(
        targets.LambdaFunction(
            function, dead_letter_queue=dlq, retry_attempts=185, max_event_age=Duration.hours(24)
        )
    )

    action = cw_actions.SnsAction(topic)
    period = {"period": Duration.minutes(5), "statistic": "Sum"}
    metrics = {
        "Failed": machine.metric_failed(**period),  # type: ignore[arg-type]
        "TimedOut": machine.metric_timed_out(**period),  # type: ignore[arg-type]
        "Throttled": machine.metric_throttled(**period),  # type: ignore[arg-type]
        "Aborted": machine.metric_aborted(**period),  # type: ignore[arg-type]
        "Errors": function.metric_errors(**period),  # type: ignore[arg-type]
        "Throttles": function.metric_throttles(**period),  # type: ignore[arg-type]
        "Dlq": dlq.metric_approximate_number_of_messages_visible(
            period=Duration.minutes(5), statistic="Maximum"
        ),
    }
    for name, metric in metrics.items():
        alarm = metric.create_alarm(
            scope,
            f"{name}Alarm",
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"{name}: see the README's operations table",
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
    glue_rule.add_target(
        targets.SnsTopic(
            topic,
            message=events.RuleTargetInput.from_object(
                {
                    "pipeline": scope.node.path,
                    "status": "FAILED",
                    "source": "glue-job-state-change",
                    "objects": [],
                    "glue_job_run_id": events.EventField.from_path("$.detail.jobRunId"),
                    "error": f"Glue job run {events.EventField.from_path('$.detail.state')}",
                    "cause": events.EventField.from_path("$.detail.message"),
                }
            ),
        )
    )

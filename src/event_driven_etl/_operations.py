"""Alarms, the Glue job-state rule and the dashboard: what an operator watches.

Kept apart from the pipeline's wiring; the pipeline calls :func:`create_alarms`,
:func:`watch_glue_job_failures` and :func:`create_dashboard`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from . import _defaults, _hygiene, _notification
from ._contract import (
    BATCH_ID_ARGUMENT,
    EVENTBRIDGE_MAX_EVENT_AGE_SECONDS,
    EVENTBRIDGE_MAX_RETRY_ATTEMPTS,
)

ALARM_PERIOD = Duration.minutes(5)
"""Every alarm looks at 5-minute windows and fires on the first occurrence."""

GLUE_FAILED_STATES = ["FAILED", "TIMEOUT", "ERROR"]
"""Glue "Job State Change" states that count as a failed run."""


@dataclass(frozen=True)
class AlarmSpec:
    construct_id: str
    description: str
    metric: cloudwatch.IMetric


def alarm_specs(
    state_machine: sfn.IStateMachine,
    function_errors: cloudwatch.IMetric,
    function_throttles: cloudwatch.IMetric,
    dead_letter_queue: sqs.IQueue,
) -> list[AlarmSpec]:
    """The alarms every pipeline gets, each with the first thing to check."""
    return [
        AlarmSpec(
            "ExecutionsFailedAlarm",
            "An ETL workflow execution FAILED. Check the FAILED notification's error and cause, "
            "then the Glue run's logs.",
            state_machine.metric_failed(period=ALARM_PERIOD, statistic="Sum"),
        ),
        AlarmSpec(
            "ExecutionsTimedOutAlarm",
            "An ETL workflow execution TIMED OUT. Check Glue run durations and the workflow "
            "timeout.",
            state_machine.metric_timed_out(period=ALARM_PERIOD, statistic="Sum"),
        ),
        AlarmSpec(
            "ExecutionsThrottledAlarm",
            "Step Functions throttled the workflow. Check the StartExecution rate and quotas.",
            state_machine.metric_throttled(period=ALARM_PERIOD, statistic="Sum"),
        ),
        AlarmSpec(
            "ExecutionsAbortedAlarm",
            "An ETL workflow execution was ABORTED. Check who stopped it (CloudTrail).",
            state_machine.metric_aborted(period=ALARM_PERIOD, statistic="Sum"),
        ),
        AlarmSpec(
            "TriggerErrorsAlarm",
            "The trigger Lambda failed. Check its log group; failed events go to the "
            "dead-letter queue.",
            function_errors,
        ),
        AlarmSpec(
            "TriggerThrottlesAlarm",
            "The trigger Lambda was throttled. Check account concurrency.",
            function_throttles,
        ),
        AlarmSpec(
            "DeadLetterQueueAlarm",
            "Events are waiting in the dead-letter queue: they started no execution. Inspect "
            "them, fix the cause, then redrive.",
            dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=ALARM_PERIOD, statistic="Maximum"
            ),
        ),
    ]


def allow_alarms_to_publish(topic: sns.ITopic, alarms: list[cloudwatch.IAlarm]) -> None:
    """CloudWatch publishes alarm actions as ``cloudwatch.amazonaws.com``; a topic with a
    policy of its own (TLS-only, EventBridge) denies it unless the policy says so: exactly
    these alarms, from this account. (An imported topic's policy is not ours: no-op.)"""
    if not alarms:
        return
    stack = Stack.of(topic)
    alarm_stack = Stack.of(alarms[0])
    sources: list[str] = [a.alarm_arn for a in alarms]
    if alarm_stack is not stack:
        # A topic of another stack (a central alerting stack) naming the alarms' ARNs would
        # make that stack depend on this one, which depends on it for the topic: a cycle.
        # CloudFormation names the alarms "<stack name>-<id>-<suffix>": match those.
        sources = [
            alarm_stack.format_arn(
                service="cloudwatch",
                resource="alarm",
                resource_name=f"{alarm_stack.stack_name}-*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
        ]
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowThePipelinesAlarms",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": sources},
            },
        )
    )


def create_alarms(
    scope: Construct, specs: list[AlarmSpec], alarm_topic: sns.ITopic
) -> list[cloudwatch.Alarm]:
    """One alarm per spec: ALARM when the metric is above 0, notifying ``alarm_topic``."""
    action = cw_actions.SnsAction(alarm_topic)
    alarms = []
    for spec in specs:
        alarm = cloudwatch.Alarm(
            scope,
            spec.construct_id,
            metric=spec.metric,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=spec.description,
        )
        alarm.add_alarm_action(action)
        alarms.append(alarm)
    return alarms


def create_freshness_alarm(
    scope: Construct, state_machine: sfn.IStateMachine, period: Duration, alarm_topic: sns.ITopic
) -> cloudwatch.Alarm:
    """ALARM when no execution succeeded for ``period`` (missing data counts as none)."""
    alarm = cloudwatch.Alarm(
        scope,
        "FreshnessAlarm",
        metric=state_machine.metric_succeeded(period=period, statistic="Sum"),
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        alarm_description=(
            f"No ETL execution succeeded in {period.to_human_string()}. Check that data is "
            "arriving in the source bucket and that executions are not failing."
        ),
    )
    alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))
    return alarm


def watch_glue_job_failures(
    scope: Construct,
    job: glue.IJob,
    pipeline_name: str,
    topic: sns.ITopic,
    *,
    topic_key: Optional[kms.IKey],
    dead_letter_queue: sqs.IQueue,
    log_encryption_key: Optional[kms.IKey],
    log_retention: Optional[logs.RetentionDays],
    skip_workflow_runs: bool,
) -> tuple[events.Rule, sfn.StateMachine]:
    """Failed Glue runs reach ``topic`` (the alarm topic) as a FAILED notification, with the
    SNS ``status`` attribute subscribers filter on. Returns the rule and the notifier.

    With ``skip_workflow_runs`` (the alarm topic *is* the notification topic), a run the
    workflow started is not notified here: the workflow's own FAILED notification already
    names it, so one failure makes one notification. Runs started outside the workflow (by
    hand, by a Glue trigger) are always notified.

    EventBridge cannot see who started a run nor set SNS message attributes, so the rule
    starts a small Express workflow (``JobStateNotifier``): it reads the run
    (``glue:GetJobRun``), ends quietly when it skips workflow runs and the run carries the
    workflow's ``--batch_id``, and otherwise publishes. Events it cannot take land in
    ``dead_letter_queue``.
    """
    notifier = _job_state_notifier(
        scope,
        job,
        pipeline_name,
        topic,
        topic_key=topic_key,
        log_encryption_key=log_encryption_key,
        log_retention=log_retention,
        skip_workflow_runs=skip_workflow_runs,
    )
    rule = events.Rule(
        scope,
        "GlueJobFailedRule",
        description="event-driven-etl: a run of this pipeline's Glue job failed",
        event_pattern=events.EventPattern(
            source=["aws.glue"],
            detail_type=["Glue Job State Change"],
            detail={"jobName": [job.job_name], "state": GLUE_FAILED_STATES},
        ),
    )
    rule.add_target(
        targets.SfnStateMachine(
            notifier,
            dead_letter_queue=dead_letter_queue,
            retry_attempts=EVENTBRIDGE_MAX_RETRY_ATTEMPTS,
            max_event_age=Duration.seconds(EVENTBRIDGE_MAX_EVENT_AGE_SECONDS),
        )
    )
    return rule, notifier


def notifier_failed_spec(notifier: sfn.IStateMachine) -> AlarmSpec:
    """The job-state notifier failing (a denied publish, a run it cannot read) is otherwise
    unseen: its own FAILED notification is what failed."""
    return AlarmSpec(
        "JobStateNotifierFailedAlarm",
        "The notifier of failed Glue runs FAILED: a failed run was not notified. Check its "
        "log group (the topic's policy and key, glue:GetJobRun).",
        notifier.metric_failed(period=ALARM_PERIOD, statistic="Sum"),
    )


STARTED_BY_WORKFLOW = f'*"{BATCH_ID_ARGUMENT}"*'
"""A run whose arguments hold ``--batch_id`` was started (and is notified) by the workflow."""


def _job_state_notifier(
    scope: Construct,
    job: glue.IJob,
    pipeline_name: str,
    topic: sns.ITopic,
    *,
    topic_key: Optional[kms.IKey],
    log_encryption_key: Optional[kms.IKey],
    log_retention: Optional[logs.RetentionDays],
    skip_workflow_runs: bool,
) -> sfn.StateMachine:
    container = Construct(scope, "JobStateNotifier")
    publish = _publish_job_failure(container, pipeline_name, topic)
    definition: sfn.IChainable = publish
    if skip_workflow_runs:
        definition = _unless_started_by_the_workflow(container, job, publish)
    log_group = _defaults.new_state_machine_log_group(
        container, retention=log_retention, encryption_key=log_encryption_key
    )
    machine = sfn.StateMachine(
        container,
        "StateMachine",
        state_machine_type=sfn.StateMachineType.EXPRESS,
        definition_body=sfn.DefinitionBody.from_chainable(definition),
        timeout=Duration.minutes(5),
        tracing_enabled=True,
        logs=sfn.LogOptions(
            destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False
        ),
        comment=f"event-driven-etl pipeline {pipeline_name}: failed Glue runs",
    )
    topic.grant_publish(machine)
    if topic_key is not None:
        topic_key.grant(machine, "kms:Decrypt", "kms:GenerateDataKey*")
    _hygiene.depend_only_on_role_policy(machine.node.default_child, machine.role)
    _hygiene.acknowledge_necessary_wildcards(machine.role)
    return machine


def _unless_started_by_the_workflow(
    container: Construct, job: glue.IJob, publish: sfn.IChainable
) -> sfn.IChainable:
    """Read the run; end quietly when the workflow started it (its ``--batch_id``)."""
    read_run = tasks.CallAwsService(
        container,
        "Read the run",
        service="glue",
        action="getJobRun",
        parameters={
            "JobName": sfn.JsonPath.string_at("$.detail.jobName"),
            "RunId": sfn.JsonPath.string_at("$.detail.jobRunId"),
        },
        iam_resources=[job.job_arn],
        iam_action="glue:GetJobRun",
        result_selector={"text.$": "States.JsonToString($.JobRun)"},
        result_path="$.run",
    )
    # A run that cannot be read (deleted, throttled past its retries) is notified anyway.
    read_run.add_retry(errors=["Glue.ThrottlingException"], max_attempts=5)
    read_run.add_catch(publish, errors=[sfn.Errors.ALL], result_path="$.read_error")
    started_by_workflow = sfn.Choice(container, "Started by the workflow?")
    started_by_workflow.when(
        sfn.Condition.string_matches("$.run.text", STARTED_BY_WORKFLOW),
        sfn.Succeed(container, "The workflow notifies it"),
    ).otherwise(publish)
    return read_run.next(started_by_workflow)


def _publish_job_failure(
    container: Construct, pipeline_name: str, topic: sns.ITopic
) -> tasks.SnsPublish:
    """The failed run in the notification schema, with the ``status`` attribute."""
    body = _notification.message(
        pipeline_name=pipeline_name,
        status=_notification.FAILED,
        source=_notification.JOB_STATE_CHANGE_SOURCE,
        objects=[],
        manifest="",
        run={
            "glue_job_run_id": sfn.JsonPath.string_at("$.detail.jobRunId"),
            "error": sfn.JsonPath.format(
                "Glue job run {}", sfn.JsonPath.string_at("$.detail.state")
            ),
            "cause": sfn.JsonPath.string_at("$.detail.message"),
        },
    )
    return _notification.publish(container, "Notify failure", topic, body)


def create_dashboard(
    scope: Construct,
    *,
    title: str,
    objects_received: cloudwatch.IMetric,
    state_machine: sfn.IStateMachine,
    glue_job_name: str,
    trigger_errors: cloudwatch.IMetric,
    dead_letter_queue: sqs.IQueue,
) -> cloudwatch.Dashboard:
    """Objects in, executions and their outcome, Glue run time, trigger errors, DLQ depth."""
    dashboard = cloudwatch.Dashboard(scope, "Dashboard", dashboard_name=None)
    glue_elapsed = cloudwatch.Metric(
        namespace="Glue",
        metric_name="glue.driver.aggregate.elapsedTime",
        dimensions_map={"JobName": glue_job_name, "JobRunId": "ALL", "Type": "count"},
        statistic="Average",
        period=ALARM_PERIOD,
        label="Glue run time (ms)",
    )
    dashboard.add_widgets(
        cloudwatch.TextWidget(markdown=f"# ETL pipeline {title}", width=24, height=1),
    )
    dashboard.add_widgets(
        cloudwatch.GraphWidget(title="Objects received", left=[objects_received], width=8),
        cloudwatch.GraphWidget(
            title="Executions",
            left=[
                state_machine.metric_started(label="started"),
                state_machine.metric_succeeded(label="succeeded"),
                state_machine.metric_failed(label="failed"),
                state_machine.metric_timed_out(label="timed out"),
            ],
            width=8,
        ),
        cloudwatch.GraphWidget(
            title="Execution time and Glue run time",
            left=[state_machine.metric_time(label="execution time (ms)")],
            right=[glue_elapsed],
            width=8,
        ),
    )
    dashboard.add_widgets(
        cloudwatch.GraphWidget(title="Trigger errors", left=[trigger_errors], width=12),
        cloudwatch.GraphWidget(
            title="Dead-letter queue depth",
            left=[dead_letter_queue.metric_approximate_number_of_messages_visible()],
            width=12,
        ),
    )
    return dashboard


def objects_received_metric(rule: Optional[events.IRule]) -> cloudwatch.Metric:
    """Events the object-created rule matched: one per new object."""
    return cloudwatch.Metric(
        namespace="AWS/Events",
        metric_name="MatchedEvents",
        dimensions_map={"RuleName": rule.rule_name} if rule else None,
        statistic="Sum",
        period=ALARM_PERIOD,
        label="objects received",
    )

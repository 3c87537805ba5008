"""Alarms, the Glue job-state rule and the dashboard: what an operator watches.

Kept apart from the pipeline's wiring; the pipeline calls :func:`create_alarms`,
:func:`watch_glue_job_failures` and :func:`create_dashboard`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

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
    per_period = {"period": ALARM_PERIOD, "statistic": "Sum"}
    return [
        AlarmSpec(
            "ExecutionsFailedAlarm",
            "An ETL workflow execution FAILED. Check the FAILED notification's error and cause, "
            "then the Glue run's logs.",
            state_machine.metric_failed(**per_period),  # type: ignore[arg-type]
        ),
        AlarmSpec(
            "ExecutionsTimedOutAlarm",
            "An ETL workflow execution TIMED OUT. Check Glue run durations and the workflow "
            "timeout.",
            state_machine.metric_timed_out(**per_period),  # type: ignore[arg-type]
        ),
        AlarmSpec(
            "ExecutionsThrottledAlarm",
            "Step Functions throttled the workflow. Check the StartExecution rate and quotas.",
            state_machine.metric_throttled(**per_period),  # type: ignore[arg-type]
        ),
        AlarmSpec(
            "ExecutionsAbortedAlarm",
            "An ETL workflow execution was ABORTED. Check who stopped it (CloudTrail).",
            state_machine.metric_aborted(**per_period),  # type: ignore[arg-type]
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
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowThePipelinesAlarms",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": [a.alarm_arn for a in alarms]},
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
    scope: Construct, job: glue.IJob, pipeline_name: str, topic: sns.ITopic
) -> events.Rule:
    """Glue runs that fail, also ones started outside the workflow, reach the topic.

    The event is reshaped into the notification schema (``status: "FAILED"``, ``error``,
    ``cause``, ``glue_job_run_id``).
    """
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
        targets.SnsTopic(
            topic,
            message=events.RuleTargetInput.from_object(
                {
                    "pipeline": pipeline_name,
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
    return rule


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

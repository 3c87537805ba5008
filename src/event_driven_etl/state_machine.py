"""EtlStateMachine: the Step Functions workflow around one Glue job."""

from __future__ import annotations

from typing import Any, Optional

from aws_cdk import CfnResource, Duration, Names
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from . import _defaults, _nag
from ._validation import Problems
from .retry import RetryPolicy

CONCURRENCY_ERRORS = (
    "Glue.ConcurrentRunsExceededException",
    "Glue.ResourceNumberLimitExceededException",
)
"""Glue is busy: retried by ``concurrency_retry``, generously and with jitter."""

TRANSIENT_ERRORS = (
    "Glue.ThrottlingException",
    "Glue.InternalServiceException",
    "Glue.OperationTimeoutException",
    "Glue.AWSGlueException",
)
"""Throttling and Glue-side faults: retried by ``retry_policy``."""

DEFAULT_CONCURRENCY_RETRY = RetryPolicy(
    max_attempts=40,
    interval=Duration.seconds(30),
    backoff_rate=1.5,
    max_delay=Duration.minutes(5),
    jitter=True,
)
"""Outlasts a burst: up to about 3 hours of waiting in randomised steps of at most 5 minutes."""

FAILURE_ERROR = "EtlPipelineFailed"
"""The error a failed execution ends with; its cause starts with the original error name."""

_PERIOD = Duration.minutes(5)
_INPUT_DEFAULTS = {"objects": [], "manifest": ""}


class EtlStateMachine(Construct):
    """A Step Functions workflow that runs a Glue job to completion and reports the outcome.

    ``Normalise input -> Run Glue job (.sync, retried) -> Notify success``; any error is
    caught and goes ``-> Notify failure -> Failed`` so the execution ends FAILED. Both
    notifications are JSON (``pipeline``, ``status``, ``execution``, ``objects``,
    ``manifest``, ``glue_job_run_id`` and, on failure, ``error`` and ``cause``) with an SNS
    message attribute ``status``.

    Execution input: ``{"objects": ["s3://bucket/key", ...]}`` or
    ``{"manifest": "s3://bucket/manifest.jsonl"}``; the Glue job receives them as the job
    arguments ``--objects`` (a JSON list) and ``--manifest``.

    Example::

        job = glue.Job.from_job_attributes(self, "Existing", job_name="nightly")
        EtlStateMachine(self, "Workflow", glue_job=job, notification_topic=topic)
    """

    state_machine: sfn.IStateMachine
    """The workflow."""

    log_group: logs.ILogGroup
    """Execution history log group (under ``/aws/vendedlogs/states/``)."""

    pipeline_name: str
    """The ``pipeline`` field of every notification."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        glue_job: glue.IJob,
        notification_topic: sns.ITopic,
        retry_policy: Optional[RetryPolicy] = None,
        concurrency_retry: Optional[RetryPolicy] = None,
        pipeline_name: Optional[str] = None,
        timeout: Duration = Duration.hours(12),
        notification_topic_key: Optional[kms.IKey] = None,
        encryption_key: Optional[kms.IKey] = None,
        include_execution_data: bool = False,
        log_retention: logs.RetentionDays = _defaults.DEFAULT_LOG_RETENTION,
    ) -> None:
        """
        :param glue_job: The Glue job to run (yours, or ``GlueEtlJob.job``).
        :param notification_topic: Where success and failure notifications go.
        :param retry_policy: Retries on transient Glue errors. Default: ``RetryPolicy()``
        :param concurrency_retry: Retries on ``Glue.ConcurrentRunsExceededException``.
            Default: - 40 attempts, 30 s growing 1.5x to at most 5 min, full jitter
        :param pipeline_name: The ``pipeline`` field of notifications. Default: - this
            construct's path
        :param timeout: Longest an execution may take, retries included. Default: 12 hours
        :param notification_topic_key: KMS key of an encrypted topic you bring, so the workflow
            may publish to it. Default: - the topic's own key when CDK knows it
        :param encryption_key: Key for the execution log group. Default: - CloudWatch Logs'
            own encryption
        :param include_execution_data: Log execution input and output (object keys, error
            causes). Default: False
        :param log_retention: Retention of the execution log group. Default: one year
        """
        problems = Problems(f"EtlStateMachine '{construct_id}'")
        check_state_machine_props(
            problems,
            retry_policy=retry_policy,
            concurrency_retry=concurrency_retry,
            pipeline_name=pipeline_name,
            timeout=timeout,
        )
        problems.raise_if_any()
        super().__init__(scope, construct_id)
        self.pipeline_name = pipeline_name or self.node.path
        self._topic = notification_topic

        run_job = self._glue_task(
            glue_job, retry_policy or RetryPolicy(), concurrency_retry or DEFAULT_CONCURRENCY_RETRY
        )
        notify_success = self._notify(
            "Notify success",
            "SUCCEEDED",
            {
                "glue_job_run_id": sfn.JsonPath.string_at("$.glue.Id"),
                "glue_job_run_state": sfn.JsonPath.string_at("$.glue.JobRunState"),
            },
        )
        notify_failure = self._notify(
            "Notify failure",
            "FAILED",
            {
                "glue_job_run_id": sfn.JsonPath.string_at("$.failed_run.run.Id"),
                "error": sfn.JsonPath.string_at("$.error.Error"),
                "cause": sfn.JsonPath.string_at("$.error.Cause"),
            },
        )
        # Step Functions reserves "States." error names for itself, so the Fail state reports
        # its own error and keeps the original error name and cause in the cause text.
        failed = sfn.Fail(
            self,
            "Failed",
            error=FAILURE_ERROR,
            cause_path="States.Format('{}: {}', $.error.Error, $.error.Cause)",
        )
        failure_details = self._failure_details()
        failure_details.afterwards().next(notify_failure).next(failed)
        run_job.add_catch(failure_details, errors=[sfn.Errors.ALL], result_path="$.error")

        definition = self._normalise_input().next(run_job).next(notify_success)
        unique_name = Names.unique_resource_name(self, max_length=200)
        self.log_group = _defaults.new_log_group(
            self,
            "LogGroup",
            log_group_name=f"/aws/vendedlogs/states/{unique_name}",
            retention=log_retention,
            encryption_key=encryption_key,
        )
        machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ALL,
                include_execution_data=include_execution_data,
            ),
            comment=f"event-driven-etl pipeline {self.pipeline_name}",
        )
        # SnsPublish grants sns:Publish only; an encrypted topic also needs its key.
        notification_topic.grant_publish(machine)
        if notification_topic_key is not None:
            notification_topic_key.grant(machine, "kms:Decrypt", "kms:GenerateDataKey*")
        self.state_machine = machine
        machine_resource = machine.node.default_child
        if isinstance(machine_resource, CfnResource):
            _defaults.depend_only_on_role_policy(machine_resource, machine.role)
        _nag.acknowledge_necessary_wildcards(machine.role)

    # ------------------------------------------------------------------ metrics

    def metric_succeeded(self, *, period: Optional[Duration] = None) -> cloudwatch.Metric:
        """Executions that SUCCEEDED. Sum over 5 minutes by default."""
        return self.state_machine.metric_succeeded(period=period or _PERIOD, statistic="Sum")

    def metric_failed(self, *, period: Optional[Duration] = None) -> cloudwatch.Metric:
        """Executions that FAILED. Sum over 5 minutes by default."""
        return self.state_machine.metric_failed(period=period or _PERIOD, statistic="Sum")

    def metric_duration(self, *, period: Optional[Duration] = None) -> cloudwatch.Metric:
        """Execution time in milliseconds. Average over 5 minutes by default."""
        return self.state_machine.metric_time(period=period or _PERIOD, statistic="Average")

    # ------------------------------------------------------------------ states

    def _normalise_input(self) -> sfn.Chain:
        """Give ``objects`` and ``manifest`` defaults so either input form reaches the job."""
        with_defaults = sfn.Pass(
            self,
            "Normalise input",
            parameters={"defaults": _INPUT_DEFAULTS, "input.$": "$"},
        )
        merged = sfn.Pass(
            self,
            "Apply defaults",
            parameters={"merged.$": "States.JsonMerge($.defaults, $.input, false)"},
            output_path="$.merged",
        )
        return with_defaults.next(merged)

    def _glue_task(
        self, job: glue.IJob, retry: RetryPolicy, concurrency: RetryPolicy
    ) -> tasks.GlueStartJobRun:
        task = tasks.GlueStartJobRun(
            self,
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
        task.add_retry(**_retry_props(CONCURRENCY_ERRORS, concurrency))
        task.add_retry(**_retry_props(TRANSIENT_ERRORS, retry))
        if retry.retry_failed_runs:
            task.add_retry(**_retry_props((sfn.Errors.TASKS_FAILED,), retry))
        return task

    def _failure_details(self) -> sfn.Choice:
        """Find the Glue run id in the error cause when the failure is a finished Glue run."""
        choice = sfn.Choice(self, "Glue run failed?")
        from_run = sfn.Pass(
            self,
            "Read failed run",
            parameters={"run.$": "States.StringToJson($.error.Cause)"},
            result_path="$.failed_run",
        )
        no_run = sfn.Pass(
            self,
            "No Glue run",
            # JSON null: "glue_job_run_id" is null when no Glue run was started.
            parameters={"run": {"Id.$": "States.StringToJson('null')"}},
            result_path="$.failed_run",
        )
        is_run_failure = sfn.Condition.and_(
            sfn.Condition.string_equals("$.error.Error", sfn.Errors.TASKS_FAILED),
            sfn.Condition.string_matches("$.error.Cause", '{*"JobRunState"*'),
        )
        choice.when(is_run_failure, from_run).otherwise(no_run)
        return choice

    def _notify(self, state_name: str, status: str, fields: dict[str, Any]) -> tasks.SnsPublish:
        message = {
            "pipeline": self.pipeline_name,
            "status": status,
            "execution": sfn.JsonPath.execution_id,
            "objects": sfn.JsonPath.list_at("$.objects"),
            "manifest": sfn.JsonPath.string_at("$.manifest"),
            **fields,
        }
        return tasks.SnsPublish(
            self,
            state_name,
            topic=self._topic,
            message=sfn.TaskInput.from_object(message),
            message_attributes={"status": tasks.MessageAttribute(value=status)},
            result_path=sfn.JsonPath.DISCARD,
        )


def check_state_machine_props(
    problems: Problems,
    *,
    retry_policy: Optional[RetryPolicy],
    concurrency_retry: Optional[RetryPolicy],
    pipeline_name: Optional[str],
    timeout: Duration,
) -> None:
    """Record every problem with EtlStateMachine's props (the pipeline checks them up front)."""
    problems.seconds_in_range("timeout", timeout, 60, 365 * 24 * 3600)
    for prop, policy in (("retry_policy", retry_policy), ("concurrency_retry", concurrency_retry)):
        problems.require(
            policy is None or isinstance(policy, RetryPolicy),
            prop,
            policy,
            "must be a RetryPolicy or None",
        )
    if pipeline_name is not None:
        problems.require(
            isinstance(pipeline_name, str) and 0 < len(pipeline_name) <= 256,
            "pipeline_name",
            pipeline_name,
            "must be a string of 1 to 256 characters",
        )


def _retry_props(errors: tuple[str, ...], policy: RetryPolicy) -> dict[str, Any]:
    return {
        "errors": list(errors),
        "max_attempts": policy.max_attempts,
        "interval": policy.interval,
        "backoff_rate": policy.backoff_rate,
        "max_delay": policy.max_delay,
        "jitter_strategy": sfn.JitterType.FULL if policy.jitter else sfn.JitterType.NONE,
    }

"""EtlStateMachine: the Step Functions workflow around one Glue job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from . import _defaults, _hygiene, _notification, _validation
from ._contract import (
    BATCH_ID_ARGUMENT,
    DEFAULT_RUN_REPORTS_PREFIX,
    MANIFEST_ARGUMENT,
    OBJECTS_ARGUMENT,
    RUN_SUMMARY_SUFFIX,
    SUMMARY_CAUSE_FIELD,
    SUMMARY_OUTCOME_FIELDS,
    SUMMARY_TABLES_FIELD,
)
from ._docs import public
from ._notification import FAILED, SUCCEEDED
from ._problems import show
from .errors import ValidationError
from .retry import RetryPolicy, _retry_props

__all__ = ["EtlStateMachine"]

_CONCURRENCY_ERRORS = (
    "Glue.ConcurrentRunsExceededException",
    "Glue.ResourceNumberLimitExceededException",
)
"""Glue is busy: retried by ``concurrency_retry``, generously and with jitter."""

_TRANSIENT_ERRORS = (
    "Glue.ThrottlingException",
    "Glue.InternalServiceException",
    "Glue.OperationTimeoutException",
    "Glue.AWSGlueException",
)
"""Throttling and Glue-side faults: retried by ``retry_policy``."""

_DEFAULT_CONCURRENCY_RETRY = RetryPolicy(
    max_attempts=40,
    interval=Duration.seconds(30),
    backoff_rate=1.5,
    max_delay=Duration.minutes(5),
    jitter=True,
)
"""Outlasts a burst: up to about 3 hours of waiting in randomised steps of at most 5 minutes."""

_FAILURE_ERROR = "EtlPipelineFailed"
"""The error a failed execution ends with; its cause starts with the original error name."""

_EXECUTION_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")
"""The statuses of Step Functions' "Execution Status Change" events."""

_PERIOD = Duration.minutes(5)
_JSON_NULL = "States.StringToJson('null')"  # jsii drops None: a JSON null needs an intrinsic
_NO_OUTCOME: dict[str, Any] = {
    "rows.$": _JSON_NULL,
    "landed.$": _JSON_NULL,
    "skipped": [],
    "quarantined": [],
    "quality": [],
}
"""The notification's outcome fields when no run report is read (your own script)."""
_NO_TABLES: dict[str, Any] = {SUMMARY_TABLES_FIELD: {}}
"""With table routing, the notification's ``tables`` when no run report is read: ``{}``. A
literal, not ``States.StringToJson('{}')``: ``{`` and ``}`` are reserved in an intrinsic
function's string literal and must be escaped there (https://docs.aws.amazon.com/step-functions/
latest/dg/intrinsic-functions.html, "Reserved characters")."""
_INPUT_DEFAULTS = {"objects": [], "manifest": "", "outcome": _NO_OUTCOME}
_REPORT_MISSING = "S3.NoSuchKeyException"
_RUN_RETRIES = "run_retries"
"""Where the failed-run retry loop keeps its attempt count and next wait."""
_FAILED_RUN = "FAILED"
"""A Glue run's ``JobRunState`` when it ended FAILED."""


@public
class EtlStateMachine(Construct):
    """A Step Functions workflow that runs a Glue job to completion and reports the outcome.

    ``Normalise input -> Run Glue job (.sync, retried) -> Notify success``; any error is
    caught and goes ``-> Notify failure -> Failed`` so the execution ends FAILED. Both
    notifications are JSON (``pipeline``, ``status``, ``execution``, ``objects``,
    ``manifest``, ``glue_job_run_id`` and, on failure, ``error`` and ``cause``) with an SNS
    message attribute ``status``.

    Execution input: ``{"objects": ["s3://bucket/key", ...]}`` or
    ``{"manifest": "s3://bucket/manifest.jsonl"}``; the Glue job receives them as the job
    arguments ``--objects`` (a JSON list) and ``--manifest``, and the execution's name as
    ``--batch_id`` (the input's identity: a redrive or retry passes the same one).

    With ``report_bucket`` (the pipeline sets it), the workflow reads the built-in script's
    run report ``<report_prefix><batch_id>.summary.json`` after the run: the success
    notification then carries ``rows``, ``landed``, ``skipped`` and ``quarantined``, and a
    failure's ``cause`` is the report's (its first line names the refused object). A run
    without a report (your own script) is notified as before.

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
        report_bucket: Optional[s3.IBucket] = None,
        report_prefix: str = DEFAULT_RUN_REPORTS_PREFIX,
        report_key: Optional[kms.IKey] = None,
        report_tables: bool = False,
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
        :param report_bucket: Bucket of the Glue script's run reports, read into the
            notifications. Default: - no reports are read
        :param report_prefix: Key prefix of the run reports in ``report_bucket``.
            Default: "processed/_runs/"
        :param report_key: KMS key the run reports are encrypted with, if any.
            Default: - the bucket's own key when CDK knows it
        :param report_tables: The run reports hold ``tables`` (the built-in script routing
            objects to several tables): the notifications carry it, each table's ``rows`` and
            ``landed`` (``{}`` when no report was read). Default: False
        """
        _validation.validate_state_machine(construct_id, locals(), EtlStateMachine.__init__)
        super().__init__(scope, construct_id)
        self.pipeline_name = pipeline_name or _notification.default_pipeline_name(self.node.path)
        self._topic = notification_topic
        self._report_bucket = report_bucket
        self._report_prefix = report_prefix
        self._report_tables = report_tables
        definition = self._definition(
            glue_job, retry_policy or RetryPolicy(), concurrency_retry or _DEFAULT_CONCURRENCY_RETRY
        )
        # The log group is retained (execution history is audit data): its name carries the
        # stack's own id, so a destroy and a new deploy of the same app do not collide.
        self.log_group = _defaults.new_state_machine_log_group(
            self, retention=log_retention, encryption_key=encryption_key
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
        self._grant(machine, notification_topic_key, report_key)
        self.state_machine = machine
        _hygiene.depend_only_on_role_policy(machine.node.default_child, machine.role)
        _hygiene.acknowledge_necessary_wildcards(machine.role)

    def _grant(
        self,
        machine: sfn.StateMachine,
        notification_topic_key: Optional[kms.IKey],
        report_key: Optional[kms.IKey],
    ) -> None:
        # SnsPublish grants sns:Publish only; an encrypted topic also needs its key.
        self._topic.grant_publish(machine)
        if notification_topic_key is not None:
            notification_topic_key.grant(machine, "kms:Decrypt", "kms:GenerateDataKey*")
        report_bucket = self._report_bucket
        if report_bucket is None:
            return
        # S3 answers a missing key with AccessDenied, not NoSuchKey, to a caller without
        # s3:ListBucket on the bucket ("Permissions", GetObject, Amazon S3 API Reference:
        # https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html): without it
        # a run of your own script, which writes no report, would end FAILED. S3 checks
        # it without a prefix in the request, so no s3:prefix condition can narrow it.
        machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="TellAMissingReportFromADenial",
                actions=["s3:ListBucket"],
                resources=[report_bucket.bucket_arn],
            )
        )
        key = report_key or report_bucket.encryption_key
        if key is not None:
            key.grant_decrypt(machine)

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

    # ------------------------------------------------------------------ events

    def on_execution_status(
        self,
        construct_id: str,
        statuses: Sequence[str],
        *,
        description: Optional[str] = None,
        scope: Optional[Construct] = None,
    ) -> events.Rule:
        """An EventBridge rule for executions of this workflow that reach one of
        ``statuses`` ("Step Functions Execution Status Change"); add targets.

        :param construct_id: The rule's construct id.
        :param statuses: ``SUCCEEDED``, ``FAILED``, ``TIMED_OUT``, ``ABORTED``, ``RUNNING`` or
            ``PENDING_REDRIVE``, at least one.
        :param description: The rule's description. Default: - names the statuses
        :param scope: Where the rule is created. Default: - this construct
        """
        known = not isinstance(statuses, str) and all(s in _EXECUTION_STATUSES for s in statuses)
        if not (statuses and known):
            raise ValidationError(
                f"EtlStateMachine '{self.node.id}'",
                [
                    f"on_execution_status: statuses={show(statuses)}: must be a non-empty list "
                    f"of {', '.join(_EXECUTION_STATUSES)}"
                ],
            )
        return events.Rule(
            scope or self,
            construct_id,
            description=description or f"event-driven-etl: executions {'/'.join(statuses)}",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "stateMachineArn": [self.state_machine.state_machine_arn],
                    "status": list(statuses),
                },
            ),
        )

    # ------------------------------------------------------------------ states

    def _definition(
        self, glue_job: glue.IJob, policy: RetryPolicy, concurrency: RetryPolicy
    ) -> sfn.IChainable:
        """``Normalise input -> Run Glue job -> [Read run report ->] Notify success``, any
        error caught into ``[Retry failed run? ->] Glue run failed? -> Notify failure ->
        Failed``; a success notification SNS keeps refusing into ``Success not published ->
        Notify failure``."""
        run_job = self._glue_task(glue_job, policy, concurrency)
        notify_success = self._notify(
            "Notify success",
            SUCCEEDED,
            {
                "glue_job_run_id": sfn.JsonPath.string_at("$.glue.Id"),
                "glue_job_run_state": sfn.JsonPath.string_at("$.glue.JobRunState"),
                "rows": sfn.JsonPath.number_at("$.outcome.rows"),
                "landed": sfn.JsonPath.number_at("$.outcome.landed"),
            },
        )
        notify_failure = self._notify(
            "Notify failure",
            FAILED,
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
            error=_FAILURE_ERROR,
            cause_path="States.Format('{}: {}', $.error.Error, $.error.Cause)",
        )
        failure_details = self._failure_details(notify_failure)
        notify_failure.next(failed)
        # SNS refusing the success notification past its retries must not end the execution
        # without a word: the finished run is reported as a failure naming SNS's error.
        unpublished = sfn.Pass(
            self,
            "Success not published",
            parameters={"run": {"Id.$": "$.glue.Id"}},
            result_path="$.failed_run",
        )
        unpublished.next(notify_failure)
        notify_success.add_catch(unpublished, errors=[sfn.Errors.ALL], result_path="$.error")
        on_error: sfn.IChainable = failure_details
        if policy.retry_failed_runs and policy.max_attempts > 0:
            on_error = self._retry_failed_runs(run_job, policy, failure_details)
        run_job.add_catch(on_error, errors=[sfn.Errors.ALL], result_path="$.error")
        after_run: sfn.IChainable = notify_success
        if self._report_bucket is not None:
            after_run = self._read_success_report(
                self._report_bucket, notify_success, failure_details
            )
        input_defaults = dict(_INPUT_DEFAULTS)
        if self._report_tables:
            input_defaults["outcome"] = {**_NO_OUTCOME, **_NO_TABLES}
        if policy.retry_failed_runs:
            input_defaults[_RUN_RETRIES] = {"count": 0}
        return self._normalise_input(input_defaults).next(run_job).next(after_run)

    def _normalise_input(self, defaults: dict[str, Any]) -> sfn.Chain:
        """Give ``objects`` and ``manifest`` defaults so either input form reaches the job."""
        return _input_with_defaults(self, defaults)

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
                    OBJECTS_ARGUMENT: sfn.JsonPath.json_to_string(
                        sfn.JsonPath.list_at("$.objects")
                    ),
                    MANIFEST_ARGUMENT: sfn.JsonPath.string_at("$.manifest"),
                    BATCH_ID_ARGUMENT: sfn.JsonPath.string_at("$$.Execution.Name"),
                }
            ),
            result_selector={
                "Id": sfn.JsonPath.string_at("$.Id"),
                "JobRunState": sfn.JsonPath.string_at("$.JobRunState"),
            },
            result_path="$.glue",
        )
        task.add_retry(**_retry_props(_CONCURRENCY_ERRORS, concurrency))
        task.add_retry(**_retry_props(_TRANSIENT_ERRORS, retry))
        return task

    def _retry_failed_runs(
        self, run_job: sfn.IChainable, policy: RetryPolicy, give_up: sfn.IChainable
    ) -> sfn.Choice:
        """Run the job again only when its run *ended* FAILED, never for AccessDenied,
        EntityNotFound or anything else Step Functions also reports as ``States.TaskFailed``.

        A retrier cannot look at the cause, so this is a loop: the waits are the policy's
        (interval, backoff, cap) computed here and picked by the attempt count, with full
        jitter from ``States.MathRandom`` when the policy asks for it.
        """
        waits = ", ".join(str(w) for w in policy.waits_in_seconds())
        wait_now = f"States.ArrayGetItem(States.Array({waits}), $.{_RUN_RETRIES}.count)"
        if policy.jitter:
            wait_now = f"States.MathRandom(0, {wait_now})"
        schedule = sfn.Pass(
            self,
            "Schedule run retry",
            parameters={
                "count.$": f"States.MathAdd($.{_RUN_RETRIES}.count, 1)",
                "seconds.$": wait_now,
            },
            result_path=f"$.{_RUN_RETRIES}",
        )
        wait = sfn.Wait(
            self,
            "Wait before run retry",
            time=sfn.WaitTime.seconds_path(f"$.{_RUN_RETRIES}.seconds"),
        )
        run_failed = sfn.Condition.and_(
            sfn.Condition.string_equals("$.error.Error", sfn.Errors.TASKS_FAILED),
            sfn.Condition.string_matches("$.error.Cause", f'*"JobRunState":"{_FAILED_RUN}"*'),
            sfn.Condition.number_less_than(f"$.{_RUN_RETRIES}.count", policy.max_attempts),
        )
        choice = sfn.Choice(self, "Retry failed run?")
        choice.when(run_failed, schedule.next(wait).next(run_job)).otherwise(give_up)
        return choice

    def _failure_details(self, notify_failure: sfn.IChainable) -> sfn.Choice:
        """Find the Glue run in the error cause when the failure is a finished Glue run, and
        the run report's cause when the script wrote one."""
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
            parameters={"run": {"Id.$": _JSON_NULL}},
            result_path="$.failed_run",
        )
        is_run_failure = sfn.Condition.and_(
            sfn.Condition.string_equals("$.error.Error", sfn.Errors.TASKS_FAILED),
            # Only a whole JobRun JSON is read: a cause Step Functions cut at 32,768
            # characters would make States.StringToJson fail where nothing can catch it.
            sfn.Condition.string_matches("$.error.Cause", '{*"JobRunState"*}'),
        )
        choice.when(is_run_failure, from_run).otherwise(no_run)
        no_run.next(notify_failure)
        if self._report_bucket is None:
            from_run.next(notify_failure)
        else:
            from_run.next(self._report_cause(self._report_bucket, notify_failure))
        return choice

    def _report_cause(self, bucket: s3.IBucket, notify_failure: sfn.IChainable) -> sfn.Chain:
        """Read the failed run's report; when it names the cause (the refused object), the
        failure notification carries that cause and the report's outcome."""
        read = self._read_report(bucket, "Read failure report", "$.failure_report")
        read.add_catch(notify_failure, errors=[sfn.Errors.ALL], result_path=sfn.JsonPath.DISCARD)
        # Over the outcome's defaults: a report without a field (your own script's, or one
        # written before the field existed) keeps its default instead of failing the Pass.
        report = read.next(self._complete_report("Complete failure report", "$.failure_report"))
        cause = f"$.failure_report.report.{SUMMARY_CAUSE_FIELD}"
        use_report = sfn.Pass(
            self,
            "Use report cause",
            parameters={
                "error": {"Error.$": "$.error.Error", "Cause.$": cause},
                "outcome": _report_fields("$.failure_report", tables=self._report_tables),
            },
            result_path="$.report_fields",
        )
        merge = sfn.Pass(
            self,
            "Apply report cause",
            parameters={"merged.$": "States.JsonMerge($, $.report_fields, false)"},
            output_path="$.merged",
        )
        has_cause = sfn.Choice(self, "Report names the cause?")
        has_cause.when(
            sfn.Condition.and_(
                sfn.Condition.is_present(cause),
                sfn.Condition.is_string(cause),
                sfn.Condition.not_(sfn.Condition.string_equals(cause, "")),
            ),
            use_report.next(merge).next(notify_failure),
        ).otherwise(notify_failure)
        return sfn.Chain.start(report).next(has_cause)

    def _complete_report(self, state_name: str, path: str) -> sfn.Pass:
        """The report read into ``path`` over the outcome's defaults: a field the report lacks
        (``quality`` or ``tables`` in a summary your own script wrote) keeps its default, since a
        Pass state reading a missing path fails with ``States.Runtime``, which no Catch
        catches (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html)."""
        return sfn.Pass(
            self,
            state_name,
            parameters={"report.$": f"States.JsonMerge($.outcome, {path}.report, false)"},
            result_path=path,
        )

    def _read_report(
        self, bucket: s3.IBucket, state_name: str, result_path: str
    ) -> tasks.CallAwsService:
        """Read ``<report_prefix><execution name>.summary.json`` from ``bucket``."""
        return tasks.CallAwsService(
            self,
            state_name,
            service="s3",
            action="getObject",
            parameters={
                "Bucket": bucket.bucket_name,
                "Key": sfn.JsonPath.format(
                    f"{self._report_prefix}{{}}{RUN_SUMMARY_SUFFIX}",
                    sfn.JsonPath.string_at("$$.Execution.Name"),
                ),
            },
            iam_resources=[bucket.arn_for_objects(f"{self._report_prefix}*")],
            iam_action="s3:GetObject",
            result_selector={"report.$": "States.StringToJson($.Body)"},
            result_path=result_path,
        )

    def _read_success_report(
        self, bucket: s3.IBucket, notify_success: sfn.IChainable, on_error: sfn.IChainable
    ) -> sfn.IChainable:
        """After a run: the report's outcome into ``$.outcome``; no report (your own script)
        leaves the defaults; any other error (e.g. AccessDenied) fails the execution."""
        read = self._read_report(bucket, "Read run report", "$.run_report")
        read.add_catch(notify_success, errors=[_REPORT_MISSING], result_path=sfn.JsonPath.DISCARD)
        read.add_catch(on_error, errors=[sfn.Errors.ALL], result_path="$.error")
        outcome = sfn.Pass(
            self,
            "Read outcome",
            parameters=_report_fields("$.run_report", tables=self._report_tables),
            result_path="$.outcome",
        )
        return (
            read.next(self._complete_report("Complete run report", "$.run_report"))
            .next(outcome)
            .next(notify_success)
        )

    def _tables_field(self) -> dict[str, Any]:
        """The notification's ``tables`` (with table routing only)."""
        if not self._report_tables:
            return {}
        path = f"$.outcome.{SUMMARY_TABLES_FIELD}"
        return {SUMMARY_TABLES_FIELD: sfn.JsonPath.object_at(path)}

    def _notify(self, state_name: str, status: str, run: dict[str, Any]) -> tasks.SnsPublish:
        body = _notification.message(
            pipeline_name=self.pipeline_name,
            status=status,
            objects=sfn.JsonPath.list_at("$.objects"),
            manifest=sfn.JsonPath.string_at("$.manifest"),
            outcome={
                "skipped": sfn.JsonPath.list_at("$.outcome.skipped"),
                "quarantined": sfn.JsonPath.list_at("$.outcome.quarantined"),
                **self._tables_field(),
                # Each quality rule's result: {"table", "rule", "outcome", "observed"}.
                "quality": sfn.JsonPath.list_at("$.outcome.quality"),
            },
            run=run,
        )
        return _notification.publish(self, state_name, self._topic, body)


def _input_with_defaults(scope: Construct, defaults: Mapping[str, Any]) -> sfn.Chain:
    """Two Pass states ("Normalise input", "Apply defaults") that give the execution's input
    ``defaults`` for the fields it lacks; the fields it has are kept as given."""
    with_defaults = sfn.Pass(
        scope,
        "Normalise input",
        parameters={"defaults": dict(defaults), "input.$": "$"},
    )
    merged = sfn.Pass(
        scope,
        "Apply defaults",
        parameters={"merged.$": "States.JsonMerge($.defaults, $.input, false)"},
        output_path="$.merged",
    )
    return with_defaults.next(merged)


def _report_fields(path: str, *, tables: bool = False) -> dict[str, str]:
    """The outcome fields of the run report read into ``path`` (a Pass state's parameters),
    with ``tables`` when the report has it (table routing)."""
    fields = (*SUMMARY_OUTCOME_FIELDS, SUMMARY_TABLES_FIELD) if tables else SUMMARY_OUTCOME_FIELDS
    return {f"{field}.$": f"{path}.report.{field}" for field in fields}

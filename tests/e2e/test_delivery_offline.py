"""Delivery as the template configures it: the rule target's retry policy, the function's
timeout and environment, the SQS event source's batching window and payload limit."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from event_driven_etl import Batching
from event_driven_etl.testing._lambda import BATCH_PAYLOAD_LIMIT, SqsPoller
from event_driven_etl.testing._template import StackTemplate
from event_driven_etl.testing._time import CLOCK

from .offline import CSV
from .offline import offline as _local
from .offline import synthesized as _template


def _resource(template: StackTemplate, kind: str, fragment: str) -> dict[str, Any]:
    [resource] = [
        r
        for logical_id, r in template.template["Resources"].items()
        if r["Type"] == kind and fragment in logical_id
    ]
    properties: dict[str, Any] = resource["Properties"]
    return properties  # the template's own: tests change it


def _set_target_retry_attempts(template: StackTemplate, attempts: int) -> None:
    rule = _resource(template, "AWS::Events::Rule", "ObjectCreatedRule")
    [target] = rule["Targets"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 185  # as synthesized
    target["RetryPolicy"]["MaximumRetryAttempts"] = attempts


@pytest.mark.parametrize(
    "batching", [None, Batching(max_batch_size=10)], ids=["per_object", "batching"]
)
def test_a_target_outage_within_the_rule_retry_policy_loses_nothing(
    tmp_path: Path, batching: Any
) -> None:
    template = _template(tmp_path, batching=batching)
    _set_target_retry_attempts(template, 3)
    with _local(template) as local:
        local.faults.event_delivery_fails(times=3)  # the first try and two of three retries
        local.put_object("in/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=120)
        assert run.status == "SUCCEEDED"
        assert local.dead_letters() == [] and local.lost_events == []


@pytest.mark.parametrize(
    "batching", [None, Batching(max_batch_size=10)], ids=["per_object", "batching"]
)
def test_fails_a_target_outage_past_the_rule_retry_policy_to_the_dead_letter_queue(
    tmp_path: Path, batching: Any
) -> None:
    template = _template(tmp_path, batching=batching)
    _set_target_retry_attempts(template, 3)
    with _local(template) as local:
        local.faults.event_delivery_fails(times=4)
        event = local.put_object("in/a.csv", CSV)
        assert local.wait_for_runs(timeout=120) == []
        [dead] = local.dead_letters()
        assert dead["id"] == event["id"]  # EventBridge dead-letters the event itself


def test_dead_letters_carry_eventbridge_s_reasons(tmp_path: Path) -> None:
    template = _template(tmp_path)
    _set_target_retry_attempts(template, 0)
    with _local(template) as local:
        local.faults.event_delivery_fails(times=1, error_code="THROTTLING")
        local.put_object("in/a.csv", CSV)
        sqs = boto3.client("sqs", region_name="us-east-1")
        [message] = sqs.receive_message(
            QueueUrl=local.emulation.dead_letter_queue_url, MessageAttributeNames=["All"]
        )["Messages"]
        attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
        assert attributes["ERROR_CODE"] == "THROTTLING"
        assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
        assert attributes["RULE_ARN"] == local.emulation.rule_arn


def test_fails_an_invocation_past_the_function_timeout_to_the_on_failure_destination(
    tmp_path: Path,
) -> None:
    template = _template(tmp_path)
    function = _resource(template, "AWS::Lambda::Function", "TriggerFunction")
    function["Timeout"] = 1  # as if synthesized with timeout=Duration.seconds(1)
    with _local(template) as local:
        local.faults.start_execution_slow(1.5, times=3)  # every attempt outlives the timeout
        local.put_object("in/a.csv", CSV)
        local.wait_for_runs(timeout=120)
        [dead] = local.dead_letters()
        assert dead["requestContext"]["condition"] == "RetriesExhausted"
        assert dead["responsePayload"]["errorType"] == "FunctionTimeoutError"
        assert "Task timed out" in dead["responsePayload"]["errorMessage"]


@pytest.mark.parametrize(
    ("max_event_age", "condition", "invocations"),
    [(None, "RetriesExhausted", 3), (120, "EventAgeExceeded", 2)],
)
def test_a_failing_event_is_retried_within_its_async_invoke_config(
    tmp_path: Path, max_event_age: Any, condition: str, invocations: int
) -> None:
    template = _template(tmp_path)
    if max_event_age is not None:  # Lambda waits 1 minute, then 2: a third try would be too old
        config = _resource(template, "AWS::Lambda::EventInvokeConfig", "Trigger")
        config["MaximumEventAgeInSeconds"] = max_event_age
    for resource in template.template["Resources"].values():  # every invocation fails
        if resource["Type"] == "AWS::IAM::Policy" and "TriggerRole" in json.dumps(resource):
            statements = resource["Properties"]["PolicyDocument"]["Statement"]
            statements[:] = [s for s in statements if "states:StartExecution" not in str(s)]
    with _local(template) as local:
        local.put_object("in/a.csv", CSV)
        [dead] = local.dead_letters()
        assert dead["requestContext"] == {
            "condition": condition,
            "approximateInvokeCount": invocations,
        }
        denied = [c for c in local.policies.checked if c[1] == "states:StartExecution"]
        assert len(denied) == invocations and not any(c[3] for c in denied)


def test_the_trigger_sees_the_function_s_environment_not_the_test_process_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = _template(tmp_path)
    variables = _resource(template, "AWS::Lambda::Function", "TriggerFunction")["Environment"]
    del variables["Variables"]["IGNORED_LOCATIONS"]  # a function that sets none
    # Would make the handler skip every object, if it leaked into the function.
    monkeypatch.setenv("IGNORED_LOCATIONS", json.dumps(["s3://"]))
    with _local(template) as local:
        local.put_object("in/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=120)
        assert run.status == "SUCCEEDED"


@pytest.fixture
def queue() -> Any:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        yield sqs, sqs.create_queue(QueueName="events")["QueueUrl"]


def _poller(queue: Any, payloads: list[int], **settings: Any) -> SqsPoller:
    """A poller whose handler records each batch's payload size in bytes."""
    sqs, url = queue

    def invoke(event: dict[str, Any]) -> None:
        payloads.append(len(json.dumps(event)))

    options = {"pollers": 1, "batch_size": 100, "reports_item_failures": True, **settings}
    return SqsPoller(sqs, url, invoke, **options)


def test_an_sqs_batch_stops_at_lambda_s_6_mb_payload(queue: Any) -> None:
    sqs, url = queue
    for _ in range(30):
        sqs.send_message(QueueUrl=url, MessageBody="x" * 250_000)
    payloads: list[int] = []
    poller = _poller(queue, payloads)
    poller.run()
    assert sum(poller.batches) == 30 and len(poller.batches) == 2
    assert all(p <= BATCH_PAYLOAD_LIMIT for p in payloads)
    assert payloads[0] > BATCH_PAYLOAD_LIMIT - 251_000  # full: one more record would not fit


def test_a_batch_waits_its_batching_window_for_more_records(queue: Any) -> None:
    sqs, url = queue

    def in_flight() -> int:
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessagesNotVisible"])

    # A full batch (4) is handed over at once, so the generous window costs no time.
    CLOCK.reset()
    CLOCK.hold()  # the test's thread: virtual time moves only while it waits on the clock
    try:
        for window, expected in ((30, [4]), (0, [2, 2])):
            for _ in range(2):
                sqs.send_message(QueueUrl=url, MessageBody="{}")
            poller = _poller(queue, [], batch_size=4, batching_window=window)
            running = threading.Thread(target=poller.run)
            running.start()
            deadline = time.monotonic() + 60  # wait on state, however late the poller starts
            # With a window the poller holds the first two; without, it has handed them over.
            while time.monotonic() < deadline and not (
                poller.batches if window == 0 else in_flight() == 2
            ):
                time.sleep(0.01)
            if window:
                CLOCK.sleep(window - 1)  # virtual: 29 s into its 30-second window ...
                assert poller.batches == []  # ... it still waits for more
            for _ in range(2):
                sqs.send_message(QueueUrl=url, MessageBody="{}")
            with CLOCK.released():
                running.join(timeout=60)
            if sum(poller.batches) < 4:
                poller.run()  # without a window the poller was done before the others came
            assert poller.batches == expected, f"window {window}"
    finally:
        CLOCK.reset()


def test_fails_a_rule_target_whose_input_path_drops_the_envelope(tmp_path: Path) -> None:
    template = _template(tmp_path)
    rule = _resource(template, "AWS::Events::Rule", "ObjectCreatedRule")
    rule["Targets"][0]["InputPath"] = "$.detail"  # the function gets only the detail
    with _local(template) as local:
        local.put_object("in/a.csv", CSV)
        assert local.wait_for_runs(timeout=120) == []
        [dead] = local.dead_letters()
        assert dead["requestPayload"]["object"]["key"] == "in/a.csv"  # the detail alone
        assert dead["responsePayload"]["errorType"] == "MalformedEventError"


def test_fails_an_event_over_256_kb_on_the_bus(tmp_path: Path) -> None:
    with _local(_template(tmp_path)) as local:
        event = local.put_object("in/a.csv", CSV)
        event["detail"]["padding"] = "x" * 262_144
        with pytest.raises(ValueError, match="PutEvents takes at most 262144"):
            local.send_event(event)


def test_fails_to_wait_for_a_record_that_keeps_failing_without_a_redrive_policy(
    tmp_path: Path,
) -> None:
    template = _template(tmp_path, batching=Batching(max_batch_size=10))
    queue = _resource(template, "AWS::SQS::Queue", "EventQueue")
    del queue["RedrivePolicy"]  # as synthesized without a dead-letter queue
    with _local(template) as local:
        sqs = boto3.client("sqs", region_name="us-east-1")
        sqs.send_message(QueueUrl=local.event_queue_url, MessageBody="not an event")
        with pytest.raises(TimeoutError, match="records still in the event queue"):
            local.wait_for_runs(timeout=5)
        assert local.dead_letters() == []  # nowhere to go: it is received again and again


def test_a_throttled_notification_is_retried_until_sns_takes_it(tmp_path: Path) -> None:
    """SNS throttles the success notification three times: the publish task's retrier (2 s,
    backoff 2, full jitter, as synthesized) waits three times on the virtual clock and the
    fourth attempt delivers it."""
    with _local(_template(tmp_path)) as local:
        local.faults.sns_publish_fails(times=3)
        local.put_object("in/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED"
        [note] = local.notifications
        assert note["status"] == "SUCCEEDED"
        assert not local.faults.publish_errors
        waits = local.workflow_waits(run.execution_arn)
        assert len(waits) == 3
        assert all(0 <= wait <= bound for wait, bound in zip(waits, (2, 4, 8)))


def test_fails_a_notification_sns_refuses_past_its_retries_as_a_failed_run(
    tmp_path: Path,
) -> None:
    """Seven refusals outlast the success notification's six retries: the error is caught,
    the failure notification (the next publish) names it, and the execution ends FAILED, so
    the finished run is not lost silently."""
    with _local(_template(tmp_path)) as local:
        local.faults.sns_publish_fails(times=7)
        local.put_object("in/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        [note] = local.notifications
        assert note["status"] == "FAILED"
        assert note["error"] == "SNS.ThrottledException"
        assert note["glue_job_run_id"] == local.glue_runs[0].run_id
        assert len(local.workflow_waits(run.execution_arn)) == 6

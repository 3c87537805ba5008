"""The trigger handler against emulated AWS (moto, in-process; no Docker)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from event_driven_etl._contract import INLINE_LIMIT_BYTES, MANIFEST_PREFIX
from event_driven_etl.runtime.trigger import handler
from event_driven_etl.runtime.trigger.s3_events import MalformedEventError, encode_key

BUCKET = "raw-bucket"
REGION = "us-east-1"


def object_event(
    key: str,
    *,
    bucket: str = BUCKET,
    size: int = 10,
    etag: str = "etag-1",
    sequencer: str = "0001",
    version_id: str | None = None,
    event_id: str = "event-1",
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "key": encode_key(key),
        "size": size,
        "etag": etag,
        "sequencer": sequencer,
    }
    if version_id:
        obj["version-id"] = version_id
    return {
        "version": "0",
        "id": event_id,
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": bucket}, "object": obj},
    }


def sqs_records(*events: dict[str, Any] | str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "eventSource": "aws:sqs",
                "body": e if isinstance(e, str) else json.dumps(e),
            }
            for i, e in enumerate(events)
        ]
    }


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine = sfn.create_state_machine(
            name="etl",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/r",
        )["stateMachineArn"]
        monkeypatch.setenv("STATE_MACHINE_ARN", machine)
        monkeypatch.setenv("SOURCE_BUCKET", BUCKET)
        handler.set_clients(None)
        yield {"sfn": sfn, "machine": machine}
        handler.set_clients(None)


@pytest.fixture
def batching(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName="marks",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="out-bucket")
    monkeypatch.setenv("DEDUP_TABLE", "marks")
    # What TriggerFunction sets with a manifest bucket (the handler has no defaults for them).
    monkeypatch.setenv("MANIFEST_BUCKET", "out-bucket")
    monkeypatch.setenv("MANIFEST_PREFIX", MANIFEST_PREFIX)
    monkeypatch.setenv("INLINE_LIMIT_BYTES", str(INLINE_LIMIT_BYTES))
    handler.set_clients(None)
    return {**aws, "dynamodb": dynamodb, "s3": s3}


def executions(aws: dict[str, Any]) -> list[dict[str, Any]]:
    listed = aws["sfn"].list_executions(stateMachineArn=aws["machine"])["executions"]
    result = []
    for item in listed:
        described = aws["sfn"].describe_execution(executionArn=item["executionArn"])
        result.append({"name": item["name"], "input": json.loads(described["input"])})
    return result


# ---------------------------------------------------------------- per-object mode


def test_object_event_starts_one_execution_with_the_object(aws: dict[str, Any]) -> None:
    handler.handler(object_event("incoming/a.csv"))
    [run] = executions(aws)
    assert run["input"] == {"objects": [f"s3://{BUCKET}/incoming/a.csv"]}


def test_duplicate_delivery_starts_no_second_execution(aws: dict[str, Any]) -> None:
    handler.handler(object_event("incoming/a.csv", event_id="first"))
    # While the first is running, Step Functions answers the same name and input with the
    # same execution; once it has ended, with ExecutionAlreadyExists. Both start nothing new.
    handler.handler(object_event("incoming/a.csv", event_id="redelivered"))
    assert len(executions(aws)) == 1


def test_execution_already_exists_counts_as_a_duplicate(aws: dict[str, Any]) -> None:
    flaky = _Flaky(aws["sfn"], ["ExecutionAlreadyExists"])
    handler.set_clients(handler.Clients(stepfunctions=flaky))
    assert handler.handler(object_event("a.csv")) == {"started": 0, "duplicates": 1}


def test_reupload_of_the_same_key_runs_again(aws: dict[str, Any]) -> None:
    handler.handler(object_event("incoming/a.csv", etag="e1", sequencer="0001"))
    handler.handler(object_event("incoming/a.csv", etag="e2", sequencer="0002"))
    assert len(executions(aws)) == 2


def test_new_version_of_a_versioned_object_runs_again(aws: dict[str, Any]) -> None:
    handler.handler(object_event("a.csv", version_id="v1"))
    handler.handler(object_event("a.csv", version_id="v2"))
    assert len(executions(aws)) == 2


def test_event_for_another_bucket_is_skipped_with_a_log_line(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    result = handler.handler(object_event("a.csv", bucket="someone-else"))
    assert result == {"started": 0, "skipped": 1}
    assert executions(aws) == []
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["message"] == "object skipped"
    assert "someone-else" in line["reason"]


def test_folder_marker_is_skipped(aws: dict[str, Any]) -> None:
    assert handler.handler(object_event("incoming/", size=0)) == {"started": 0, "skipped": 1}
    assert executions(aws) == []


@pytest.mark.parametrize(
    "key",
    [
        "incoming/with space.csv",
        "incoming/plus+sign.csv",
        "incoming/percent%20literal.csv",
        "incoming/ünïcödé-数据.csv",
        "incoming/" + "k" * (1024 - len("incoming/") - 4) + ".csv",
    ],
)
def test_keys_are_decoded_once_to_the_key_as_stored(aws: dict[str, Any], key: str) -> None:
    handler.handler(object_event(key))
    [run] = executions(aws)
    assert run["input"]["objects"] == [f"s3://{BUCKET}/{key}"]
    assert len(run["name"]) <= 80


def test_fails_malformed_event_raises_for_the_retry_and_dead_letter_path(
    aws: dict[str, Any],
) -> None:
    with pytest.raises(MalformedEventError, match=r"detail\.object must be a JSON object"):
        handler.handler(
            {
                "source": "aws.s3",
                "detail-type": "Object Created",
                "detail": {"bucket": {"name": BUCKET}},
            }
        )
    assert executions(aws) == []


def test_fails_event_of_another_kind(aws: dict[str, Any]) -> None:
    with pytest.raises(MalformedEventError, match="not an S3 'Object Created' event"):
        handler.handler(
            {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"}
        )


class _Flaky:
    """A Step Functions client whose first calls fail with the given error codes."""

    def __init__(self, real: Any, codes: list[str]) -> None:
        self.real, self.codes, self.calls = real, list(codes), 0

    def start_execution(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.codes:
            code = self.codes.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": code}}, "StartExecution")
        return self.real.start_execution(**kwargs)


def test_throttled_start_execution_is_retried(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("time.sleep", lambda _s: None)
    flaky = _Flaky(aws["sfn"], ["ThrottlingException", "ThrottlingException"])
    handler.set_clients(handler.Clients(stepfunctions=flaky))
    handler.handler(object_event("a.csv"))
    assert flaky.calls == 3
    assert len(executions(aws)) == 1


def test_fails_start_execution_with_a_permanent_error_raises(aws: dict[str, Any]) -> None:
    flaky = _Flaky(aws["sfn"], ["AccessDeniedException"])
    handler.set_clients(handler.Clients(stepfunctions=flaky))
    with pytest.raises(ClientError):
        handler.handler(object_event("a.csv"))
    assert flaky.calls == 1


# ---------------------------------------------------------------- batching mode


def test_batch_starts_exactly_one_execution_for_its_objects(batching: dict[str, Any]) -> None:
    result = handler.handler(
        sqs_records(object_event("a.csv", sequencer="1"), object_event("b.csv", sequencer="2"))
    )
    assert result == {"batchItemFailures": []}
    [run] = executions(batching)
    assert run["input"] == {"objects": [f"s3://{BUCKET}/a.csv", f"s3://{BUCKET}/b.csv"]}


def test_duplicates_within_a_batch_appear_once(batching: dict[str, Any]) -> None:
    event = object_event("a.csv")
    handler.handler(sqs_records(event, {**event, "id": "again"}))
    [run] = executions(batching)
    assert run["input"]["objects"] == [f"s3://{BUCKET}/a.csv"]


def test_object_taken_by_an_earlier_batch_is_not_taken_again(batching: dict[str, Any]) -> None:
    handler.handler(sqs_records(object_event("a.csv", sequencer="1")))
    handler.handler(
        sqs_records(object_event("a.csv", sequencer="1"), object_event("b.csv", sequencer="2"))
    )
    runs = executions(batching)
    assert len(runs) == 2
    assert sorted(o for r in runs for o in r["input"]["objects"]) == [
        f"s3://{BUCKET}/a.csv",
        f"s3://{BUCKET}/b.csv",
    ]


def test_batch_of_only_duplicates_starts_nothing(batching: dict[str, Any]) -> None:
    handler.handler(sqs_records(object_event("a.csv")))
    result = handler.handler(sqs_records(object_event("a.csv")))
    assert result == {"batchItemFailures": []}
    assert len(executions(batching)) == 1


def test_malformed_records_are_batch_item_failures_and_do_not_poison_the_batch(
    batching: dict[str, Any],
) -> None:
    result = handler.handler(
        sqs_records(
            "not json",
            {"source": "aws.s3", "detail-type": "Object Created"},
            object_event("ok.csv"),
        )
    )
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}
    [run] = executions(batching)
    assert run["input"]["objects"] == [f"s3://{BUCKET}/ok.csv"]


def test_other_bucket_and_folder_markers_are_skipped_in_a_batch(batching: dict[str, Any]) -> None:
    result = handler.handler(
        sqs_records(
            object_event("x.csv", bucket="other"),
            object_event("dir/", size=0),
            object_event("ok.csv"),
        )
    )
    assert result == {"batchItemFailures": []}
    [run] = executions(batching)
    assert run["input"]["objects"] == [f"s3://{BUCKET}/ok.csv"]


def test_failed_start_reports_messages_and_releases_marks_for_redelivery(
    batching: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("time.sleep", lambda _s: None)
    flaky = _Flaky(batching["sfn"], ["ThrottlingException"] * 6)
    handler.set_clients(
        handler.Clients(stepfunctions=flaky, dynamodb=batching["dynamodb"], s3=batching["s3"])
    )
    batch = sqs_records(object_event("a.csv", sequencer="1"), object_event("b.csv", sequencer="2"))
    result = handler.handler(batch)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}
    assert executions(batching) == []
    assert batching["dynamodb"].scan(TableName="marks")["Count"] == 0
    handler.handler(batch)  # the redelivery
    [run] = executions(batching)
    assert len(run["input"]["objects"]) == 2


def test_pending_mark_with_expired_lease_is_taken_over(
    batching: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEASE_SECONDS", "-1")  # every mark's lease has already run out
    marks = handler.DedupMarks.from_env()
    assert marks is not None
    from event_driven_etl.runtime.trigger.s3_events import parse_object_created

    obj = parse_object_created(object_event("a.csv"))
    assert marks.claim([obj]) == [obj]  # an invocation took it, then died before starting
    handler.handler(sqs_records(object_event("a.csv")))
    assert len(executions(batching)) == 1


def test_large_batch_is_passed_as_a_manifest(
    batching: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INLINE_LIMIT_BYTES", "200")
    events = [object_event(f"incoming/file-{i:03}.csv", sequencer=f"{i:04}") for i in range(20)]
    handler.handler(sqs_records(*events))
    [run] = executions(batching)
    manifest = run["input"]["manifest"]
    assert run["input"]["object_count"] == 20
    assert manifest.startswith("s3://out-bucket/manifests/") and manifest.endswith(".jsonl")
    body = (
        batching["s3"].get_object(Bucket="out-bucket", Key=manifest.split("/", 3)[3])["Body"].read()
    )
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert lines == sorted(f"s3://{BUCKET}/incoming/file-{i:03}.csv" for i in range(20))


@pytest.mark.parametrize("name", ["INLINE_LIMIT_BYTES", "MANIFEST_PREFIX"])
def test_a_contract_setting_missing_fails_the_batch_for_redelivery(
    batching: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
) -> None:
    """The handler has no defaults for the contract's values: without the variable the
    construct sets, a batch is returned for redelivery (then the dead-letter queue), never
    written under a prefix the job does not read."""
    monkeypatch.delenv(name)
    if name == "MANIFEST_PREFIX":
        monkeypatch.setenv("INLINE_LIMIT_BYTES", "10")  # so the batch needs a manifest
    response = handler.handler(sqs_records(object_event("a.csv")))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert executions(batching) == []
    assert f"{name} is not set" in capsys.readouterr().out


def test_failure_to_confirm_marks_does_not_fail_a_started_batch(batching: dict[str, Any]) -> None:
    class NoUpdates:
        def __init__(self, real: Any) -> None:
            self.real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

        def update_item(self, **_kwargs: Any) -> None:
            raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "UpdateItem")

    handler.set_clients(
        handler.Clients(
            stepfunctions=batching["sfn"],
            dynamodb=NoUpdates(batching["dynamodb"]),
            s3=batching["s3"],
        )
    )
    assert handler.handler(sqs_records(object_event("a.csv"))) == {"batchItemFailures": []}
    assert len(executions(batching)) == 1


def test_objects_the_pipeline_wrote_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second guard against a self-triggering pipeline: the trigger skips its own output."""
    from event_driven_etl.runtime.trigger import handler as module
    from event_driven_etl.runtime.trigger.s3_events import ObjectRef

    monkeypatch.setenv(
        "IGNORED_LOCATIONS", json.dumps(["s3://lake/processed/", "s3://lake/quarantine/"])
    )
    written = ObjectRef(bucket="lake", key="quarantine/b1/lake/in/a.csv", size=10)
    assert "written by the pipeline itself" in module._skip_reason(written)
    assert module._skip_reason(ObjectRef(bucket="lake", key="in/a.csv", size=10)) == ""


def test_a_batch_claims_and_confirms_its_marks_concurrently(batching: dict[str, Any]) -> None:
    class Concurrent:
        """moto behind a lock (it is not thread-safe), with AWS-like latency before it."""

        def __init__(self, real: Any) -> None:
            self.real, self.lock = real, threading.Lock()
            self.in_flight = self.most_in_flight = 0

        def __getattr__(self, name: str) -> Any:
            def call(**kwargs: Any) -> Any:
                with self.lock:
                    self.in_flight += 1
                    self.most_in_flight = max(self.most_in_flight, self.in_flight)
                time.sleep(0.02)
                with self.lock:
                    self.in_flight -= 1
                    return getattr(self.real, name)(**kwargs)

            return call

    dynamodb = Concurrent(batching["dynamodb"])
    handler.set_clients(
        handler.Clients(stepfunctions=batching["sfn"], dynamodb=dynamodb, s3=batching["s3"])
    )
    handler.handler(sqs_records(object_event("taken.csv", etag="t")))
    events = [object_event(f"{i}.csv", etag=f"e{i}", event_id=f"v{i}") for i in range(40)]
    events.append(object_event("taken.csv", etag="t"))
    assert handler.handler(sqs_records(*events)) == {"batchItemFailures": []}
    [_, second] = sorted(executions(batching), key=lambda e: len(e["input"]["objects"]))
    assert len(second["input"]["objects"]) == 40  # all new objects, not the one taken before
    assert 1 < dynamodb.most_in_flight <= handler.MARK_WORKERS
    marks = batching["dynamodb"].scan(TableName="marks")["Items"]
    assert sorted(m["state"]["S"] for m in marks) == ["started"] * 41

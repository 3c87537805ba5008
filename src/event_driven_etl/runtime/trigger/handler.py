"""Trigger Lambda: start one Step Functions execution per S3 object, or per SQS batch.

Runs on the AWS Lambda Python runtime and uses only what it provides (boto3). Two entry
shapes arrive at :func:`handler`:

* an EventBridge "Object Created" event (per-object mode, asynchronous invocation): one
  execution named after the object's identity, so a redelivery is a no-op;
* an SQS batch of such events (batching mode): one execution for the batch's new objects,
  with per-object deduplication marks in DynamoDB and partial batch failures.

Environment:
  STATE_MACHINE_ARN   the workflow to start (required)
  SOURCE_BUCKET       events for other buckets are skipped (optional)
  IGNORED_LOCATIONS   JSON list of s3://bucket/prefix the pipeline writes: skipped (optional)
  DEDUP_TABLE         DynamoDB table for cross-batch deduplication (batching mode)
  DEDUP_TTL_SECONDS   how long a taken object is remembered (default 7 days)
  LEASE_SECONDS       how long an unconfirmed mark blocks others (default 900)
  MANIFEST_BUCKET     where large batches are written as a manifest (batching mode)
  MANIFEST_PREFIX     key prefix of manifests (with MANIFEST_BUCKET)
  INLINE_LIMIT_BYTES  largest inline object list before a manifest is used (with MANIFEST_BUCKET)

MANIFEST_PREFIX and INLINE_LIMIT_BYTES are contract values (``event_driven_etl._contract``),
which this asset cannot import: ``TriggerFunction`` sets them, and they have no default here.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

try:  # imported as part of the event_driven_etl package (tests, offline harness)
    from .s3_events import (
        MalformedEventError,
        ObjectRef,
        execution_name,
        parse_object_created,
    )
except ImportError:  # deployed: the asset directory is the Lambda's top level
    from s3_events import (  # type: ignore[no-redef, import-not-found, unused-ignore]  # the asset is flat
        MalformedEventError,
        ObjectRef,
        execution_name,
        parse_object_created,
    )

_RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "ProvisionedThroughputExceededException",
    }
)


def log(level: str, message: str, **fields: Any) -> None:
    """One JSON object per line, so CloudWatch Logs Insights can filter on any field."""
    record = {"level": level, "message": message, **fields}
    print(json.dumps(record, default=str, ensure_ascii=False), file=sys.stdout, flush=True)


@dataclass
class Clients:
    """The AWS clients the handler uses; tests and the offline harness replace them."""

    stepfunctions: Any
    dynamodb: Any = None
    s3: Any = None


_clients: Clients | None = None


def clients() -> Clients:
    global _clients  # noqa: PLW0603 - one set of clients per Lambda container, made lazily
    if _clients is None:
        import boto3  # the Lambda runtime provides it

        _clients = Clients(
            stepfunctions=boto3.client("stepfunctions"),
            dynamodb=boto3.client("dynamodb") if os.environ.get("DEDUP_TABLE") else None,
            s3=boto3.client("s3") if os.environ.get("MANIFEST_BUCKET") else None,
        )
    return _clients


def set_clients(value: Clients | None) -> None:
    """Replace the AWS clients (tests, the offline harness); ``None`` recreates them lazily."""
    global _clients  # noqa: PLW0603
    _clients = value


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        return handle_sqs_batch(event["Records"], context)
    return handle_object_event(event, context)


# ---------------------------------------------------------------- per-object mode


def handle_object_event(event: Any, context: Any = None) -> dict[str, Any]:
    """Start one execution for one EventBridge event; raise on a malformed one.

    Raising makes Lambda retry the asynchronous invocation and then hand the event to the
    on-failure destination (an alarmed queue), so no event is dropped silently.
    """
    try:
        obj = parse_object_created(event)
    except MalformedEventError as error:
        log("ERROR", "malformed event", reason=str(error), event_id=_event_id(event))
        raise
    skip_reason = _skip_reason(obj)
    if skip_reason:
        log("INFO", "object skipped", reason=skip_reason, bucket=obj.bucket, key=obj.key)
        return {"started": 0, "skipped": 1}
    outcome = start_execution([obj], context)
    return {"started": int(outcome == "started"), "duplicates": int(outcome == "duplicate")}


# ---------------------------------------------------------------- batching mode


@dataclass
class _BatchItem:
    message_id: str
    obj: ObjectRef


@dataclass
class _Batch:
    failures: list[str] = field(default_factory=list)
    items: list[_BatchItem] = field(default_factory=list)
    skipped: int = 0


def handle_sqs_batch(records: list[Any], context: Any = None) -> dict[str, Any]:
    """Start one execution for the batch's new objects; report failed messages by id."""
    batch = _parse_records(records)
    unique: dict[str, ObjectRef] = {}
    for item in batch.items:
        unique.setdefault(item.obj.identity, item.obj)
    marks = DedupMarks.from_env()
    claimed = marks.claim(list(unique.values())) if marks else list(unique.values())
    if not claimed:
        log("INFO", "batch holds no new objects", messages=len(records))
        return _batch_response(batch.failures)
    claimed_ids = {o.identity for o in claimed}
    try:
        outcome = start_execution(claimed, context)
    except Exception as error:
        log("ERROR", "could not start execution; messages will be redelivered", error=repr(error))
        if marks:
            marks.release(claimed)
        batch.failures += [i.message_id for i in batch.items if i.obj.identity in claimed_ids]
        return _batch_response(batch.failures)
    if marks:
        try:
            marks.confirm(claimed)
        except Exception as error:  # the execution started: its messages are done
            # An unconfirmed mark stays "pending" until its lease ends; a redelivery of the
            # same objects then maps to the same execution name and starts nothing new.
            log("WARN", "could not confirm marks", error=repr(error), objects=len(claimed))
    log("INFO", "batch processed", outcome=outcome, objects=len(claimed), messages=len(records))
    return _batch_response(batch.failures)


def _parse_records(records: Iterable[Any]) -> _Batch:
    batch = _Batch()
    for record in records:
        message_id = str(record.get("messageId", "")) if isinstance(record, dict) else ""
        try:
            obj = parse_object_created(json.loads(record["body"]))
        except (MalformedEventError, ValueError, KeyError, TypeError) as error:
            log("ERROR", "malformed message", message_id=message_id, reason=str(error))
            batch.failures.append(message_id)
            continue
        reason = _skip_reason(obj)
        if reason:
            log("INFO", "object skipped", reason=reason, bucket=obj.bucket, key=obj.key)
            batch.skipped += 1
            continue
        batch.items.append(_BatchItem(message_id, obj))
    return batch


def _batch_response(failed_ids: list[str]) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": m} for m in dict.fromkeys(failed_ids)]}


class DedupMarks:
    """Per-object marks in DynamoDB so that an object is taken by one batch only.

    A mark is written ``pending`` with a lease before the execution starts and ``started``
    after; a failed start deletes it, so the redelivery processes the object. A pending mark
    whose lease ran out (the invocation died in between) may be taken over.
    """

    def __init__(self, table: str, ttl_seconds: int, lease_seconds: int) -> None:
        self.table = table
        self.ttl_seconds = ttl_seconds
        self.lease_seconds = lease_seconds
        self.token = uuid.uuid4().hex

    @classmethod
    def from_env(cls) -> DedupMarks | None:
        table = os.environ.get("DEDUP_TABLE")
        if not table:
            return None
        return cls(
            table,
            ttl_seconds=int(os.environ.get("DEDUP_TTL_SECONDS", str(7 * 24 * 3600))),
            lease_seconds=int(os.environ.get("LEASE_SECONDS", "900")),
        )

    def claim(self, objects: list[ObjectRef]) -> list[ObjectRef]:
        taken = _in_parallel(self._claim_one, objects)
        return [o for o, was_taken in zip(objects, taken) if was_taken]

    def _claim_one(self, obj: ObjectRef) -> bool:
        now = int(time.time())
        try:
            _with_retries(
                lambda: clients().dynamodb.put_item(
                    TableName=self.table,
                    Item={
                        "pk": {"S": obj.identity},
                        "state": {"S": "pending"},
                        "token": {"S": self.token},
                        "lease_until": {"N": str(now + self.lease_seconds)},
                        "expires_at": {"N": str(now + self.ttl_seconds)},
                    },
                    ConditionExpression="attribute_not_exists(pk) OR "
                    "(#s = :pending AND lease_until < :now)",
                    ExpressionAttributeNames={"#s": "state"},
                    ExpressionAttributeValues={
                        ":pending": {"S": "pending"},
                        ":now": {"N": str(now)},
                    },
                )
            )
        except Exception as error:
            if _error_code(error) == "ConditionalCheckFailedException":
                log("INFO", "duplicate object skipped", reason="already taken", uri=obj.uri)
                return False
            raise
        return True

    def confirm(self, objects: list[ObjectRef]) -> None:
        _in_parallel(self._confirm_one, objects)

    def _confirm_one(self, obj: ObjectRef) -> None:
        _with_retries(
            lambda: clients().dynamodb.update_item(
                TableName=self.table,
                Key={"pk": {"S": obj.identity}},
                UpdateExpression="SET #s = :started",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":started": {"S": "started"}},
            )
        )

    def release(self, objects: list[ObjectRef]) -> None:
        _in_parallel(self._release_one, objects)

    def _release_one(self, obj: ObjectRef) -> None:
        try:
            _with_retries(
                lambda: clients().dynamodb.delete_item(
                    TableName=self.table,
                    Key={"pk": {"S": obj.identity}},
                    ConditionExpression="#t = :token",
                    ExpressionAttributeNames={"#t": "token"},
                    ExpressionAttributeValues={":token": {"S": self.token}},
                )
            )
        except Exception as error:  # the lease still lets a redelivery take it over
            log("WARN", "could not release mark", uri=obj.uri, error=repr(error))


MARK_WORKERS = 16
"""DynamoDB calls in flight at once per invocation: a 10,000-object batch makes 20,000
calls (claim and confirm), which one after another would take minutes of the function's
timeout; boto3 clients are thread-safe."""


def _in_parallel(call: Callable[[ObjectRef], Any], objects: list[ObjectRef]) -> list[Any]:
    """``call`` for each object, up to :data:`MARK_WORKERS` at once; results in order. The
    first error is raised after every call ended (none is left running)."""
    if len(objects) <= 1:
        return [call(o) for o in objects]
    clients()  # made here, once: creating boto3 clients is not thread-safe
    with ThreadPoolExecutor(max_workers=min(MARK_WORKERS, len(objects))) as pool:
        futures = [pool.submit(call, o) for o in objects]
    return [f.result() for f in futures]


# ---------------------------------------------------------------- shared


def start_execution(objects: list[ObjectRef], context: Any = None) -> str:
    """Start the workflow for ``objects``; return ``"started"`` or ``"duplicate"``.

    Throttling and transient errors are retried with jittered backoff; anything else (or
    what still fails) raises, so the caller reports it for redelivery.
    """
    name = execution_name(objects)
    payload = _execution_input(objects, name)
    state_machine_arn = os.environ["STATE_MACHINE_ARN"]
    try:
        response = _with_retries(
            lambda: clients().stepfunctions.start_execution(
                stateMachineArn=state_machine_arn, name=name, input=payload
            ),
            deadline=_deadline(context),
        )
    except Exception as error:
        if _error_code(error) == "ExecutionAlreadyExists":
            log("INFO", "duplicate delivery; execution exists", execution_name=name)
            return "duplicate"
        raise
    log(
        "INFO",
        "execution started",
        execution_arn=response.get("executionArn"),
        objects=len(objects),
        first_object=objects[0].uri,
    )
    return "started"


def _execution_input(objects: list[ObjectRef], name: str) -> str:
    uris = sorted({o.uri for o in objects})
    inline = json.dumps({"objects": uris}, ensure_ascii=False)
    if not os.environ.get("MANIFEST_BUCKET"):
        return inline
    if len(inline.encode("utf-8")) <= int(_setting("INLINE_LIMIT_BYTES")):
        return inline
    return json.dumps({"manifest": write_manifest(uris, name), "object_count": len(uris)})


def write_manifest(uris: list[str], name: str) -> str:
    """Write a JSON-lines manifest (one JSON string, an ``s3://`` URI, per line)."""
    bucket = os.environ["MANIFEST_BUCKET"]
    key = f"{_setting('MANIFEST_PREFIX')}{name}.jsonl"
    body = "".join(json.dumps(u, ensure_ascii=False) + "\n" for u in uris).encode("utf-8")
    _with_retries(
        lambda: clients().s3.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson"
        )
    )
    return f"s3://{bucket}/{key}"


def _setting(name: str) -> str:
    """A variable the construct always sets (a contract value: no default here)."""
    value = os.environ.get(name)
    if value is None:
        raise RuntimeError(f"{name} is not set: TriggerFunction sets it with MANIFEST_BUCKET")
    return value


def _skip_reason(obj: ObjectRef) -> str:
    expected = os.environ.get("SOURCE_BUCKET")
    if expected and obj.bucket != expected:
        return f"event is for bucket {obj.bucket!r}, not the source bucket {expected!r}"
    for location in json.loads(os.environ.get("IGNORED_LOCATIONS") or "[]"):
        if f"s3://{obj.bucket}/{obj.key}".startswith(location):
            return f"written by the pipeline itself (under {location}), never its input"
    if obj.is_folder_marker:
        return "zero-byte folder marker"
    return ""


def _with_retries(
    call: Callable[[], Any],
    attempts: int = 6,
    base_delay: float = 0.1,
    max_delay: float = 5.0,
    deadline: float | None = None,
) -> Any:
    """Call with full-jitter exponential backoff on throttling and transient errors."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as error:
            delay = random.uniform(0, min(max_delay, base_delay * 2**attempt))
            out_of_time = deadline is not None and time.monotonic() + delay > deadline
            if _error_code(error) not in _RETRYABLE_CODES or attempt == attempts or out_of_time:
                raise
            log("WARN", "retrying after transient error", error=_error_code(error), attempt=attempt)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _deadline(context: Any) -> float | None:
    """Stop retrying with a few seconds to spare, so a failure is reported, not timed out."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return time.monotonic() + max(0.0, float(remaining()) / 1000 - 5)


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _event_id(event: Any) -> Any:
    return event.get("id") if isinstance(event, dict) else None

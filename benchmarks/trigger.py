"""The trigger handler: overhead per event and per batch, cold import, asset size, and a
burst of 10,000 object events (5% duplicates) through batching mode against moto.

    .venv/bin/python benchmarks/trigger.py [--events 10000] [--batch-size 100]

Overheads are measured against a baseline in the same run: a minimal handler that only
parses the event and calls the same stubbed StartExecution. Targets: asset < 50 KB,
cold import < 300 ms, overhead < 1 ms per event; the burst loses nothing and starts at
most ceil(events / batch size) executions (plus one per partial batch window).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
ROOT = Path(__file__).resolve().parents[1]
HANDLER_DIR = ROOT / "src" / "event_driven_etl" / "runtime" / "trigger"
sys.path.insert(0, str(ROOT / "src"))

from event_driven_etl.runtime.trigger import handler  # noqa: E402
from event_driven_etl.runtime.trigger.s3_events import encode_key  # noqa: E402


class StubStepFunctions:
    def __init__(self) -> None:
        self.calls = 0

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        return {"executionArn": f"arn:aws:states:::execution:etl:{kwargs['name']}"}


class StubDynamoDB:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def put_item(self, **kwargs: Any) -> None:
        key = kwargs["Item"]["pk"]["S"]
        if key in self.items and self.items[key]["state"]["S"] != "pending":
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "PutItem")
        self.items[key] = kwargs["Item"]

    def update_item(self, **kwargs: Any) -> None:
        self.items[kwargs["Key"]["pk"]["S"]]["state"] = {"S": "started"}

    def delete_item(self, **kwargs: Any) -> None:
        self.items.pop(kwargs["Key"]["pk"]["S"], None)


def object_event(i: int, bucket: str = "raw") -> dict[str, Any]:
    return {
        "id": f"e{i}",
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {
            "bucket": {"name": bucket},
            "object": {
                "key": encode_key(f"incoming/file {i:06}.csv"),
                "size": 100,
                "etag": f"{i:032x}",
                "sequencer": f"{i:018X}",
            },
        },
    }


def baseline_handler(event: dict[str, Any], client: StubStepFunctions) -> None:
    """What any trigger must do: read the event, start an execution."""
    detail = event["detail"]
    client.start_execution(
        stateMachineArn="arn",
        name=detail["object"]["etag"],
        input=json.dumps(
            {"objects": [f"s3://{detail['bucket']['name']}/{detail['object']['key']}"]}
        ),
    )


def per_event_overhead(events: int) -> tuple[float, float]:
    os.environ.update(STATE_MACHINE_ARN="arn:aws:states:::stateMachine:etl", SOURCE_BUCKET="raw")
    stub = StubStepFunctions()
    handler.set_clients(handler.Clients(stepfunctions=stub))
    batch = [object_event(i) for i in range(events)]
    times: dict[str, list[float]] = {"handler": [], "baseline": []}
    for _ in range(5):
        started = time.perf_counter()
        for event in batch:
            handler.handler(event)
        times["handler"].append((time.perf_counter() - started) / events)
        started = time.perf_counter()
        for event in batch:
            baseline_handler(event, stub)
        times["baseline"].append((time.perf_counter() - started) / events)
    return statistics.median(times["handler"]), statistics.median(times["baseline"])


def per_batch(size: int) -> float:
    os.environ.update(DEDUP_TABLE="marks", MANIFEST_BUCKET="", INLINE_LIMIT_BYTES="16000")
    durations = []
    for round_ in range(5):
        handler.set_clients(
            handler.Clients(stepfunctions=StubStepFunctions(), dynamodb=StubDynamoDB())
        )
        records = {
            "Records": [
                {
                    "messageId": str(i),
                    "eventSource": "aws:sqs",
                    "body": json.dumps(object_event(round_ * size + i)),
                }
                for i in range(size)
            ]
        }
        started = time.perf_counter()
        handler.handler(records)
        durations.append(time.perf_counter() - started)
    os.environ.pop("DEDUP_TABLE")
    return statistics.median(durations)


def cold_import_ms() -> tuple[float, float]:
    code = "import time; t=time.perf_counter(); import {m}; print((time.perf_counter()-t)*1000)"
    results: dict[str, list[float]] = {"handler": [], "json": []}
    for _ in range(7):
        for name, module in (("handler", "handler"), ("json", "json")):
            out = subprocess.run(
                [sys.executable, "-S", "-c", code.format(m=module)],
                cwd=HANDLER_DIR,
                capture_output=True,
                text=True,
                check=True,
            )
            results[name].append(float(out.stdout))
    return statistics.median(results["handler"]), statistics.median(results["json"])


def asset_size() -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(HANDLER_DIR.glob("*.py")):
            if path.name != "__init__.py":
                archive.write(path, path.name)
    return len(buffer.getvalue())


def burst(events: int, batch_size: int, duplicate_share: float) -> dict[str, Any]:
    """Batching mode against moto: every object in exactly one execution, none lost."""
    import boto3
    from moto import mock_aws

    os.environ.update(
        AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1"
    )
    rng = random.Random(7)
    stream = [object_event(i) for i in range(events)]
    stream += [
        dict(e, id=f"dup-{n}")
        for n, e in enumerate(rng.sample(stream, int(events * duplicate_share)))
    ]
    rng.shuffle(stream)
    with mock_aws():
        sfn = boto3.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="etl",
            roleArn="arn:aws:iam::123456789012:role/r",
            definition=json.dumps({"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}),
        )["stateMachineArn"]
        boto3.client("dynamodb").create_table(
            TableName="marks",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        boto3.client("s3").create_bucket(Bucket="out")
        os.environ.update(
            STATE_MACHINE_ARN=machine,
            SOURCE_BUCKET="raw",
            DEDUP_TABLE="marks",
            MANIFEST_BUCKET="out",
            MANIFEST_PREFIX="manifests/",
        )
        handler.set_clients(None)
        started = time.perf_counter()
        failures = 0
        for offset in range(0, len(stream), batch_size):
            records = [
                {"messageId": f"m{offset + i}", "eventSource": "aws:sqs", "body": json.dumps(e)}
                for i, e in enumerate(stream[offset : offset + batch_size])
            ]
            failures += len(handler.handler({"Records": records})["batchItemFailures"])
        elapsed = time.perf_counter() - started
        seen: list[str] = []
        executions = sfn.list_executions(stateMachineArn=machine, maxResults=1000)["executions"]
        for item in executions:
            payload = json.loads(sfn.describe_execution(executionArn=item["executionArn"])["input"])
            seen += payload.get("objects", [])
            if payload.get("manifest"):
                key = payload["manifest"].split("/", 3)[3]
                body = boto3.client("s3").get_object(Bucket="out", Key=key)["Body"].read().decode()
                seen += [json.loads(line) for line in body.splitlines() if line]
    expected = {f"s3://raw/incoming/file {i:06}.csv" for i in range(events)}
    return {
        "events_delivered": len(stream),
        "executions": len(executions),
        "execution_limit": math.ceil(len(stream) / batch_size),
        "objects_in_executions": len(seen),
        "distinct_objects": len(set(seen)),
        "lost": len(expected - set(seen)),
        "processed_twice": len(seen) - len(set(seen)),
        "batch_item_failures": failures,
        "seconds": round(elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    sys.stdout = io.TextIOWrapper(sys.stdout.buffer, line_buffering=True)
    real_stdout = sys.stdout
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the handler's log lines, not results
    try:
        handler_s, baseline_s = per_event_overhead(2_000)
        batch_s = per_batch(1_000)
        burst_result = burst(args.events, args.batch_size, 0.05)
    finally:
        sys.stdout.close()
        sys.stdout = real_stdout
    imported_ms, json_ms = cold_import_ms()
    print("trigger benchmark")
    print(
        f"  per event: handler {handler_s * 1e6:.0f} us, baseline {baseline_s * 1e6:.0f} us, "
        f"overhead {(handler_s - baseline_s) * 1e6:.0f} us (ratio {handler_s / baseline_s:.1f})"
    )
    print(
        f"  batch of 1,000 (stubbed clients): {batch_s * 1000:.0f} ms "
        f"({batch_s * 1e6 / 1000:.0f} us per event)"
    )
    print(f"  cold import: handler {imported_ms:.1f} ms, json alone {json_ms:.1f} ms")
    print(f"  asset size (zipped): {asset_size() / 1024:.1f} KB")
    print(f"  burst: {json.dumps(burst_result)}")
    ok = burst_result["lost"] == 0 and burst_result["processed_twice"] == 0
    ok = ok and burst_result["executions"] <= burst_result["execution_limit"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The trigger handler: overhead per event, cost per batch against emulated DynamoDB,
cold import, asset size, and a burst through the whole offline pipeline.

    .venv/bin/python benchmarks/trigger.py [--events 10000] [--batch-size 100]

Overheads are measured against a baseline in the same run: a minimal handler that only
parses the event and calls the same stubbed StartExecution. The per-batch cost runs the
handler against moto's DynamoDB (every claim and confirmation is a real call, after 5 ms
of simulated network time), counts the calls, and compares the handler's concurrent marks
with the same calls one at a time. The burst runs ``LocalPipeline`` in batching mode: real
SQS, 5 concurrent pollers, 5% duplicate deliveries, throttled StartExecution calls and one
invocation that dies after claiming its objects. Targets: asset < 50 KB, cold import
< 300 ms, overhead < 1 ms per event; the burst loses nothing, runs nothing twice,
dead-letters nothing, and no execution holds more than a batch.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import threading
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


DYNAMODB_LATENCY = 0.005
"""Seconds a DynamoDB call takes in the region (single-digit milliseconds)."""


class CountingClient:
    """Counts the calls made through a boto3 client, each after ``latency`` seconds of
    network time (concurrent calls wait side by side; moto itself is called one at a time,
    as it is not thread-safe)."""

    def __init__(self, client: Any, latency: float = 0.0) -> None:
        self.client = client
        self.calls = 0
        self.latency = latency
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if not callable(attribute):
            return attribute

        def call(**kwargs: Any) -> Any:
            time.sleep(self.latency)
            with self.lock:
                self.calls += 1
                return attribute(**kwargs)

        return call


def per_batch(size: int, workers: int) -> tuple[float, float]:
    """Median seconds per batch of ``size`` new objects with ``workers`` DynamoDB calls in
    flight, and DynamoDB calls per object, against moto's DynamoDB with each call taking
    :data:`DYNAMODB_LATENCY` (StartExecution stubbed: one call per batch)."""
    import boto3
    from moto import mock_aws

    os.environ.update(
        AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1"
    )
    os.environ.update(DEDUP_TABLE="marks", MANIFEST_BUCKET="", INLINE_LIMIT_BYTES="16000")
    default_workers, handler.MARK_WORKERS = handler.MARK_WORKERS, workers
    durations, calls_per_object = [], 0.0
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName="marks",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for round_ in range(3):
            dynamodb = CountingClient(boto3.client("dynamodb"), DYNAMODB_LATENCY)
            handler.set_clients(
                handler.Clients(stepfunctions=StubStepFunctions(), dynamodb=dynamodb)
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
            calls_per_object = dynamodb.calls / size
    handler.MARK_WORKERS = default_workers
    os.environ.pop("DEDUP_TABLE")
    handler.set_clients(None)
    return statistics.median(durations), calls_per_object


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
    """The whole offline pipeline in batching mode, with faults: every object in exactly one
    execution, none lost, none dead-lettered, no execution larger than a batch."""
    from aws_cdk import App, Stack

    from event_driven_etl import Batching, EventDrivenEtlPipeline
    from event_driven_etl.testing import LocalPipeline

    app = App()
    stack = Stack(app, "Burst")
    EventDrivenEtlPipeline(
        stack, "Pipeline", key_prefix="incoming/", batching=Batching(max_batch_size=batch_size)
    )
    rng = random.Random(7)
    with LocalPipeline.from_stack(stack, "Pipeline", glue_runner=lambda *_: None) as local:
        local.deliver_immediately = False
        local.faults.start_execution_throttled(times=20)
        local.faults.trigger_crashes_before_start()
        started = time.perf_counter()
        sent = [local.put_object(f"incoming/file {i:06}.csv", b"id\n1\n") for i in range(events)]
        duplicates = rng.sample(sent, int(events * duplicate_share))
        for event in duplicates:
            local.redeliver(event)
        runs = local.wait_for_runs(timeout=3600)
        elapsed = time.perf_counter() - started
        seen = [o for r in runs for o in r.objects]
        dead = local.dead_letters()
        bucket = local.source_bucket
    expected = {f"s3://{bucket}/incoming/file {i:06}.csv" for i in range(events)}
    return {
        "events_delivered": events + len(duplicates),
        "executions": len(runs),
        "largest_execution": max((len(r.objects) for r in runs), default=0),
        "failed_executions": sum(r.status != "SUCCEEDED" for r in runs),
        "objects_in_executions": len(seen),
        "lost": len(expected - set(seen)),
        "processed_twice": len(seen) - len(set(seen)),
        "dead_letters": len(dead),
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
        batch_s, calls_per_object = per_batch(1_000, handler.MARK_WORKERS)
        sequential_s, _ = per_batch(1_000, 1)
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
        f"  batch of 1,000 against moto's DynamoDB at {DYNAMODB_LATENCY * 1000:.0f} ms a call: "
        f"{calls_per_object:.1f} calls per object; {batch_s:.2f} s with "
        f"{handler.MARK_WORKERS} in flight, {sequential_s:.2f} s one at a time "
        f"(ratio {batch_s / sequential_s:.2f}); a batch of 10,000 projects to "
        f"{batch_s * 10:.0f} s ({sequential_s * 10:.0f} s one at a time) of a 300 s timeout"
    )
    print(f"  cold import: handler {imported_ms:.1f} ms, json alone {json_ms:.1f} ms")
    print(f"  asset size (zipped): {asset_size() / 1024:.1f} KB")
    print(f"  burst: {json.dumps(burst_result)}")
    ok = burst_result["lost"] == 0 and burst_result["processed_twice"] == 0
    ok = ok and burst_result["dead_letters"] == 0 and burst_result["failed_executions"] == 0
    ok = ok and burst_result["largest_execution"] <= args.batch_size
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

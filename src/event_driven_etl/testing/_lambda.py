"""Lambda as LocalPipeline needs it: load a handler from its asset folder and call it
in-process (no Docker), invoked asynchronously (Lambda's retries, event age and on-failure
destination) or by an SQS event source (pollers, batches, partial batch failures).
``_trigger`` runs the pipeline's trigger function on these."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional

from ._faults import InvocationCrash
from ._sqs import drain, receive
from ._time import CLOCK


class FunctionEnvironment:
    """Stands in for the ``os`` module inside a loaded handler: ``environ`` is the
    function's own environment, as in Lambda, not the test process's.

    Setting and restoring ``os.environ`` around each call would race with the threads of
    the emulated workflow, which copy ``os.environ`` when they create clients.
    """

    def __init__(self, variables: dict[str, str]) -> None:
        self.environ = dict(variables)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def load_handler_module(
    handler_dir: Path, module_file: str, environment: dict[str, str]
) -> ModuleType:
    """Import ``handler_dir/module_file.py`` under a unique name, its flat siblings
    importable as the Lambda runtime would make them, seeing ``environment`` as its
    ``os.environ``."""
    path = handler_dir / f"{module_file}.py"
    name = f"event_driven_etl_local_handler_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover
        raise ImportError(f"cannot load the trigger handler from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it loads
    sys.path.insert(0, str(handler_dir))
    try:
        for sibling in handler_dir.glob("*.py"):
            sys.modules.pop(sibling.stem, None)  # a flat sibling from another asset
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(handler_dir))
    module.os = FunctionEnvironment(environment)  # type: ignore[attr-defined]  # a module's global
    return module


Invoke = Callable[[dict[str, Any]], Any]
"""Calls the handler with one event (in-process, as Lambda would)."""


FailureDestination = Callable[[dict[str, Any], BaseException, str, int], None]
"""Receives an event that failed: the last error, the condition and the invocations."""
ASYNC_RETRY_WAITS = (60, 120)
"""Lambda waits 1 minute before the second attempt of an asynchronous invocation, and 2
minutes before the third."""


class AsyncInvoker:
    """Lambda's asynchronous invocation: each event delivered to ``queue_url`` (where the
    emulation puts what EventBridge hands the function) is tried ``1 + retry_attempts``
    times, Lambda's waits between attempts on the virtual clock; an event that still
    fails (``RetriesExhausted``), or that would be older than ``max_event_age`` seconds at
    its next attempt (``EventAgeExceeded``), goes to ``on_failure`` (the on-failure
    destination) with that condition."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        invoke: Invoke,
        *,
        retry_attempts: int,
        on_failure: FailureDestination,
        max_event_age: float = 6 * 3600,
    ) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._invoke = invoke
        self._retry_attempts = retry_attempts
        self._on_failure = on_failure
        self._max_event_age = max_event_age

    def run(self) -> None:
        for body in drain(self._sqs, self.queue_url):
            self._deliver(json.loads(body))

    def _deliver(self, event: dict[str, Any]) -> None:
        started = CLOCK.now()
        error: BaseException = RuntimeError("never invoked")
        for attempt in range(1 + self._retry_attempts):
            if attempt:
                wait = ASYNC_RETRY_WAITS[min(attempt, len(ASYNC_RETRY_WAITS)) - 1]
                if CLOCK.now() - started + wait > self._max_event_age:
                    self._on_failure(event, error, "EventAgeExceeded", attempt)
                    return
                CLOCK.sleep(wait)
            try:
                self._invoke(event)
                return
            except Exception as failure:
                error = failure
        self._on_failure(event, error, "RetriesExhausted", 1 + self._retry_attempts)


POLL_SECONDS = 1.0
"""How often (virtual seconds) an idle poller looks at the queue again, at least: records in
flight reappear within a second (or a twentieth of the visibility timeout, if longer) of
it, and a filling batch sees new records within a second (or a twentieth of its window)."""

BATCH_PAYLOAD_LIMIT = 6_291_456
"""Lambda's largest synchronous invocation payload (6 MB): an SQS batch stops there."""


class SqsPoller:
    """The SQS event source: ``pollers`` pollers at once (the mapping's maximum concurrency,
    else Lambda's first 5), each filling one batch at a time and invoking the handler with
    it. A batch is handed over when it holds ``batch_size`` records, when the batching
    window has passed since its first record, or when one more record would take the
    invocation's payload over 6 MB (that record waits for the next batch). Records the
    handler reports as failed (only with ``ReportBatchItemFailures``), and those of a
    failed, timed-out or crashed invocation, reappear after the visibility timeout; the
    queue's redrive moves them on after ``maxReceiveCount`` receives. :meth:`run` returns
    when the queue is empty."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        invoke: Invoke,
        *,
        pollers: int,
        batch_size: int,
        reports_item_failures: bool,
        batching_window: float = 0,
    ) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._region, account, name = _region_account_name(queue_url)
        self._queue_arn = f"arn:aws:sqs:{self._region}:{account}:{name}"
        self._invoke = invoke
        self._pollers = pollers
        self._batch_size = batch_size
        self._window = batching_window
        self._reports_item_failures = reports_item_failures
        self._batch_lock = threading.Lock()
        self._deadline: Optional[float] = None
        self._idle_step = POLL_SECONDS
        self.batches: list[int] = []
        """The size of each batch handed to the handler, in order."""

    def run(self, deadline: Optional[float] = None) -> bool:
        """Poll until the queue is empty, or until ``deadline`` (a ``time.monotonic()``
        value) passes; return whether the queue is empty. (Without a redrive policy a
        record that keeps failing is received for ever, as in AWS until its retention
        period ends.)"""
        self._deadline = deadline
        visibility = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout"]
        )["Attributes"].get("VisibilityTimeout", "30")
        # Records in flight reappear after the visibility timeout: an idle poller looks again
        # every twentieth of it (each look costs real time; 30 minutes is 1,800 looks).
        self._idle_step = max(POLL_SECONDS, float(visibility) / 20)
        # Each poller is an actor of the virtual clock; the caller waits for them released,
        # so the clock moves (visibility timeouts, batching windows) while they poll.
        pollers = [CLOCK.thread(self._poll, name=f"sqs-poller-{i}") for i in range(self._pollers)]
        for poller in pollers:
            poller.start()
        with CLOCK.released():
            for poller in pollers:
                poller.join()
        return self._drained()

    def _poll(self) -> None:
        while self._deadline is None or time.monotonic() < self._deadline:
            # The poller filling a batch waits on the clock (its window) holding this lock:
            # the others wait for the lock released from the clock, or it would stand still.
            with CLOCK.released():
                self._batch_lock.acquire()
            try:
                records = self._fill_batch()
                if records:
                    self.batches.append(len(records))
            finally:
                self._batch_lock.release()
            if not records:
                if self._drained():
                    return
                CLOCK.sleep(self._idle_step)  # records in flight: they reappear on the clock
                continue
            self._invoke_batch(records)

    def _fill_batch(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        payload = len('{"Records": []}')
        deadline = 0.0
        while len(records) < self._batch_size:
            messages = receive(self._sqs, self.queue_url, min(10, self._batch_size - len(records)))
            if not messages:
                if not records or CLOCK.now() >= deadline:
                    return records
                # A long window is watched in twentieths (each look costs real time).
                step = max(POLL_SECONDS, self._window / 20)
                CLOCK.sleep(min(step, deadline - CLOCK.now()))
                continue
            deadline = deadline or CLOCK.now() + self._window
            for index, message in enumerate(messages):
                record = self._record(message)
                size = len(json.dumps(record)) + 2
                if payload + size > BATCH_PAYLOAD_LIMIT and records:
                    for rest in messages[index:]:  # back to the queue, for the next batch
                        self._sqs.change_message_visibility(
                            QueueUrl=self.queue_url,
                            ReceiptHandle=rest["ReceiptHandle"],
                            VisibilityTimeout=0,
                        )
                    return records
                payload += size
                records.append(record)
        return records

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        """The record Lambda hands the handler for one message."""
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._region,
        }

    def _drained(self) -> bool:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return all(int(v) == 0 for v in attributes.values())

    def _invoke_batch(self, records: list[dict[str, Any]]) -> None:
        try:
            response = self._invoke({"Records": records}) or {}
        except InvocationCrash:
            return  # the records stay in flight and reappear after the visibility timeout
        except Exception:
            return  # an error (or a timeout) fails the whole batch: every record reappears
        failed = (
            {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            if self._reports_item_failures
            else set()
        )
        done = [r for r in records if r["messageId"] not in failed]
        for chunk in range(0, len(done), 10):
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
                    for i, r in enumerate(done[chunk : chunk + 10])
                ],
            )


def _region_account_name(queue_url: str) -> tuple[str, str, str]:
    """``https://sqs.<region>.amazonaws.com/<account>/<name>`` -> its three parts."""
    host, account, name = queue_url.removeprefix("https://").split("/")[:3]
    return host.split(".")[1], account, name

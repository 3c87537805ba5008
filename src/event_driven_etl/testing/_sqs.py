"""SQS as the harness uses it: moto's queues, received and drained as Lambda's pollers and
the tests read them, and one fix of moto's SQS model.

The fix is for speed: moto's receive checks each message's retention through
``get_queue_attributes``, which recomputes every attribute (message counts included) each
time, so receiving a queue of n messages costs O(n²). The check reads the retention period
directly instead, and the SQS model's clock reads the virtual clock (``_time.CLOCK``)
instead of building two datetimes per call (visibility timeouts and delays are virtual
waits like any other).
"""

from __future__ import annotations

from typing import Any

from ._time import CLOCK


def fix_moto() -> None:
    """Apply the fix (``_session.fix_moto`` applies it once, on a known moto)."""
    _patch_sqs_retention_check()


def receive(sqs: Any, queue_url: str, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` visible messages, 10 per request as SQS hands them out."""
    messages: list[dict[str, Any]] = []
    while len(messages) < limit:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, limit - len(messages)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            break
        messages += batch
    return messages


def drain(sqs: Any, queue_url: str) -> list[str]:
    """Every visible message's body; the messages are deleted."""
    bodies = []
    for message in receive(sqs, queue_url, 1_000_000):
        bodies.append(message["Body"])
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def _patch_sqs_retention_check() -> None:
    from moto.sqs import models

    def is_message_valid_based_on_retention_period(
        self: Any, queue_name: str, message: Any
    ) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > CLOCK.epoch())

    models.SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]  # patching moto
        is_message_valid_based_on_retention_period
    )
    slow_unix_time = vars(models)["unix_time"]

    def fast_unix_time(dt: Any = None) -> float:
        # The virtual clock's: visibility timeouts and delays are waits like any other.
        return CLOCK.epoch() if dt is None else float(slow_unix_time(dt))

    vars(models)["unix_time"] = fast_unix_time
    vars(models)["unix_time_millis"] = lambda dt=None: fast_unix_time(dt) * 1000.0

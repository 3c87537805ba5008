"""SQS as the harness uses it: moto's queues, received and drained as Lambda's pollers and
the tests read them, and fixes of moto's SQS model.

The fixes are for speed, so a capacity burst of 10,000 objects costs linear time:

- moto's receive checks each message's retention through ``get_queue_attributes``, which
  recomputes every attribute (message counts included) each time, so receiving a queue of n
  messages costs O(n²). The check reads the retention period directly instead, and the SQS
  model's clock reads the virtual clock (``_time.CLOCK``) instead of building two datetimes
  per call (visibility timeouts and delays are virtual waits like any other).
- ``SendMessage`` reads one attribute (content-based deduplication) through the same
  all-attributes property, counting the queue's messages on every send; during a send the
  three approximate counts, which it does not read, are not counted.
- ``DeleteMessage`` rebuilt the whole message list on every delete; it now removes the one
  message it finds (a received message is near the front, so the search is short).
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from ._time import CLOCK


def fix_moto() -> None:
    """Apply the fix (``_session.fix_moto`` applies it once, on a known moto)."""
    _patch_sqs_retention_check()
    _patch_sqs_send_attributes()
    _patch_sqs_delete()


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


_COUNTS = (
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
)
_sending = threading.local()
"""Set on a thread while moto's ``send_message`` runs (it reads no count)."""


def _patch_sqs_send_attributes() -> None:
    from moto.sqs import models

    for name in _COUNTS:
        count = getattr(models.Queue, name).fget

        def cheap(self: Any, count: Callable[[Any], int] = count) -> int:
            return 0 if getattr(_sending, "active", False) else count(self)

        setattr(models.Queue, name, property(cheap))

    send_message = models.SQSBackend.send_message

    def send_without_counts(self: Any, *args: Any, **kwargs: Any) -> Any:
        _sending.active = True
        try:
            return send_message(self, *args, **kwargs)
        finally:
            _sending.active = False

    models.SQSBackend.send_message = send_without_counts  # type: ignore[method-assign]  # patching moto


def _patch_sqs_delete() -> None:
    from moto.sqs import models

    invalid = vars(models)["ReceiptHandleIsInvalid"]

    def delete_message(self: Any, receipt_handle: str) -> None:
        if receipt_handle in self.deleted_messages:
            return  # already deleted: SQS accepts a second delete
        index = next(
            (i for i, m in enumerate(self._messages) if m.had_receipt_handle(receipt_handle)), -1
        )
        if index < 0:
            raise invalid()
        message = self._messages.pop(index)
        self.pending_messages.discard(message)
        self.deleted_messages.update(message.all_receipt_handles)

    models.Queue.delete_message = delete_message  # type: ignore[method-assign]  # patching moto

"""SNS as the tests observe it: every topic's messages delivered raw (with attributes) to
one emulated capture queue, read back in order."""

from __future__ import annotations

import json
from typing import Any


class NotificationCapture:
    """The topics' messages, delivered raw (with attributes) to one emulated queue."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._received: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def _collect(self) -> None:
        while True:
            batch = self._sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return
            for message in batch:
                attributes = {
                    k: v.get("StringValue") for k, v in message.get("MessageAttributes", {}).items()
                }
                self._received.append((json.loads(message["Body"]), attributes))
                self._sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Parsed JSON messages, oldest first."""
        self._collect()
        return [body for body, _ in self._received]

    @property
    def attributes(self) -> list[dict[str, Any]]:
        """Each message's SNS message attributes, in the same order."""
        self._collect()
        return [dict(attributes) for _, attributes in self._received]

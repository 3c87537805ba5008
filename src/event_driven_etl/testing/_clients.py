"""boto3 clients for the emulated services, made once per process.

Making a boto3 client takes about 40 ms (service model, endpoint rules), and a pipeline's
emulation needs about ten: made once and shared, they save most of a test's start-up.
Sharing is safe: boto3 clients are thread-safe, and moto answers every client's requests
(its handler is registered with botocore itself, not with one client) while a mock runs.
Use them only inside a running ``LocalPipeline``: outside moto they would reach AWS.
"""

from __future__ import annotations

import threading
from typing import Any

from ._template import REGION

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def emulated_client(service: str) -> Any:
    """The shared client of ``service`` in the emulation's region."""
    with _lock:
        client = _clients.get(service)
        if client is None:
            import boto3

            client = _clients[service] = boto3.client(service, region_name=REGION)
        return client

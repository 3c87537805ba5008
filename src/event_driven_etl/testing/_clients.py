"""boto3 clients for the emulated services, made once per process.

Making a boto3 client takes about 40 ms (service model, endpoint rules), and a pipeline's
emulation needs about ten: made once and shared, they save most of a test's start-up.
Sharing is safe: boto3 clients are thread-safe, and moto answers every client's requests
(its handler is registered with botocore itself, not with one client) while a mock runs.
Use them only inside a running ``LocalPipeline``: outside moto they would reach AWS.
:class:`SerialClient` makes concurrent callers' requests atomic, as AWS's are.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from ._template import REGION
from ._time import in_emulation_thread

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


SERVICE_LOCK = threading.RLock()
"""One request at a time to the emulated services from concurrent invocations and pollers:
AWS applies each request atomically (a conditional write, a receive), moto does not."""


class SerialClient:
    """A boto3 client whose requests run one at a time (under :data:`SERVICE_LOCK`)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith(("get_paginator", "meta")):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with SERVICE_LOCK:
                return attribute(*args, **kwargs)

        return call


_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_guarded = False


class OfflineOnlyError(RuntimeError):
    """A thread of the emulation tried to send a request past moto to a real endpoint."""


def guard_real_endpoints() -> None:
    """Refuse, once per process, any request an emulation thread would send to a real host.

    moto answers a request before botocore sends it, but only while its mock runs: a thread
    that outlives ``LocalPipeline.stop()`` (an execution's retrier, a Glue run past the
    ``wait_for_runs`` timeout) would otherwise send its next call to AWS itself
    (``states.us-east-1.amazonaws.com``). The harness promises never to reach AWS, so such a
    call fails here, at the one place botocore sends from; the test's own thread is left
    alone (a test may call real services on purpose).
    """
    global _guarded  # noqa: PLW0603 - botocore's sender is process-wide
    with _lock:
        if _guarded:
            return
        from botocore.httpsession import URLLib3Session

        original = URLLib3Session.send

        def send(self: Any, request: Any) -> Any:
            host = urlsplit(request.url).hostname or ""
            if in_emulation_thread() and host not in _LOOPBACK_HOSTS:
                raise OfflineOnlyError(
                    f"the offline emulation never calls AWS: refused {request.method} "
                    f"{host} from {threading.current_thread().name} (its pipeline has stopped)"
                )
            return original(self, request)

        URLLib3Session.send = send  # patched once, process-wide
        _guarded = True

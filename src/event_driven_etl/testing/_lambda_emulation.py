"""Lambda as LocalPipeline needs it: load a handler from its asset folder and call it
in-process (no Docker), with a context object and fault-injecting clients."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from types import ModuleType
from typing import Any

from ._faults import CRASH, DELAY, InvocationCrash


class FunctionEnvironment:
    """Stands in for the ``os`` module inside a loaded handler: ``environ`` is the
    function's own environment, as in Lambda, instead of the process-wide one.

    Setting and restoring ``os.environ`` around each call would race with the threads of
    the emulated workflow, which copy ``os.environ`` when they create clients.
    """

    def __init__(self, variables: dict[str, str]) -> None:
        self.environ = {**os.environ, **variables}

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
    module.os = FunctionEnvironment(environment)  # type: ignore[attr-defined]
    return module


class FaultyClient:
    """Wraps a boto3 client; raises queued errors on one operation before calling through."""

    def __init__(self, client: Any, operation: str, errors: deque[str]) -> None:
        self._client, self._operation, self._errors = client, operation, errors

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name != self._operation:
            return attribute

        def call(**kwargs: Any) -> Any:
            try:
                code = self._errors.popleft()
            except IndexError:
                return attribute(**kwargs)
            if code.startswith(DELAY):  # a slow call: it waits, then goes through
                time.sleep(float(code.removeprefix(DELAY)))
                return attribute(**kwargs)
            if code == CRASH:
                raise InvocationCrash(name)
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, name)

        return call


class LambdaContext:
    function_name = "local-trigger"
    aws_request_id = "local"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


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

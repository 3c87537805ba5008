"""The trigger function as Lambda runs it, in-process (no Docker).

:class:`EmulatedTrigger` (what the public ``TriggerFunction`` construct deploys) loads the
handler from its synthesized asset folder with the function's own environment (the
template's variables and Lambda's, not the test process's), gives it clients whose every
call is checked against the function's role and meets the injected faults, and invokes it
as Lambda does (``_lambda``): per object through the asynchronous invocation (retries, then
the on-failure destination), in batching mode through the SQS event source. An invocation
that runs past the function's ``Timeout`` fails, as Lambda stops it then.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Callable, Optional

from ._clients import SerialClient, emulated_client
from ._faults import Faults, FaultyClient
from ._iam import AccessDeniedError, AccessGate, CallCheck, RoleClient
from ._lambda import AsyncInvoker, SqsPoller, load_handler_module
from ._layout import PipelineLayout
from ._provision import Emulation
from ._template import ACCOUNT, REGION
from ._time import CLOCK, HandlerClock

EXECUTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
"""Step Functions' execution names: 1 to 80 characters (these are safe in every API)."""
EXECUTION_INPUT_LIMIT = 262_144
"""Step Functions' largest execution input, in bytes (256 KB)."""


class FunctionTimeoutError(Exception):
    """The invocation ran past the function's timeout: Lambda reports it failed."""


class LambdaContext:
    """The context Lambda passes: the remaining time counts down from the timeout (on the
    virtual clock)."""

    def __init__(self, function_name: str, timeout_seconds: float, memory_mb: int) -> None:
        self.function_name = function_name
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self._deadline = CLOCK.now() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - CLOCK.now()) * 1000))


class EmulatedTrigger:
    """The trigger handler, its clients and its two ways of being invoked."""

    def __init__(
        self,
        layout: PipelineLayout,
        emulation: Emulation,
        access: AccessGate,
        faults: Faults,
        *,
        sqs: Any,
        lost: Callable[[dict[str, Any]], None],
    ) -> None:
        self._layout = layout
        self._emulation = emulation
        self._access = access
        self._faults = faults
        self._sqs = sqs
        self._lost = lost
        self._role = access.role_of(layout.function_id)
        props = layout.resources[layout.function_id]["Properties"]
        self.name = str(layout.resolver.physical.get(layout.function_id, layout.function_id))
        self.timeout_seconds = float(props.get("Timeout", 3))
        """The function's ``Timeout``, in virtual seconds like every other duration."""
        self._memory_mb = int(props.get("MemorySize", 128))
        self.environment = self._environment(props)
        """What the handler sees as ``os.environ``."""
        module_file, _, self._entry = layout.handler_entry.rpartition(".")
        self.module: ModuleType = load_handler_module(
            layout.handler_dir, module_file, self.environment
        )
        if hasattr(self.module, "time"):  # its lease and deadlines on the virtual clock
            vars(self.module)["time"] = HandlerClock()
        self._install_clients()

    def _environment(self, props: Mapping[str, Any]) -> dict[str, str]:
        variables = props.get("Environment", {}).get("Variables", {})
        environment = {
            # What Lambda sets for every function (credentials are the emulation's).
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self._memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "LAMBDA_TASK_ROOT": str(self._layout.handler_dir),
            "TZ": ":UTC",
            **{k: str(v) for k, v in self._layout.resolver.resolve(variables).items()},
        }
        return environment

    # ------------------------------------------------------------------ invoking

    def invoke(self, event: dict[str, Any]) -> Any:
        """Call the handler once, as Lambda does; past the timeout the invocation failed
        (whatever it did until then stays done)."""
        context = LambdaContext(self.name, self.timeout_seconds, self._memory_mb)
        started = CLOCK.now()
        result = getattr(self.module, self._entry)(event, context)
        elapsed = CLOCK.now() - started
        if elapsed > self.timeout_seconds:
            raise FunctionTimeoutError(
                f"Task timed out after {elapsed:.2f} seconds (Timeout {self.timeout_seconds:g})"
            )
        return result

    def flush(self, deadline: Optional[float] = None) -> bool:
        """Deliver everything waiting, per object or (with an event queue) in batches;
        False if records still wait in the queue at ``deadline``."""
        if self._emulation.event_queue_url:
            return self.dispatch_batches(deadline)
        self.dispatch_per_object()
        return True

    def dispatch_per_object(self) -> None:
        """Invoke the handler for each delivered event, like Lambda's asynchronous invoke."""
        AsyncInvoker(
            self._sqs,
            self._emulation.delivery_queue_url,
            self.invoke,
            retry_attempts=self._layout.retry_attempts,
            max_event_age=self._layout.max_event_age,
            on_failure=self._send_to_failure_destination,
        ).run()

    def dispatch_batches(self, deadline: Optional[float] = None) -> bool:
        """Hand the event queue to the handler in batches, as the SQS event source does,
        until it is empty (True) or ``deadline`` passed (False)."""
        assert self._emulation.event_queue_url is not None
        return SqsPoller(
            self._sqs,
            self._emulation.event_queue_url,
            self.invoke,
            pollers=self._layout.pollers,
            batch_size=self._layout.batch_size,
            batching_window=self._layout.batching_window,
            reports_item_failures=self._layout.reports_item_failures,
        ).run(deadline)

    def _send_to_failure_destination(
        self, event: dict[str, Any], error: BaseException, condition: str, invocations: int
    ) -> None:
        """Lambda sends a failed event to the on-failure destination as the function's
        role; a destination the role may not send to loses it."""
        destination = self._layout.failure_destination
        if destination is None:
            self._lost(event)
            return
        try:
            self._access.check_queue_send(self._role, destination)
        except AccessDeniedError:
            self._lost(event)
            return
        queue_url = self._sqs.get_queue_url(QueueName=destination.rsplit(":", 1)[-1])
        self._sqs.send_message(
            QueueUrl=queue_url["QueueUrl"],
            MessageBody=json.dumps(
                {
                    "requestContext": {
                        "condition": condition,
                        "approximateInvokeCount": invocations,
                    },
                    "requestPayload": event,
                    "responsePayload": {
                        "errorType": type(error).__name__,
                        "errorMessage": str(error),
                    },
                }
            ),
        )

    # ------------------------------------------------------------------ clients

    def _install_clients(self) -> None:
        """The handler's clients: serialised, fault-injecting, checked as the role."""
        handler = self.module
        if not hasattr(handler, "set_clients"):
            return

        def client(service: str) -> RoleClient:
            check = self._access.client_call_check(self._role, service)
            assert check is not None  # the trigger's services are all checked
            made: Any = SerialClient(emulated_client(service))
            if service == "stepfunctions":
                made = FaultyClient(made, "start_execution", self._faults.start_execution_errors)
                return RoleClient(made, _with_limits(check))
            return RoleClient(made, check)

        handler.set_clients(
            handler.Clients(
                stepfunctions=client("stepfunctions"),
                dynamodb=client("dynamodb"),
                s3=client("s3"),
            )
        )


def _with_limits(check: CallCheck) -> CallCheck:
    """Step Functions' checks: the role's permission, then the API's own limits."""

    def checked(api: str, params: Mapping[str, Any]) -> None:
        check(api, params)
        if api == "StartExecution":
            check_start_execution_limits(params)

    return checked


def check_start_execution_limits(call: Mapping[str, Any]) -> None:
    """Refuse what Step Functions refuses: a name over 80 characters (or with characters
    outside ``A-Za-z0-9_-``), an input over 256 KB."""
    from botocore.exceptions import ClientError

    name = str(call.get("name", ""))
    if name and not EXECUTION_NAME.fullmatch(name):
        raise ClientError(
            {"Error": {"Code": "InvalidName", "Message": f"Invalid Name: '{name}'"}},
            "StartExecution",
        )
    size = len(str(call.get("input", "")).encode("utf-8"))
    if size > EXECUTION_INPUT_LIMIT:
        raise ClientError(
            {
                "Error": {
                    "Code": "InvalidExecutionInput",
                    "Message": f"input of {size} bytes exceeds {EXECUTION_INPUT_LIMIT}",
                }
            },
            "StartExecution",
        )

"""Fault injection for the offline pipeline: ``local.faults.<verb>(...)``.

Each verb queues a fault that the next matching call meets, as the AWS service would
produce it: a Glue run that ends badly, a StartJobRun that Glue refuses, a trigger whose
StartExecution is throttled, slow, or whose invocation dies, an EventBridge delivery that
fails. ``LocalPipeline.fail_next_glue_run`` (pinned in the design) is
:meth:`Faults.glue_run_fails`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._time import CLOCK

FAILED_RUN_STATES = ("FAILED", "TIMEOUT", "ERROR")
"""Final states of a Glue run that did not succeed."""

CRASH = "LocalInvocationCrash"
"""Queued on StartExecution: the invocation dies there (see :class:`InvocationCrash`)."""

DELAY = "LocalDelay:"
"""Queued on StartExecution with a number of seconds: the call waits, then goes through."""


class InvocationCrash(BaseException):
    """A Lambda invocation that dies: no ``except Exception`` in the handler sees it."""


@dataclass(frozen=True)
class GlueFailure:
    """How the next Glue run ends."""

    error: str
    cause: str
    after_script: bool
    state: str


class Faults:
    """Faults waiting for their call, as ``local.faults``: each method queues one kind, met
    by the next matching call of the offline pipeline as the AWS service would produce it.

    Example::

        with LocalPipeline.from_stack(stack, "Pipeline") as local:
            local.faults.glue_concurrency_exceeded(times=2)  # StartJobRun refused twice
            local.faults.start_execution_throttled()  # the trigger's StartExecution
            local.put_object("incoming/a.csv", b"id\\n1\\n")
            [run] = local.wait_for_runs()  # retried to success
    """

    def __init__(self) -> None:
        self.glue_failures: deque[GlueFailure] = deque()
        """How the next Glue runs end (:meth:`glue_run_fails`), next first."""
        self.glue_start_errors: deque[str] = deque()
        """Error codes of the next StartJobRun calls (:meth:`glue_start_fails`)."""
        self.start_execution_errors: deque[str] = deque()
        """What the trigger's next StartExecution calls meet (throttled, slow, crash)."""
        self.event_delivery_errors: deque[str] = deque()
        """Error codes of EventBridge's next deliveries to the object-created rule's target."""
        self.publish_errors: deque[str] = deque()
        """Error codes SNS answers the workflows' next Publish tasks with."""

    def glue_run_fails(
        self,
        error: str = "GlueJobFailed",
        cause: str = "injected failure",
        *,
        after_script: bool = False,
        state: str = "FAILED",
    ) -> None:
        """The next Glue run ends ``state`` with ``error: cause`` as its error message; with
        ``after_script=True`` the script runs and writes first (a lost driver)."""
        if state not in FAILED_RUN_STATES:
            raise ValueError(f"state must be one of {FAILED_RUN_STATES}, got {state!r}")
        self.glue_failures.append(GlueFailure(error, cause, after_script, state))

    def glue_start_fails(self, error_code: str, times: int = 1) -> None:
        """The next ``times`` StartJobRun calls fail with ``Glue.<error_code>``."""
        self.glue_start_errors.extend([error_code] * times)

    def glue_concurrency_exceeded(self, times: int = 1) -> None:
        """The next ``times`` StartJobRun calls fail with ``ConcurrentRunsExceededException``."""
        self.glue_start_fails("ConcurrentRunsExceededException", times)

    def start_execution_throttled(self, times: int = 1) -> None:
        """The trigger's next ``times`` StartExecution calls are throttled."""
        self.start_execution_errors.extend(["ThrottlingException"] * times)

    def start_execution_slow(self, seconds: float, times: int = 1) -> None:
        """The trigger's next ``times`` StartExecution calls take ``seconds`` (real time)
        before going through: the invocation holds its claimed objects meanwhile."""
        self.start_execution_errors.extend([f"{DELAY}{seconds}"] * times)

    def trigger_crashes_before_start(self, times: int = 1) -> None:
        """The trigger's next ``times`` invocations die after claiming their objects and
        before starting the execution (a Lambda timeout or out-of-memory): no error is
        reported, the records reappear after the visibility timeout."""
        self.start_execution_errors.extend([CRASH] * times)

    def event_delivery_fails(self, times: int = 1, error_code: str = "THROTTLING") -> None:
        """EventBridge's next ``times`` attempts to deliver to the object-created rule's
        target fail for a transient reason (the target throttled or unavailable): each is
        retried under the target's ``RetryPolicy``; past ``MaximumRetryAttempts`` the event
        goes to the target's dead-letter queue with ``ERROR_CODE`` ``error_code``."""
        self.event_delivery_errors.extend([error_code] * times)

    def sns_publish_fails(self, times: int = 1, error_code: str = "Throttled") -> None:
        """The next ``times`` SNS Publish tasks of the workflows (the notifications) fail
        before reaching SNS with SNS's ``error_code``; Step Functions names the task's error
        ``SNS.<error_code>Exception``, and the task's retrier decides what happens next."""
        self.publish_errors.extend([error_code] * times)

    def failing_tasks(self, gate: Callable[[str, Mapping[str, Any]], None]) -> TaskCheck:
        """``gate`` (a state machine's task check), preceded by the queued task faults."""

        def check(sfn_resource: str, parameters: Mapping[str, Any]) -> None:
            if sfn_resource.split(":::", 1)[-1] == "sns:publish":
                try:
                    code = self.publish_errors.popleft()
                except IndexError:  # nothing queued (or another execution took the last)
                    pass
                else:
                    raise _client_error(code, "Publish")
            gate(sfn_resource, parameters)

        return check


TaskCheck = Callable[[str, Mapping[str, Any]], None]


def _client_error(code: str, operation: str) -> Exception:
    from botocore.exceptions import ClientError

    error: Exception = ClientError(
        {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "local"},
        },
        operation,
    )
    return error


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
            if code.startswith(DELAY):  # a slow call: it waits (virtual time), then goes through
                CLOCK.sleep(float(code.removeprefix(DELAY)))
                return attribute(**kwargs)
            if code == CRASH:
                raise InvocationCrash(name)
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, name)

        return call

"""Fault injection for the offline pipeline: ``local.faults.<verb>(...)``.

Each verb queues a fault that the next matching call meets, as the AWS service would
produce it: a Glue run that ends badly, a StartJobRun that Glue refuses, a trigger whose
StartExecution is throttled, slow, or whose invocation dies. ``LocalPipeline`` keeps its
older names (``fail_next_glue_run`` is pinned in the design) as delegates.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

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


@dataclass
class Faults:
    """The faults waiting for their call; each verb adds to one queue."""

    glue_failures: deque[GlueFailure] = field(default_factory=deque)
    glue_start_errors: deque[str] = field(default_factory=deque)
    start_execution_errors: deque[str] = field(default_factory=deque)
    event_delivery_errors: deque[str] = field(default_factory=deque)

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

"""Value objects that tune the pipeline: :class:`RetryPolicy` and :class:`Batching`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn

from ._docs import public
from ._problems import Problems

__all__ = ["Batching", "RetryPolicy"]

_MAX_RETRY_ATTEMPTS = 100
_MAX_BATCH_SIZE = 10_000
_MAX_BATCHING_WINDOW_SECONDS = 300
_LONGEST_WAIT_SECONDS = 365 * 24 * 3600  # no execution lives longer than a year


@public
@dataclass(frozen=True)
class RetryPolicy:
    """How the workflow retries the Glue job run on transient errors.

    Transient errors are ``Glue.ConcurrentRunsExceededException`` (retried separately and
    more generously, see ``EtlStateMachine``'s ``concurrency_retry``), throttling and Glue
    internal errors (``Glue.ThrottlingException``, ``Glue.InternalServiceException``,
    ``Glue.OperationTimeoutException``, and ``Glue.AWSGlueException``, the name under which
    Step Functions reports Glue's throttling of ``StartJobRun``). A run that *ends* FAILED
    is a data or code error and is retried only when ``retry_failed_runs`` is true.

    Validates itself on construction and raises :class:`ValidationError`.
    """

    max_attempts: int = 3
    """Retries after the first attempt (0 turns retries off). Default: 3"""

    interval: Duration = field(default_factory=lambda: Duration.seconds(30))
    """Wait before the first retry. Default: 30 seconds"""

    backoff_rate: float = 2.0
    """Factor by which the wait grows with each retry (at least 1). Default: 2.0"""

    max_delay: Duration | None = None
    """Longest wait between two attempts. Default: - no limit besides the backoff"""

    jitter: bool = True
    """Randomise waits (full jitter) so a burst of executions does not retry in lockstep.
    Default: True"""

    retry_failed_runs: bool = False
    """Also run the job again when its run *ended* FAILED, with this policy's attempts and
    waits. Only a finished FAILED run is retried: AccessDenied, a missing job and other
    errors Step Functions also reports as ``States.TaskFailed`` are not, and neither is a run
    that ended TIMEOUT or ERROR. Default: False"""

    def __post_init__(self) -> None:
        problems = Problems("RetryPolicy")
        problems.integer_in_range("max_attempts", self.max_attempts, 0, _MAX_RETRY_ATTEMPTS)
        if not isinstance(self.interval, Duration):
            problems.add("interval", self.interval, "must be an aws_cdk.Duration")
        else:
            problems.seconds_in_range("interval", self.interval, 1, 24 * 3600)
        rate = self.backoff_rate
        ok = isinstance(rate, (int, float)) and not isinstance(rate, bool) and 1.0 <= rate <= 10
        problems.require(ok, "backoff_rate", rate, "must be a number from 1.0 to 10.0")
        if self.max_delay is not None:
            if not isinstance(self.max_delay, Duration):
                problems.add("max_delay", self.max_delay, "must be an aws_cdk.Duration or None")
            else:
                problems.seconds_in_range("max_delay", self.max_delay, 1, 24 * 3600)
                _check_delay_not_below_interval(problems, self.interval, self.max_delay)
        problems.require(
            isinstance(self.jitter, bool), "jitter", self.jitter, "must be True or False"
        )
        problems.require(
            isinstance(self.retry_failed_runs, bool),
            "retry_failed_runs",
            self.retry_failed_runs,
            "must be True or False",
        )
        problems.raise_if_any()

    def waits_in_seconds(self) -> list[int]:
        """The wait before each retry, before jitter: ``interval * backoff_rate ** n``,
        capped at ``max_delay``, in whole seconds (as Step Functions computes them)."""
        interval = self.interval.to_seconds()
        cap = self.max_delay.to_seconds() if self.max_delay is not None else None
        waits = []
        for attempt in range(self.max_attempts):
            wait = interval * self.backoff_rate**attempt
            waits.append(int(min(wait, cap or _LONGEST_WAIT_SECONDS, _LONGEST_WAIT_SECONDS)))
        return waits


@public
@dataclass(frozen=True)
class Batching:
    """Group object events into one workflow execution (and one Glue run) per batch.

    The rule feeds an SQS queue (with a dead-letter queue) that the trigger Lambda reads in
    batches. A batch is handed to Lambda when it holds ``max_batch_size`` events or when
    ``max_batching_window`` has passed since the first one, whichever comes first.

    Validates itself on construction and raises :class:`ValidationError`.
    """

    max_batch_size: int = 100
    """Most object events in one execution, 1 to 10,000. Default: 100"""

    max_batching_window: Duration = field(default_factory=lambda: Duration.minutes(1))
    """Longest wait to fill a batch, up to 5 minutes; SQS requires a window above zero when
    ``max_batch_size`` is over 10. Default: 1 minute"""

    def __post_init__(self) -> None:
        problems = Problems("Batching")
        problems.integer_in_range("max_batch_size", self.max_batch_size, 1, _MAX_BATCH_SIZE)
        window = self.max_batching_window
        if not isinstance(window, Duration):
            problems.add("max_batching_window", window, "must be an aws_cdk.Duration")
        else:
            problems.seconds_in_range(
                "max_batching_window", window, 0, _MAX_BATCHING_WINDOW_SECONDS
            )
            size = self.max_batch_size
            if (
                isinstance(size, int)
                and size > 10
                and not window.is_unresolved()
                and window.to_milliseconds() == 0
            ):
                problems.add(
                    "max_batching_window",
                    window,
                    f"must be above zero when max_batch_size ({size}) is over 10 (an SQS rule)",
                )
        problems.raise_if_any()


def _check_delay_not_below_interval(problems: Problems, interval: Any, max_delay: Duration) -> None:
    """A cap below the first wait would cut every wait to the cap: say so instead."""
    if not isinstance(interval, Duration) or interval.is_unresolved() or max_delay.is_unresolved():
        return
    if max_delay.to_milliseconds() < interval.to_milliseconds():
        problems.add(
            "max_delay",
            max_delay,
            f"must not be shorter than interval ({interval.to_human_string()}): it caps "
            "every wait, the first one included",
        )


def _retry_props(errors: tuple[str, ...], policy: RetryPolicy) -> dict[str, Any]:
    """A Step Functions retrier (``add_retry``'s arguments) for ``errors`` with ``policy``."""
    return {
        "errors": list(errors),
        "max_attempts": policy.max_attempts,
        "interval": policy.interval,
        "backoff_rate": policy.backoff_rate,
        "max_delay": policy.max_delay,
        "jitter_strategy": sfn.JitterType.FULL if policy.jitter else sfn.JitterType.NONE,
    }

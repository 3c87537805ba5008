"""Scaled time for the emulated workflow: waits keep their shape, divided by a factor.

Step Functions' retriers (interval, backoff, ``MaxDelaySeconds``, full jitter) and Wait
states run as synthesized; only the time they *sleep* is divided by the scale. Work is not
scaled: a Glue run on local Spark takes the seconds it takes. The execution's
``TimeoutSeconds`` is measured on a virtual clock, real time plus the waiting that scaling
skipped, so a burst that outlasts the retry budget, or a workflow timeout, happens offline
after the same *number* of waits as in AWS.

moto's interpreter sleeps in three places, patched here once per process (moto versions in
``_moto_patches.PATCHED_MOTO_VERSIONS`` only): ``RetrierDecl._eval_body`` (``time.sleep``),
``WaitFunction._wait_interval`` and ``Program.eval`` (the execution timeout).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

_state = threading.local()
_lock = threading.Lock()
_factor = 1.0
_skipped: dict[str, float] = {}
"""Execution ARN -> seconds of waiting the scale skipped so far."""
_waits: dict[str, list[float]] = {}
"""Execution ARN -> each wait of its retriers and Wait states, in virtual seconds."""
_installed = False


def set_scale(factor: float) -> None:
    """Divide every workflow wait by ``factor`` from now on (1 = real time)."""
    global _factor  # noqa: PLW0603 - the interpreter's clock is process-wide
    if not factor >= 1:
        raise ValueError(f"time_scale must be a number of at least 1, got {factor!r}")
    install()
    with _lock:
        _factor = float(factor)
        _skipped.clear()
        _waits.clear()


def scale() -> float:
    """The factor waits are divided by now."""
    return _factor


def scaled_seconds(seconds: float) -> int:
    """A wait of the template divided by the scale, in whole seconds: never 0 unless it was
    0 (SQS visibility and the trigger's lease count whole seconds)."""
    return 0 if seconds <= 0 else max(1, math.ceil(seconds / _factor))


def skipped_seconds(execution_arn: str) -> float:
    """Virtual seconds of waiting that scaling took out of one execution."""
    with _lock:
        return _skipped.get(execution_arn, 0.0)


def waits_of(execution_arn: str) -> list[float]:
    """Each wait one execution's retriers and Wait states took, in virtual seconds (as in
    AWS: interval, backoff, cap and jitter applied), in order."""
    with _lock:
        return list(_waits.get(execution_arn, []))


def _execution_of(env: Any) -> str:
    try:
        return str(env.states.context_object.context_object_data["Execution"]["Id"])
    except (AttributeError, KeyError, TypeError):  # pragma: no cover - unexpected moto build
        return ""


def _sleep(env: Any, seconds: float) -> float:
    """Sleep ``seconds`` of virtual time for ``env``'s execution; return the real seconds."""
    real = max(seconds, 0.0) / _factor
    with _lock:
        execution = _execution_of(env)
        _skipped[execution] = _skipped.get(execution, 0.0) + max(seconds, 0.0) - real
        _waits.setdefault(execution, []).append(max(seconds, 0.0))
    return real


class _RetrierClock:
    """Stands in for the ``time`` module inside moto's retrier."""

    @staticmethod
    def sleep(seconds: float) -> None:
        env = getattr(_state, "env", None)
        time.sleep(_sleep(env, seconds))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def install() -> None:
    """Patch moto's interpreter to sleep scaled time (idempotent)."""
    global _installed  # noqa: PLW0603
    if _installed:
        return
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.program import program
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    vars(retrier_decl)["time"] = _RetrierClock()
    original_retrier = retrier_decl.RetrierDecl._eval_body

    def retrier_eval_body(self: Any, env: Any) -> None:
        _state.env = env
        try:
            original_retrier(self, env)
        finally:
            _state.env = None

    retrier_decl.RetrierDecl._eval_body = retrier_eval_body  # type: ignore[method-assign]

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        deadline = time.monotonic() + _sleep(env, wait_seconds)
        while env.is_running():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            env.program_state_event.wait(remaining)

    wait_function.WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]

    def program_eval(self: Any, env: Any) -> None:
        timeout = self.timeout_seconds.timeout_seconds if self.timeout_seconds else None
        env.next_state_name = self.start_at.start_at_name
        worker = threading.Thread(
            target=super(program.Program, self).eval, args=(env,), daemon=True
        )
        vars(program)["TMP_THREADS"].append(worker)
        started = time.monotonic()
        worker.start()
        execution = _execution_of(env)
        while worker.is_alive():
            worker.join(timeout=0.05)
            if timeout is not None and worker.is_alive():
                virtual = time.monotonic() - started + skipped_seconds(execution)
                if virtual >= timeout:
                    env.set_timed_out()
                    return

    program.Program.eval = program_eval  # type: ignore[method-assign]
    _installed = True

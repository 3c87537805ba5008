"""The virtual clock of the emulation: every wait is virtual time, and so is a Glue run.

Offline outcomes must depend on the template and the arrivals, not on how fast the machine
is. So nothing in the emulation sleeps real time: retriers (interval, backoff,
``MaxDelaySeconds``, full jitter), Wait states, the execution's ``TimeoutSeconds`` and a
task's ``TimeoutSeconds``, the ``.sync`` wait for a Glue run, Lambda's asynchronous retries,
the SQS visibility timeout and batching window, the trigger's lease and the time a Glue run
holds its concurrency slot all wait on :data:`CLOCK`.

The clock is a discrete-event clock. The threads of the emulation that do work (an
execution's interpreter, a Glue run, an SQS poller, and the test's own thread while it runs
test code) are its *actors*. Virtual time stands still while any actor works; when every
actor waits on the clock (or on a :class:`Signal`), the clock jumps to the earliest wake-up.
So a local Spark run takes no virtual time (a run lasts ``glue_run_time`` whatever Spark
took), and a 3-hour retry budget passes in the milliseconds the interpreter needs for its
40 attempts. An actor blocked on anything else (a lock, a join) still counts as working:
the clock waits for it, which is what makes the outcome independent of scheduling.

moto's interpreter sleeps and waits in a few places, patched here once per process (moto
versions in ``_moto_patches.PATCHED_MOTO_VERSIONS`` only): the retrier (``time.sleep``), the
Wait state, ``Program.eval`` (the execution timeout), ``ExecutionState._evaluate_with_timeout``
(a task's timeout), ``StateTaskServiceCallback._eval_sync`` (the ``.sync`` poll) and
``ExecutionWorker.start`` (an execution's thread is an actor). Map and Parallel states are
not patched: their workers wait on moto's own events, so a template using them would stall
the clock (``wait_for_runs`` then raises ``TimeoutError``; the pipeline's workflow uses
neither).
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable, Optional


class _Waiter:
    __slots__ = ("actor", "condition", "signalled", "wake", "woken")

    def __init__(self, wake: float, actor: bool, lock: threading.Lock) -> None:
        self.wake = wake
        self.actor = actor
        self.woken = False
        self.signalled = False
        self.condition = threading.Condition(lock)
        """Its own, on the clock's lock: waking one waiter wakes no other thread."""


class Signal:
    """Something actors wait for (a Glue run ended, an execution's program finished).

    :meth:`VirtualClock.pulse` wakes every waiter; ``generation`` counts the pulses, so a
    waiter that read it before checking its condition never misses a pulse in between."""

    def __init__(self) -> None:
        self.generation = 0
        self._waiters: list[_Waiter] = []


_EMULATION_THREAD = threading.local()


def in_emulation_thread() -> bool:
    """Whether the calling thread was started by the emulation (an execution, a Glue run, a
    poller), in this pipeline or in one already stopped: such a thread must never reach AWS."""
    return getattr(_EMULATION_THREAD, "marked", False)


class VirtualClock:
    """Virtual seconds since the emulation started (see the module's docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._now = 0.0
        self._busy = 0
        self._heap: list[tuple[float, int, _Waiter]] = []
        self._pending: set[_Waiter] = set()
        """Every waiter not woken yet (also those without a wake-up time)."""
        self._sequence = 0
        self._era = 0
        """Bumped by :meth:`reset`: a thread of an earlier pipeline no longer counts."""
        self._epoch = time.time()
        self._local = threading.local()

    # ------------------------------------------------------------------ reading

    def now(self) -> float:
        """Virtual seconds since :meth:`reset`."""
        return self._now

    def epoch(self) -> float:
        """The virtual time as a Unix timestamp (what ``time.time()`` would say in AWS)."""
        return self._epoch + self._now

    # ------------------------------------------------------------------ actors

    def _is_actor(self) -> bool:
        return getattr(self._local, "era", None) == self._era

    def thread(
        self, target: Callable[..., Any], *, name: Optional[str] = None, args: tuple[Any, ...] = ()
    ) -> threading.Thread:
        """A daemon thread that is an actor from now (not from ``start()``: the clock must
        not move between creating it and its first step) until it ends."""
        with self._cv:
            self._busy += 1
            era = self._era

        def run() -> None:
            self._local.era = era
            _EMULATION_THREAD.marked = True  # for good: see in_emulation_thread
            try:
                target(*args)
            finally:
                with self._cv:
                    if era == self._era:
                        self._busy -= 1
                        self._advance()
                self._local.era = None

        return threading.Thread(target=run, name=name, daemon=True)

    def hold(self) -> None:
        """Make the calling thread an actor (the test's thread while the pipeline runs:
        virtual time stands still while test code runs)."""
        with self._cv:
            if not self._is_actor():
                self._busy += 1
                self._local.era = self._era

    @contextmanager
    def released(self) -> Iterator[None]:
        """The calling actor waits on something real (other actors' progress, a join): the
        clock may move meanwhile."""
        with self._cv:
            actor = self._is_actor()
            if actor:
                self._busy -= 1
                self._advance()
        try:
            yield
        finally:
            with self._cv:
                if actor and self._is_actor():
                    self._busy += 1

    # ------------------------------------------------------------------ waiting

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of virtual time."""
        self._wait(self._now + max(0.0, seconds), None, 0)

    def sleep_until(self, moment: float) -> None:
        """Wait until virtual time ``moment``."""
        self._wait(moment, None, 0)

    def wait(self, signal: Signal, since: int, timeout: Optional[float] = None) -> bool:
        """Wait for a pulse of ``signal`` after its generation ``since``, at most ``timeout``
        virtual seconds (None: no limit); return whether it was pulsed."""
        wake = math.inf if timeout is None else self._now + max(0.0, timeout)
        return self._wait(wake, signal, since)

    def pulse(self, signal: Signal) -> None:
        """Wake every waiter of ``signal``."""
        with self._cv:
            signal.generation += 1
            for waiter in signal._waiters:
                if not waiter.woken:
                    waiter.signalled = True
                    self._wake(waiter)
            signal._waiters.clear()

    def _wait(self, wake: float, signal: Optional[Signal], since: int) -> bool:
        with self._cv:
            if signal is not None and signal.generation != since:
                return True
            waiter = _Waiter(wake, self._is_actor(), self._lock)
            if wake < math.inf:
                self._sequence += 1
                heapq.heappush(self._heap, (wake, self._sequence, waiter))
            if signal is not None:
                signal._waiters.append(waiter)
            self._pending.add(waiter)
            if waiter.actor:
                self._busy -= 1
            self._advance()
            while not waiter.woken:
                waiter.condition.wait()
            return waiter.signalled

    def _wake(self, waiter: _Waiter) -> None:
        """Under the lock: the waiter is woken, and (an actor) working again from now, so
        the clock cannot move on before it has taken its next step."""
        waiter.woken = True
        self._pending.discard(waiter)
        if waiter.actor:
            self._busy += 1
        waiter.condition.notify()

    def _advance(self) -> None:
        """Under the lock: while no actor works, jump to the earliest wake-up."""
        while self._busy <= 0 and self._heap:
            wake, _, waiter = self._heap[0]
            if waiter.woken:
                heapq.heappop(self._heap)
                continue
            self._now = max(self._now, wake)
            while self._heap and self._heap[0][0] <= self._now:
                _, _, due = heapq.heappop(self._heap)
                if not due.woken:
                    self._wake(due)

    def waiting(self) -> int:
        """How many waits are pending (for diagnostics)."""
        with self._cv:
            return len(self._pending)

    # ------------------------------------------------------------------ lifecycle

    def reset(self) -> None:
        """Back to 0, every pending wait woken (the threads of a stopped emulation finish),
        and no thread an actor any more."""
        with self._cv:
            self._era += 1
            for waiter in self._pending:
                waiter.woken = True
                waiter.condition.notify()
            self._pending.clear()
            self._heap.clear()
            self._now = 0.0
            self._busy = 0
            self._epoch = time.time()
        _waits.clear()


CLOCK = VirtualClock()
"""The emulation's clock (one per process: moto's interpreter is process-wide)."""

GLUE_RUN_ENDED = Signal()
"""Pulsed when an emulated Glue run reaches a final state (the ``.sync`` tasks wait on it)."""

SYNC_POLL_SECONDS = 3600.0
"""How often (virtual seconds) a ``.sync`` task checks its run besides each
:data:`GLUE_RUN_ENDED` pulse (which every emulated run sends): only a run of a job no
LocalPipeline owns needs it, and frequent checks of thousands of waiting runs would cost
real time."""

_lock = threading.Lock()
_waits: dict[str, list[float]] = {}
"""Execution ARN -> each wait of its retriers and Wait states, in virtual seconds."""
_installed = False


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


def _record(env: Any, seconds: float) -> None:
    with _lock:
        _waits.setdefault(_execution_of(env), []).append(max(seconds, 0.0))


_state = threading.local()


class _RetrierClock:
    """Stands in for the ``time`` module inside moto's retrier."""

    @staticmethod
    def sleep(seconds: float) -> None:
        _record(getattr(_state, "env", None), seconds)
        CLOCK.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class HandlerClock:
    """Stands in for the ``time`` module inside a loaded Lambda handler: ``time()`` and
    ``monotonic()`` read the virtual clock (the lease, the context's deadline); ``sleep`` is
    virtual on an actor's thread and real elsewhere (the handler's own thread pool: an actor
    waits for those threads, so they must not wait for the clock)."""

    @staticmethod
    def time() -> float:
        return CLOCK.epoch()

    @staticmethod
    def monotonic() -> float:
        return CLOCK.now()

    @staticmethod
    def sleep(seconds: float) -> None:
        if CLOCK._is_actor():
            CLOCK.sleep(seconds)
        else:
            time.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def install() -> None:
    """Patch moto's interpreter to wait on the virtual clock (idempotent)."""
    global _installed  # noqa: PLW0603 - the interpreter is process-wide
    if _installed:
        return
    _patch_retrier()
    _patch_wait_state()
    _patch_program_timeout()
    _patch_task_timeout()
    _patch_sync_wait()
    _patch_execution_thread()
    _installed = True


def _patch_retrier() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    vars(retrier_decl)["time"] = _RetrierClock()
    original = retrier_decl.RetrierDecl._eval_body

    def retrier_eval_body(self: Any, env: Any) -> None:
        _state.env = env
        try:
            original(self, env)
        finally:
            _state.env = None

    retrier_decl.RetrierDecl._eval_body = retrier_eval_body  # type: ignore[method-assign]


def _patch_wait_state() -> None:
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        _record(env, wait_seconds)
        CLOCK.sleep(wait_seconds)

    wait_function.WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]


def _patch_program_timeout() -> None:
    from moto.stepfunctions.parser.asl.component.program import program

    def program_eval(self: Any, env: Any) -> None:
        timeout = self.timeout_seconds.timeout_seconds if self.timeout_seconds else None
        env.next_state_name = self.start_at.start_at_name
        done = Signal()

        def body() -> None:
            try:
                super(program.Program, self).eval(env)
            finally:
                CLOCK.pulse(done)

        worker = CLOCK.thread(body)
        vars(program)["TMP_THREADS"].append(worker)
        worker.start()
        # Step Functions' TimeoutSeconds, on the virtual clock: an execution that is still
        # running when it passes is TIMED_OUT, whatever it was waiting for.
        if not CLOCK.wait(done, 0, timeout) and env.is_running():
            env.set_timed_out()

    program.Program.eval = program_eval  # type: ignore[method-assign]


def _patch_task_timeout() -> None:
    import copy

    from moto.stepfunctions.parser.asl.component.state.exec import execute_state

    cls = execute_state.ExecutionState
    timeout_error = vars(execute_state)["EvalTimeoutError"]

    def evaluate_with_timeout(self: Any, env: Any) -> None:
        # moto's own, with the wait on the virtual clock instead of threading.Event.wait.
        self.timeout.eval(env=env)
        timeout_seconds: int = env.stack.pop()
        frame = env.open_frame()
        frame.states.reset(input_value=env.states.get_input())
        frame.stack = copy.deepcopy(env.stack)
        outputs: list[Any] = []
        errors: list[Optional[Exception]] = [None]
        done = Signal()

        def run() -> None:
            try:
                self._eval_execution(frame)
                outputs.extend(frame.stack)
            except Exception as error:
                errors.append(error)
            finally:
                CLOCK.pulse(done)

        worker = CLOCK.thread(run)
        vars(execute_state)["TMP_THREADS"].append(worker)
        worker.start()
        finished_on_time = CLOCK.wait(done, 0, timeout_seconds)
        frame.set_ended()
        env.close_frame(frame)
        error = errors.pop()
        if error:
            raise error
        if not finished_on_time:
            raise timeout_error()
        output = outputs.pop()
        env.stack.append(output)
        if not self._is_language_query_jsonpath():
            env.states.set_result(output)
        if self.assign_decl:
            self.assign_decl.eval(env=env)
        if self.result_selector:
            self.result_selector.eval(env=env)
        if self.result_path:
            self.result_path.eval(env)
        else:
            env.states.reset(input_value=env.stack.pop())

    cls._evaluate_with_timeout = evaluate_with_timeout  # type: ignore[method-assign]


def _patch_sync_wait() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as module,
    )

    cls = module.StateTaskServiceCallback
    original = cls._eval_sync

    def eval_sync(  # noqa: PLR0917 - moto's signature
        self: Any,
        env: Any,
        sync_resolver: Optional[Callable[[], Any]],
        timeout_seconds: Optional[int],
        callback_endpoint: Any,
        heartbeat_endpoint: Any,
    ) -> Any:
        if callback_endpoint is not None:  # pragma: no cover - the pipeline has no callbacks
            return original(
                self, env, sync_resolver, timeout_seconds, callback_endpoint, heartbeat_endpoint
            )
        result = None
        while env.is_running() and sync_resolver is not None:
            generation = GLUE_RUN_ENDED.generation  # before the check: no pulse is missed
            result = sync_resolver()
            if result:
                break
            CLOCK.wait(GLUE_RUN_ENDED, generation, SYNC_POLL_SECONDS)
        return result

    cls._eval_sync = eval_sync  # type: ignore[method-assign]


def _patch_execution_thread() -> None:
    from moto.stepfunctions.parser.backend import execution_worker

    def start(self: Any) -> None:
        worker = CLOCK.thread(self._execution_logic)
        vars(execution_worker)["TMP_THREADS"].append(worker)
        worker.start()

    execution_worker.ExecutionWorker.start = start  # type: ignore[method-assign]

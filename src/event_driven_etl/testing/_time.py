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

moto's Step Functions interpreter sleeps and waits in a few places: ``_stepfunctions.clock``
makes those waits wait on this clock.
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


class Deadline:
    """A moment (virtual seconds) by which the calling thread's work must be done: see
    :meth:`VirtualClock.deadline`."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at


class DeadlineExceeded(BaseException):
    """Raised in a thread whose :class:`Deadline` passed while it waited on the clock.

    A ``BaseException``: moto's interpreter turns every ``Exception`` raised inside a state
    into a state error, and a timeout must instead unwind to the code that set the deadline
    (which catches its own ``deadline`` and re-raises anyone else's)."""

    def __init__(self, deadline: Deadline) -> None:
        super().__init__(f"deadline at {deadline.at:g} virtual s passed")
        self.deadline = deadline


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
        self.wakeups = 0
        """How many waits were woken since :meth:`reset` (a pulse's waiters, due wake-ups): a
        deterministic measure of the emulation's work, which tests hold linear in a burst."""
        self.threads = 0
        """Threads of the emulation (:meth:`thread`) made and not yet ended."""
        self.peak_threads = 0
        """The most :attr:`threads` at once since :meth:`reset`: what a burst costs the
        machine (its thread limit, ``kernel.pid_max``, bounds the executions in flight)."""

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
            self.threads += 1
            self.peak_threads = max(self.peak_threads, self.threads)

        def run() -> None:
            self._local.era = era
            _EMULATION_THREAD.marked = True  # for good: see in_emulation_thread
            try:
                target(*args)
            finally:
                with self._cv:
                    if era == self._era:
                        self._busy -= 1
                        self.threads -= 1
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

    # ------------------------------------------------------------------ deadlines

    @contextmanager
    def deadline(self, seconds: Optional[float]) -> Iterator[Deadline]:
        """Work of the calling thread that must end within ``seconds`` virtual seconds (None:
        no limit): a wait on the clock that would end later ends at the deadline and raises
        :class:`DeadlineExceeded` instead.

        How Step Functions' ``TimeoutSeconds`` (an execution's, a task's) is kept without a
        thread: moto runs the body on a thread of its own and waits for it with a timeout, so
        every execution in flight held three threads, and a burst of 10,000 queued executions
        reached the machine's thread limit. A body takes virtual time only while it waits on
        the clock, so a deadline checked in those waits is the same timeout. Deadlines nest
        (a task's inside its execution's); the earliest is kept, the outer one on a tie."""
        at = math.inf if seconds is None else self._now + max(0.0, seconds)
        mark = Deadline(at)
        stack = self._deadlines()
        stack.append(mark)
        try:
            yield mark
        finally:
            stack.remove(mark)

    def _deadlines(self) -> list[Deadline]:
        stack: Optional[list[Deadline]] = getattr(self._local, "deadlines", None)
        if stack is None:
            stack = self._local.deadlines = []
        return stack

    def _earliest_deadline(self) -> Optional[Deadline]:
        stack: Optional[list[Deadline]] = getattr(self._local, "deadlines", None)
        return min(stack, key=lambda d: d.at) if stack else None  # min keeps the outer on a tie

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
        """Wake every waiter of ``signal`` (and no other waiter: see :class:`KeyedSignals`
        for many waiters that each wait for their own event)."""
        with self._cv:
            signal.generation += 1
            for waiter in signal._waiters:
                if not waiter.woken:
                    waiter.signalled = True
                    self._wake(waiter)
            signal._waiters.clear()

    def _wait(self, wake: float, signal: Optional[Signal], since: int) -> bool:
        deadline = self._earliest_deadline()
        with self._cv:
            if signal is not None and signal.generation != since:
                return True
            if deadline is not None and deadline.at <= wake:
                if deadline.at <= self._now:
                    raise DeadlineExceeded(deadline)
                wake = deadline.at
            else:
                deadline = None
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
            if deadline is not None and not waiter.signalled and self._now >= deadline.at:
                raise DeadlineExceeded(deadline)
            return waiter.signalled

    def _wake(self, waiter: _Waiter) -> None:
        """Under the lock: the waiter is woken, and (an actor) working again from now, so
        the clock cannot move on before it has taken its next step."""
        waiter.woken = True
        self.wakeups += 1
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
            self.wakeups = 0
            self.threads = self.peak_threads = 0


CLOCK = VirtualClock()
"""The emulation's clock (one per process: moto's interpreter is process-wide)."""


class KeyedSignals:
    """One :class:`Signal` per key (a Glue run's id): a pulse wakes only the waiters of its
    key. One signal for every key would wake every waiter on each pulse, each to find its
    own key unchanged and wait again: with n executions waiting on n runs, n² wake-ups.

    A waiter takes :meth:`of` its key *before* checking its condition, then waits on it
    from the generation it read; :meth:`pulse` drops the key's signal after pulsing it, so
    a waiter that takes the key afterwards gets a fresh signal but finds its condition
    already true (the pulser changes the state first)."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._signals: dict[str, Signal] = {}

    def of(self, key: str) -> Signal:
        with self._lock:
            return self._signals.setdefault(key, Signal())

    def pulse(self, key: str) -> None:
        """Wake the waiters of ``key`` (after the state they wait for has changed)."""
        with self._lock:
            signal = self._signals.pop(key, None)
        if signal is not None:
            self._clock.pulse(signal)

    def forget(self, key: str) -> None:
        """The waiter of ``key`` is done with it (its signal need not be kept)."""
        with self._lock:
            self._signals.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._signals)


GLUE_RUN_ENDED = KeyedSignals(CLOCK)
"""Pulsed with a run's id when an emulated Glue run reaches a final state (that run's
``.sync`` task waits on it)."""


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

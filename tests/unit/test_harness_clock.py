"""The virtual clock's wake-ups (a pulse wakes only the waiters of its own event) and its
deadlines (Step Functions' TimeoutSeconds without a thread)."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable

import pytest

from event_driven_etl.testing._time import (
    DeadlineExceeded,
    KeyedSignals,
    Signal,
    VirtualClock,
)


def _until(condition: Callable[[], bool], what: str) -> None:
    """Until ``condition()`` holds: the waiters are real threads that take a moment to
    start waiting (a guard against a hang, not a timing assertion)."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _waiter(
    clock: VirtualClock, signals: KeyedSignals, key: str, woken: list[str]
) -> threading.Thread:
    def wait() -> None:
        signal = signals.of(key)
        if clock.wait(signal, signal.generation):
            woken.append(key)

    return clock.thread(wait, name=f"waits-for-{key}")


def test_a_keyed_pulse_wakes_only_the_waiters_of_its_key() -> None:
    clock = VirtualClock()
    signals = KeyedSignals(clock)
    woken: list[str] = []
    workers = [_waiter(clock, signals, key, woken) for key in ("run-a", "run-b", "run-b")]
    for worker in workers:
        worker.start()
    _until(lambda: clock.waiting() == 3, "three waiters")
    signals.pulse("run-a")
    workers[0].join(timeout=30)
    assert woken == ["run-a"]
    assert clock.wakeups == 1  # the other two slept on
    assert clock.waiting() == 2
    signals.pulse("run-b")
    for worker in workers[1:]:
        worker.join(timeout=30)
    assert woken == ["run-a", "run-b", "run-b"]
    assert clock.wakeups == 3
    assert len(signals) == 0  # a pulsed key's signal is not kept


def test_a_pulse_before_the_wait_is_not_missed() -> None:
    """The waiter reads the generation before it checks its condition: a pulse in between
    (its run ended meanwhile) ends the wait at once."""
    clock = VirtualClock()
    signal = Signal()
    since = signal.generation
    clock.pulse(signal)
    assert clock.wait(signal, since, timeout=60)
    assert clock.wakeups == 0  # it never waited


def test_an_unpulsed_key_times_out_on_virtual_time() -> None:
    clock = VirtualClock()
    signals = KeyedSignals(clock)
    outcome: list[bool] = []

    def wait() -> None:
        signal = signals.of("never")
        outcome.append(clock.wait(signal, signal.generation, timeout=3600))

    worker = clock.thread(wait)
    worker.start()
    worker.join(timeout=30)
    assert outcome == [False]
    assert clock.now() == 3600
    signals.forget("never")
    assert len(signals) == 0


def test_a_definition_is_parsed_once_unless_it_has_parallel_or_map_states() -> None:
    """moto's parse of a definition is most of an execution's start; the parsed states keep
    nothing of an execution, except Parallel's and Map's, which are parsed per execution."""
    import json

    from event_driven_etl.testing._stepfunctions.clock import _program_of

    plain = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
    branch = {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}
    parallel = json.dumps(
        {"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [branch], "End": True}}}
    )
    assert _program_of(plain) is _program_of(plain)
    assert _program_of(parallel) is not _program_of(parallel)


def _on_clock(clock: VirtualClock, body: Callable[[], object]) -> list[object]:
    """Run ``body`` on an actor thread; return what it returned or raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(body())
        except DeadlineExceeded as exceeded:
            outcome.append(exceeded)

    worker = clock.thread(run)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive()
    return outcome


def test_fails_a_sleep_past_its_deadline_at_the_deadline() -> None:
    clock = VirtualClock()

    def body() -> object:
        with clock.deadline(60) as deadline:
            clock.sleep(90)
        return deadline

    [outcome] = _on_clock(clock, body)
    assert isinstance(outcome, DeadlineExceeded)
    assert outcome.deadline.at == 60
    assert clock.now() == 60  # not 90: the work ended at its deadline


def test_work_that_ends_before_its_deadline_is_not_stopped() -> None:
    clock = VirtualClock()
    signal = Signal()

    def pulse_at_30() -> None:
        clock.sleep(30)
        clock.pulse(signal)

    clock.thread(pulse_at_30).start()

    def body() -> object:
        with clock.deadline(60):
            pulsed = clock.wait(signal, 0)
        clock.sleep(100)  # after the block the deadline no longer applies
        return pulsed

    assert _on_clock(clock, body) == [True]
    assert clock.now() == 130


@pytest.mark.parametrize(("outer", "inner", "expected"), [(60, 30, 30), (30, 60, 30), (45, 45, 45)])
def test_the_earliest_of_nested_deadlines_stops_the_work_the_outer_on_a_tie(
    outer: float, inner: float, expected: float
) -> None:
    clock = VirtualClock()
    marks: dict[str, object] = {}

    def body() -> object:
        with clock.deadline(outer) as marks["outer"], clock.deadline(inner) as marks["inner"]:
            clock.sleep(100)
        return None

    [outcome] = _on_clock(clock, body)
    assert isinstance(outcome, DeadlineExceeded)
    which = "outer" if outer <= inner else "inner"
    assert outcome.deadline is marks[which]
    assert clock.now() == expected


def test_fails_a_wait_begun_after_its_deadline_passed_at_once() -> None:
    clock = VirtualClock()

    def body() -> object:
        with clock.deadline(10):
            with contextlib.suppress(DeadlineExceeded):
                clock.sleep(20)
            clock.sleep(0)  # e.g. a retrier's wait in a handler: the deadline still holds
        return None

    [outcome] = _on_clock(clock, body)
    assert isinstance(outcome, DeadlineExceeded)
    assert clock.now() == 10


def test_the_clock_counts_its_threads_at_their_peak() -> None:
    clock = VirtualClock()
    signal = Signal()
    workers = [clock.thread(lambda: clock.wait(signal, 0)) for _ in range(5)]
    for worker in workers:
        worker.start()
    _until(lambda: clock.waiting() == 5, "five waiters")
    assert clock.threads == 5
    clock.pulse(signal)
    for worker in workers:
        worker.join(timeout=30)
    assert (clock.threads, clock.peak_threads) == (0, 5)

"""The virtual clock's wake-ups: a pulse wakes only the waiters of its own event."""

from __future__ import annotations

import threading
import time
from typing import Callable

from event_driven_etl.testing._time import KeyedSignals, Signal, VirtualClock


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

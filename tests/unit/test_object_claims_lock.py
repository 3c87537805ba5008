"""Retractions from one batch's files, one run at a time: the batch's lock (issue #22).

Two runs retracting different objects from the same earlier batch's files at once, a run
that stops between publishing the kept rows and deleting the old files, a lock whose holder
crashed and one held by a run still going. Fake storage (each file's rows as text), local
marks and lock, an injected clock and sleep: no Spark, no real waits."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Optional, cast

import pytest
from pyspark.sql import SparkSession

from event_driven_etl.runtime.glue.event_driven_etl_job import batch_lock, landed
from event_driven_etl.runtime.glue.event_driven_etl_job.arguments import JobArgs
from event_driven_etl.runtime.glue.event_driven_etl_job.batch_lock import (
    FREE,
    HELD,
    LockState,
    Rewrite,
    Waiter,
    batch_files_lock,
    lock_uri,
)
from event_driven_etl.runtime.glue.event_driven_etl_job.landed import (
    LANDED,
    Mark,
    claim_objects,
    mark_uri,
    retract_earlier_rows,
)
from event_driven_etl.runtime.glue.event_driven_etl_job.mark_store import S3MarkStore
from event_driven_etl.runtime.glue.event_driven_etl_job.shared import contract
from event_driven_etl.runtime.glue.event_driven_etl_job.storage import Storage
from tests.claims_fakes import MemoryFiles, rewrite_rows_as_text

X, Y, Z = "s3://in/x.json", "s3://in/y.json", "s3://in/z.json"
OUTPUT = "/tmp/claims-lock/out/"
PARTITION = f"{OUTPUT}ingestion_date=2026-12-01/"
B_FILES = {
    f"{PARTITION}B-00000.snappy.parquet": [f"{X}|1", f"{Y}|1", f"{Z}|1"],
    f"{PARTITION}B-00001.snappy.parquet": [f"{X}|2", f"{Z}|2"],
}
ALL_ROWS = [row for rows in B_FILES.values() for row in rows]
OTHER_ROWS = [f"{Z}|1", f"{Z}|2"]
START = datetime(2026, 12, 6, 8, 0, tzinfo=timezone.utc)


_Files = MemoryFiles


def _job(batch_id: str, uris: list[str]) -> JobArgs:
    return JobArgs(uris=tuple(uris), output_path=OUTPUT, batch_id=batch_id, reprocess=True)


@pytest.fixture
def files(monkeypatch: pytest.MonkeyPatch) -> _Files:
    """Batch B landed X, Y and Z in two files; Spark's part of a rewrite (the kept rows,
    one staging part per file read) works on the rows as text."""
    found = _Files()
    for uri in (X, Y, Z):
        mark = Mark(uri, "v1", "B", "2026-12-01", LANDED)
        found.write_text(mark_uri(_job("B", [uri]), uri), mark.to_json())
    report = {"status": "SUCCEEDED", "landed": [{"object": u} for u in (X, Y, Z)]}
    found.write_text(f"{OUTPUT}{contract.RUNS_DIR}/B.json", json.dumps(report))
    for name, rows in B_FILES.items():
        found.write_text(name, "\n".join(rows))

    rewrite_rows_as_text(monkeypatch, found)
    return found


def _rows(files: _Files) -> Counter[str]:
    """Every row of B's files in its partition (a row twice counts twice)."""
    return Counter(
        row
        for name in files.list_files(PARTITION)
        if name.rsplit("/", 1)[-1].startswith("B-")
        for row in files.texts[name].splitlines()
    )


def _retract(files: _Files, batch_id: str, uri: str, waiter: Waiter = Waiter()) -> None:
    job = _job(batch_id, [uri])
    claims = claim_objects(cast(Storage, files), job, "2026-12-06")
    retract_earlier_rows(
        cast(SparkSession, None), cast(Storage, files), job, dict(claims.earlier), waiter=waiter
    )


def _lock(files: _Files) -> LockState:
    return LockState.from_json(files.texts[lock_uri(OUTPUT, "B")])


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"waited {seconds} s for a lock nobody holds")


@pytest.mark.parametrize("call", ["rename", "delete"])
def test_two_retractions_from_one_batch_at_once_remove_both_objects(
    files: _Files, call: str
) -> None:
    # A retracts X, C retracts Y, both from B's files; C starts when A reaches its first
    # rename (publishing the kept rows) or delete (of B's old files). Before the lock, C
    # read B's files as A left them: its rewrite put X back, or A deleted C's new files.
    c_stopped, a_done = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def c_waits(seconds: float) -> None:
        c_stopped.set()  # C found the lock held: A goes on
        assert a_done.wait(30)

    def run_c() -> None:
        try:
            _retract(files, "C", Y, Waiter(sleep=c_waits))
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)
        finally:
            c_stopped.set()

    c = threading.Thread(target=run_c)

    def start_c(name: str, uri: str) -> None:
        if (
            name == call
            and uri.startswith(PARTITION)
            and not c.is_alive()
            and not c_stopped.is_set()
        ):
            c.start()
            assert c_stopped.wait(30)

    files.before = start_c
    _retract(files, "A", X, Waiter(sleep=_no_sleep))
    a_done.set()
    c.join(30)
    assert not failures and c_stopped.is_set()
    assert _rows(files) == Counter(OTHER_ROWS)
    assert _lock(files).state == FREE and _lock(files).rewrite is None


def _crash_at(files: _Files, call: str, nth: int) -> None:
    """Make the ``nth`` ``call`` (rename or delete) of B's files fail, as a run stopping."""
    seen = []

    def crash(name: str, uri: str) -> None:
        if name == call and uri.startswith(PARTITION):
            seen.append(uri)
            if len(seen) == nth:
                raise RuntimeError("the run stopped here")

    files.before = crash


def test_a_crash_between_publishing_and_deleting_then_a_redrive_leaves_each_row_once(
    files: _Files,
) -> None:
    _crash_at(files, "delete", 1)
    with pytest.raises(RuntimeError, match="stopped here"):
        _retract(files, "A", X)
    # Published, not deleted: a plain reader sees B's other rows twice, none lost.
    assert _rows(files) == Counter([f"{Y}|1", *OTHER_ROWS]) + Counter(
        [f"{X}|1", f"{Y}|1", f"{X}|2", *OTHER_ROWS]
    )
    assert _lock(files).rewrite is not None  # freed, with its unfinished rewrite
    files.before = lambda name, uri: None
    _retract(files, "A", X)  # the redrive finishes the rewrite, then retracts again
    assert _rows(files) == Counter([f"{Y}|1", *OTHER_ROWS])
    assert _lock(files) == LockState("A", FREE, _lock(files).taken_at, _lock(files).lease_seconds)


def test_a_crash_while_publishing_is_undone_by_the_next_holder(files: _Files) -> None:
    _crash_at(files, "rename", 2)  # one of the two kept parts published
    with pytest.raises(RuntimeError, match="stopped here"):
        _retract(files, "A", X)
    files.before = lambda name, uri: None
    _retract(files, "C", Y)  # another run: B's old files are all there, the new one goes
    assert _rows(files) == Counter([f"{X}|1", f"{X}|2", *OTHER_ROWS])
    _retract(files, "A", X)
    assert _rows(files) == Counter(OTHER_ROWS)


def _held_by_q(files: _Files, *, rewrite: Optional[Rewrite] = None) -> None:
    """Batch Q holds B's lock since START for an hour (it crashed, or is still going)."""
    state = LockState("Q", HELD, START.isoformat(), 3600, rewrite)
    files.write_text(lock_uri(OUTPUT, "B"), state.to_json())


def test_a_lapsed_lock_is_taken_over_and_its_rewrite_finished(files: _Files) -> None:
    # Q published B's rows without X under a new name and stopped before deleting the old
    # files, holding the lock; past its lease, C takes the lock over and finishes that first.
    new = f"{PARTITION}B-rq-00000.snappy.parquet"
    files.write_text(new, "\n".join([f"{Y}|1", *OTHER_ROWS]))
    _held_by_q(files, rewrite=Rewrite(old=tuple(B_FILES), new=(new,)))
    later = START + timedelta(hours=1, seconds=1)
    _retract(files, "C", Y, Waiter(clock=lambda: later, sleep=_no_sleep))
    assert _rows(files) == Counter(OTHER_ROWS)
    assert _lock(files).holder == "C" and _lock(files).state == FREE


def test_a_held_lock_is_waited_for(files: _Files) -> None:
    _held_by_q(files)
    waits: list[float] = []

    def q_frees_it(seconds: float) -> None:
        waits.append(seconds)
        assert _rows(files) == Counter(ALL_ROWS)  # nothing changed yet
        if len(waits) == 3:
            files.write_text(lock_uri(OUTPUT, "B"), _free(_lock(files)))

    _retract(files, "C", Y, Waiter(clock=lambda: START + timedelta(minutes=5), sleep=q_frees_it))
    assert len(waits) == 3 and all(0 <= w <= batch_lock._LONGEST_WAIT_SECONDS for w in waits)
    assert _rows(files) == Counter([f"{X}|1", f"{X}|2", *OTHER_ROWS])


def _free(state: LockState) -> str:
    return LockState(state.holder, FREE, state.taken_at, state.lease_seconds).to_json()


def test_a_wait_ends_when_the_holders_lease_does(files: _Files) -> None:
    _held_by_q(files)
    clock = [START + timedelta(minutes=59, seconds=59)]

    def advance(seconds: float) -> None:
        assert seconds <= 2  # never past the lease's end (plus a second)
        clock[0] += timedelta(seconds=seconds + 1)

    _retract(files, "C", Y, Waiter(clock=lambda: clock[0], sleep=advance))
    assert _lock(files).holder == "C"
    assert _rows(files) == Counter([f"{X}|1", f"{X}|2", *OTHER_ROWS])


def test_a_run_whose_lock_was_taken_over_stops_before_deleting(
    files: _Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A's lease lapsed while it rewrote (it should not: the lease outlasts the job's
    # timeout) and Q took the lock over: A's record of its rewrite is refused, nothing moves.
    write_kept = landed._write_kept

    def taken_over_meanwhile(*args: Any) -> list[str]:
        parts = write_kept(*args)
        _held_by_q(files)
        return parts

    monkeypatch.setattr(landed, "_write_kept", taken_over_meanwhile)
    with pytest.raises(batch_lock.LockLostError):
        _retract(files, "A", X)
    assert _rows(files) == Counter(ALL_ROWS)
    assert _lock(files).holder == "Q" and _lock(files).state == HELD


def test_a_redrive_takes_its_crashed_runs_lock_at_once(
    files: _Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A's driver died between publishing and deleting: its lock stays held, with the
    # rewrite. A's redrive (the same batch: runs of one batch never overlap) goes on.
    release = batch_lock.HeldLock.release
    monkeypatch.setattr(batch_lock.HeldLock, "release", lambda self: None)
    _crash_at(files, "delete", 1)
    with pytest.raises(RuntimeError, match="stopped here"):
        _retract(files, "A", X)
    assert _lock(files).state == HELD and _lock(files).rewrite is not None
    monkeypatch.setattr(batch_lock.HeldLock, "release", release)
    files.before = lambda name, uri: None
    _retract(files, "A", X, Waiter(sleep=_no_sleep))
    assert _rows(files) == Counter([f"{Y}|1", *OTHER_ROWS])


def test_a_batch_publishing_again_waits_for_a_retraction_of_its_files(files: _Files) -> None:
    # B's re-run publishes its files holding B's lock too: it waits while Q retracts.
    _held_by_q(files)
    waits: list[float] = []

    def q_frees_it(seconds: float) -> None:
        waits.append(seconds)
        files.write_text(lock_uri(OUTPUT, "B"), _free(_lock(files)))

    waiter = Waiter(clock=lambda: START, sleep=q_frees_it)
    with landed.hold_batch_files(cast(Storage, files), _job("B", [Z]), "B", waiter=waiter):
        assert _lock(files).holder == "B" and _lock(files).state == HELD
    assert len(waits) == 1 and _lock(files).state == FREE


class _WaitedError(Exception):
    """The lock was found held: the run would wait."""


def test_the_lock_on_s3_is_a_conditional_create_and_freed_by_a_conditional_replace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        import boto3

        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="out")
        store = S3MarkStore(client)
        output, lease = "s3://out/processed/", timedelta(hours=1)

        def held_wait(seconds: float) -> None:
            raise _WaitedError()

        waiting = Waiter(sleep=held_wait)
        with batch_files_lock(store, output, "B", holder="A", lease=lease):
            c_lock = batch_files_lock(store, output, "B", holder="C", lease=lease, waiter=waiting)
            with pytest.raises(_WaitedError), c_lock:
                pass  # pragma: no cover - A holds it
        key = f"processed/{contract.BATCH_LOCKS_DIR}/B.json"
        assert json.loads(client.get_object(Bucket="out", Key=key)["Body"].read())["state"] == FREE
        with batch_files_lock(
            store, output, "B", holder="C", lease=lease, waiter=Waiter(sleep=held_wait)
        ) as held:
            assert held.state.holder == "C"

"""One batch's files are changed by one run at a time: a lock object per batch.

A batch's Parquet files change after it published them when a later run retracts a
reprocessed object's rows from them (``landed.retract_earlier_rows``), and when a re-run of
the batch publishes its files again. Two runs retracting different objects from the same
batch's files at once (each holding its own claim) would each read the files and write them
back without its own object: one's rewrite would put the other's retracted rows back, or
their deletes and renames would interleave. So every change to a batch's files is made
holding ``<output>_runs/_locks/<batch_id>.json``
(:data:`~event_driven_etl._contract.BATCH_LOCKS_DIR`), taken with a conditional create
(``If-None-Match: *``) and, when it is free or its holder's lease lapsed, with a conditional
replace of the lock read (``If-Match`` on its ETag)
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-requests.html), through
the object marks' store (``mark_store``: the 412 and 409 answers are handled there). A run
that finds it held waits, with jittered backoff, until its holder frees it or the holder's
lease lapses. Freeing it is a conditional replace too (``state: free``): only
``s3:PutObject``, which the job's role has on the output prefix.

The lock also records an unfinished rewrite (its ``rewrite``: the batch's old files and the
new ones that replace them): a rewrite publishes the new files before it deletes the old
ones, so a run that stops in between leaves the rows twice, never lost, and the next holder
(its redrive, another run, a takeover after the lease) finishes it (every new file is
there: the old ones are deleted) or undoes it (some are not: the new ones are deleted)
before it reads the batch's files.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

from .mark_store import MarkStore
from .shared import contract
from .storage import Storage

HELD, FREE = "held", "free"

_FIRST_WAIT_SECONDS = 0.5
_LONGEST_WAIT_SECONDS = 10.0
"""The waits, doubling from the first to the longest and jittered (full jitter), while
another run holds a batch's lock: a rewrite takes seconds to a few minutes."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Waiter:
    """The clock and the sleep a run waits for a lock with (the tests' own: no real
    sleeps)."""

    clock: Callable[[], datetime] = _now
    sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class Rewrite:
    """A rewrite of a batch's files under way: ``old`` are replaced by ``new``, which are
    published first."""

    old: tuple[str, ...]
    new: tuple[str, ...]


@dataclass(frozen=True)
class LockState:
    """The lock object: who holds it since when, for how long, and an unfinished rewrite."""

    holder: str
    state: str
    taken_at: str
    lease_seconds: int
    rewrite: Optional[Rewrite] = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LockState:
        fields: dict[str, Any] = json.loads(text)
        rewrite = fields.pop("rewrite", None)
        return cls(
            **fields,
            rewrite=None
            if rewrite is None
            else Rewrite(tuple(rewrite["old"]), tuple(rewrite["new"])),
        )

    def lapsed(self, now: datetime) -> bool:
        return now - datetime.fromisoformat(self.taken_at) > timedelta(seconds=self.lease_seconds)


class LockLostError(RuntimeError):
    """The run's lock on a batch's files was taken over (its lease lapsed): it stops
    changing them."""


def lock_uri(output: str, batch_id: str) -> str:
    return f"{output}{contract.BATCH_LOCKS_DIR}/{batch_id}.json"


@dataclass
class HeldLock:
    """A batch's lock while this run holds it: its ETag, and the rewrite it found
    unfinished (``interrupted``) until :func:`finish_interrupted` dealt with it."""

    store: MarkStore
    uri: str
    state: LockState
    etag: str
    interrupted: Optional[Rewrite] = field(default=None)

    def record(self, rewrite: Optional[Rewrite]) -> None:
        """Write ``rewrite`` (None: no rewrite under way) into the lock, on condition that
        it is still this run's."""
        state = dataclasses.replace(self.state, rewrite=rewrite)
        etag = self._write(state)
        if etag is None:
            raise LockLostError(f"{self.uri} was taken over: its holder's lease lapsed")
        self.state, self.etag = state, etag

    def release(self) -> None:
        """Free the lock (keeping an unfinished rewrite for the next holder); one that was
        taken over meanwhile is left to its new holder."""
        self._write(dataclasses.replace(self.state, state=FREE))

    def _write(self, state: LockState) -> Optional[str]:
        """Replace the lock with ``state`` if it is still ``etag``: the new ETag, or None
        when another run took it over. A write S3 committed whose answer was lost (botocore's
        retry then gets 412) reads as ``state``: it is done."""
        text = state.to_json()
        etag = self.store.replace(self.uri, text, self.etag)
        if etag is not None:
            return etag
        current = self.store.read(self.uri)
        return current[1] if current is not None and current[0] == text else None


@contextmanager
def batch_files_lock(
    store: MarkStore,
    output: str,
    batch_id: str,
    *,
    holder: str,
    lease: timedelta,
    waiter: Waiter = Waiter(),
) -> Iterator[HeldLock]:
    """Hold ``batch_id``'s lock (as ``holder``, the run's batch id, for ``lease``), freed
    at the end, even when the body fails."""
    held = take_lock(store, lock_uri(output, batch_id), holder, lease, waiter)
    try:
        yield held
    except BaseException:
        try:
            held.release()
        except Exception as error:  # keep the body's error, the run's real cause
            print(json.dumps({"level": "WARNING", "message": f"lock not freed: {error}"}))
        raise
    held.release()


def take_lock(
    store: MarkStore,
    uri: str,
    holder: str,
    lease: timedelta,
    waiter: Waiter,
    *,
    ended: Callable[[LockState], bool] = lambda _held: False,
) -> HeldLock:
    """Create the lock, or take it over when it is free, ``holder``'s own (an earlier run
    of this batch stopped holding it: runs of one batch do not overlap, ``batch_run``),
    lapsed, or its holder has ``ended``; else wait and try again."""
    attempt = 0
    while True:
        now = waiter.clock()
        mine = LockState(holder, HELD, now.isoformat(), int(lease.total_seconds()))
        etag = store.create(uri, mine.to_json())
        if etag is not None:
            return HeldLock(store, uri, mine, etag)
        current = store.read(uri)
        if current is None:  # freed and removed in between: create it again
            waiter.sleep(_wait(attempt, None, now))
        else:
            text, etag = current
            found = LockState.from_json(text)
            if found.state == FREE or found.holder == holder or found.lapsed(now) or ended(found):
                taken = dataclasses.replace(mine, rewrite=found.rewrite)
                new_etag = store.replace(uri, taken.to_json(), etag)
                if new_etag is not None:
                    return HeldLock(store, uri, taken, new_etag, interrupted=found.rewrite)
                waiter.sleep(_wait(attempt, None, now))  # another run took it first: not hot
            else:
                waiter.sleep(_wait(attempt, found, now))
        attempt += 1


def _wait(attempt: int, held: Optional[LockState], now: datetime) -> float:
    """A jittered wait, no longer than until ``held`` (if any) lapses."""
    # The exponent is capped: 2.0**1024 overflows a float (a wait of over 85 minutes).
    longest = min(_LONGEST_WAIT_SECONDS, _FIRST_WAIT_SECONDS * 2 ** min(attempt, 10))
    if held is None:
        return random.uniform(0, longest)
    until_lapsed = (
        datetime.fromisoformat(held.taken_at) + timedelta(seconds=held.lease_seconds) - now
    ).total_seconds()
    return max(0.0, min(random.uniform(0, longest), until_lapsed + 1))


def finish_interrupted(storage: Storage, held: HeldLock, partition: str) -> None:
    """Finish or undo the rewrite the lock's last holder left unfinished: with every new
    file published, its old files are deleted (the rows were there twice); else the new
    ones are (the old files are all still there: they are deleted only after)."""
    rewrite = held.interrupted
    if rewrite is None:
        return
    present = set(storage.list_files(partition))
    stale: Sequence[str] = (
        rewrite.old if all(new in present for new in rewrite.new) else rewrite.new
    )
    for uri in stale:
        if uri in present:
            storage.delete(uri)
    held.record(None)
    held.interrupted = None

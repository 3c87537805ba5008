"""Which objects landed, or are being landed, and in which batch: one mark per object.

``<output>_objects/<sha256 of the URI>.json`` holds the object's version (size and
modification time as S3 reported them when the run claimed it: a new upload of the key is a
new version), the batch whose files hold its rows, that batch's partition and the mark's
state. Before reading, a run claims each object with a conditional create of its mark
(``mark_store``), so that of two runs holding the same object (a live run and a backfill
batch) only one lands it. Another batch's claim is not taken over within its lease (the
job's timeout plus margins, :func:`claim_lease`): at the same version the object is skipped
(that batch lands it), at another version the run releases its claims and fails, to be
retried once that batch is done; a claim past its lease (its batch crashed or timed out and
was not redriven in time) is taken over like a landed mark. An object another batch landed
at the same version is skipped; with ``--reprocess true``, or at another version (a new
upload of the key), the run takes the landed mark over, keeping it in its claim
(``replaces``: a retry of the run still knows it), lands the object again and then removes
its rows from the earlier batch's files (an Iceberg table: in the batch's own commit,
``iceberg``), so a reprocess replaces, never doubles; a file of that batch is deleted only
when no other object's rows in it are still needed. Each batch's files are changed holding
its lock (``batch_lock``: two runs may retract different objects from one batch at once),
the kept rows published before the old files are deleted. After publishing, the run marks what it
landed (at the claimed version) and releases the claims of what it refused or held back,
even when it then fails: they are in its FAILED notification and the next batch holding
them, a redrive included, takes them. A run that ends before (a crash, a timeout) keeps its
claims: its redrive (the same batch id) lands them, or, past the lease, skips those another
batch took over. A batch's own landed mark is never lost from a mark's chain: a re-run
claims it again keeping it (``replaces``), releases it still naming the batch (whose files
may hold the rows: the next taker retracts them), and waits (:class:`ObjectHeldError`)
for another batch that took it over and has not landed the object yet. A run that a
quality rule holds back deletes its batch's files (holding the batch's lock,
:func:`withdraw_batch_files`) before releasing its claims: a held batch has no rows in the
table, and so does one that fails waiting for another batch (:class:`ObjectHeldError`),
unless that batch took over this batch's landed mark (and may give it back: the files keep
its rows). A released mark is taken over keeping it (and what it replaced): the taker retracts
the object's rows from every batch in that chain, which changes nothing where there are
none; only a mark this very run took over is given back to its batch when not landed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional, TypeVar

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from .arguments import STAGING_DIR, JobArgs
from .batch_lock import HeldLock, Rewrite, Waiter, batch_files_lock, finish_interrupted
from .mark_store import MarkStore, mark_store
from .shared import contract
from .storage import Storage

T = TypeVar("T")


CLAIMED, LANDED, RELEASED = "claimed", "landed", "released"
"""A mark's states: a run claims an object before reading it, marks it landed after
publishing, and releases the claims of the objects it did not land."""


@dataclass(frozen=True)
class Mark:
    """Where an object's rows are: its version when it was claimed and the batch that
    holds them."""

    object: str
    version: str
    batch_id: str
    ingestion_date: str
    state: str = LANDED
    """``claimed``, ``landed`` or ``released``; marks written before claims had no state:
    they are landed marks."""
    claimed_at: str = ""
    """A claim's time (ISO 8601, UTC): when its run claimed (or claimed again) the object."""
    lease_seconds: int = 0
    """How long a claim holds from ``claimed_at`` (:func:`claim_lease` of its run); after
    that it belongs to no run still going, and another batch may take it over."""
    replaces: Optional[Mark] = None
    """In a claim that took another batch's landed mark over (``reprocess``, a new upload):
    that mark, whose rows the run retracts once it has published its own. Stored, not only
    remembered, so that a retry of the run (after a crash, or botocore retrying a takeover
    that S3 had committed) finds it in its own claim."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Mark:
        return cls._of(json.loads(text))

    @classmethod
    def _of(cls, fields: dict[str, Any]) -> Mark:
        replaced = fields.pop("replaces", None)
        return cls(**fields, replaces=None if replaced is None else cls._of(replaced))


class ObjectHeldError(RuntimeError):
    """Objects of this run that another batch claimed at another version and has not
    landed yet: this run releases the claims it made and fails before reading anything,
    and its retry, once that batch is done (or its claim lapsed), takes them over."""


class ClaimConflictError(RuntimeError):
    """An object's mark kept changing while this run claimed it (other runs writing it all
    along): the run fails; its retry claims it again."""


_GLUE_LONGEST_TIMEOUT = timedelta(days=7)
"""Glue's longest job timeout (10,080 minutes): the lease of a run that does not know its
job's timeout (no ``--job_timeout_minutes``)."""

TEARDOWN_MARGIN = timedelta(minutes=15)
"""Added to the job timeout: Glue stops a run at its timeout, but its driver may go on for
a few minutes while Glue tears it down; the drivers' clocks (Amazon Time Sync) differ by
far less."""

_RENEW_AFTER = TEARDOWN_MARGIN
"""A batch's own claim younger than this is kept as it is by its next run (botocore
retrying the claim's write, a quick retry): the lease has a second margin for it."""


def claim_lease(job: JobArgs) -> timedelta:
    """How long this run's claims hold: its job's timeout plus :data:`TEARDOWN_MARGIN` plus
    :data:`_RENEW_AFTER`.

    Every run of a batch claims its objects again when it starts (``claimed_at`` is then,
    or at most :data:`_RENEW_AFTER` before), and Glue stops a run at the job's timeout, so
    a claim older than that belongs to no run still going: its batch crashed or timed out
    (a batch that is never redriven would otherwise hold it for ever). A later run of that
    batch (a Step Functions retry, or a redrive, which may come up to 14 days after the
    execution stopped:
    https://docs.aws.amazon.com/step-functions/latest/dg/redrive-executions.html) finds the
    claim taken and skips the object, naming the batch that took it."""
    timeout = (
        timedelta(minutes=job.job_timeout_minutes)
        if job.job_timeout_minutes
        else _GLUE_LONGEST_TIMEOUT
    )
    return timeout + TEARDOWN_MARGIN + _RENEW_AFTER


def _lapsed(mark: Mark, job: JobArgs, now: datetime) -> bool:
    """Whether ``mark`` is a claim past its lease (a claim without a time never lapses)."""
    if mark.state != CLAIMED or not mark.claimed_at:
        return False
    lease = timedelta(seconds=mark.lease_seconds) if mark.lease_seconds else claim_lease(job)
    return now - datetime.fromisoformat(mark.claimed_at) > lease


class MarkLostError(RuntimeError):
    """A landed object's mark was no longer this run's claim: its rows are published but
    another batch holds the mark, so the run fails rather than leave the object twice.
    The other objects' marks are written: ``lost`` names the objects whose were not."""

    def __init__(self, message: str, lost: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.lost = tuple(lost)


def mark_uri(job: JobArgs, uri: str) -> str:
    digest = hashlib.sha256(uri.encode("utf-8")).hexdigest()
    return f"{job.output}{contract.OBJECT_MARKS_DIR}/{digest}.json"


_CONCURRENT_CALLS = 16
"""Marks read or written at once: one small S3 request each, a round trip apiece when made
one after another (thousands in a backfill's batch)."""


def _each(call: Callable[[str], T], uris: Iterable[str]) -> list[T]:
    """``call`` of every URI, ``_CONCURRENT_CALLS`` at a time, in order."""
    listed = list(uris)
    if len(listed) <= 1:
        return [call(uri) for uri in listed]
    with ThreadPoolExecutor(max_workers=min(_CONCURRENT_CALLS, len(listed))) as pool:
        return list(pool.map(call, listed))


_CLAIM_ATTEMPTS = 8
"""Conditional writes lost before a claim gives up (each loss means another run wrote the
mark between this run's read and write: a handful at most)."""

_BACKOFF_SECONDS = 0.05
"""The first wait, doubling, before a claim reads its mark again after losing a write: a
409 (another conditional write of the key under way) often re-reads no mark yet, and
claimers retrying in step would collide again; jittered (full jitter)."""


@dataclass
class Claims:
    """This run's claims: each claimed object's mark ETag and claimed version, the other
    batches' landed marks it took over (a new upload of the key, or ``reprocess``), the
    objects it skips and those another batch is landing at another version."""

    etags: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    """The version each claim holds: the one its landed mark records (not a fresh look:
    an upload during the run is a new version, which its own run lands)."""
    earlier: dict[str, Mark] = field(default_factory=dict)
    again: set[str] = field(default_factory=set)
    """Objects whose mark was this batch's own (claimed, landed or released by an earlier
    run of it): that run may have published or retracted their rows, so this run, if it
    does not land them, never gives their marks back to another batch."""
    skipped: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)
    relanding: set[str] = field(default_factory=set)
    """Waiting objects that another batch took over from this batch's landed mark and has
    not landed: this batch's files must keep their rows (that batch may give it back)."""

    def hold(self, uri: str, etag: str, version: str) -> None:
        self.etags[uri], self.versions[uri] = etag, version


def claim_objects(
    storage: Storage,
    job: JobArgs,
    ingestion_date: str,
    *,
    now: Optional[datetime] = None,
    withdraw: Optional[Callable[[], None]] = None,
) -> Claims:
    """Claim each object before reading it, so that of two runs holding it only one lands it.

    A conditional create of the object's mark: created, the object is this batch's. If a
    mark is there: this batch's own (a retry or redrive of it) is claimed again, with the
    mark it replaces (its own landed mark, if it was one); another batch's claim that took
    this batch's landed mark over makes the run wait, like one at another version; another
    batch's claim is not taken within its lease
    (:func:`claim_lease`): the object is skipped at the same version (or when that claim
    took this batch's own lapsed claim over); at another version the run releases its
    claims and fails (:class:`ObjectHeldError`), having first deleted its batch's files unless
    it waits for a batch that took over this batch's landed mark
    (:func:`withdraw_batch_files`);
    another batch's landed mark at the same version makes this run skip the object, unless
    ``reprocess``; another version (a new upload of the key), a released or lapsed claim or
    ``reprocess`` takes the mark over, on condition that it is still the one read. ``now``:
    the claims' time (default: the clock's); ``withdraw``: how this batch's published rows
    are removed before it fails waiting (default: its Parquet files,
    :func:`withdraw_batch_files`; an Iceberg table's run passes a delete commit)."""
    store = table_marks(storage, job)
    found = Claims()
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    lease = _seconds(claim_lease(job))

    def claim(uri: str) -> None:
        version = storage.version(uri)
        mine = Mark(uri, version, job.batch_id, ingestion_date, CLAIMED, moment.isoformat(), lease)
        for attempt in range(_CLAIM_ATTEMPTS):
            if _claim_once(store, job, mine, found, now=moment):
                return
            time.sleep(random.uniform(0, _BACKOFF_SECONDS * 2**attempt))
        raise ClaimConflictError(f"could not claim {uri}: its mark kept changing")

    _each(claim, job.uris)
    if found.waiting:  # let go of the rest: two runs each holding what the other waits for
        if not found.relanding:  # publishing nothing, it leaves no rows (still claimed)
            if withdraw is not None:
                withdraw()
            else:
                withdraw_batch_files(storage, job, ingestion_date)
        mark_landed(storage, job, found, [], ingestion_date)
        raise ObjectHeldError("\n".join(f"{u}: {why}" for u, why in found.waiting.items()))
    return found


def _seconds(span: timedelta) -> int:
    return int(span.total_seconds())


def table_marks(storage: Storage, job: JobArgs) -> MarkStore:
    """The conditional writes of ``job``'s table: its marks, its batches' locks and run
    leases (S3 in the catalog's region, with the output key; a local table's, locally)."""
    region = job.catalog.region if job.catalog is not None else None
    return mark_store(storage, job.output, region=region, kms_key=job.output_kms_key)


def _claim_once(
    store: MarkStore, job: JobArgs, mine: Mark, found: Claims, *, now: datetime
) -> bool:
    """One try at claiming ``mine.object``; False when another run wrote its mark between
    this run's read and write (read it again)."""
    uri, key = mine.object, mark_uri(job, mine.object)
    etag = store.create(key, mine.to_json())
    if etag is not None:
        found.hold(uri, etag, mine.version)
        return True
    current = store.read(key)
    if current is None:  # removed in between: create it again
        return False
    text, etag = current
    mark = Mark.from_json(text)
    if mark.batch_id == job.batch_id:  # a retry or redrive, or botocore retrying our write
        return _claim_again(store, key, mine, mark=mark, etag=etag, found=found, now=now)
    if mark.state == CLAIMED and not _lapsed(mark, job, now):
        _keep_off(job, mine, mark, found)  # its holder may be publishing right now
        return True
    if mark.state == LANDED and mark.version == mine.version and not job.reprocess:
        found.skipped[uri] = _held_by(mark)
        return True
    return _take_over(store, key, mine, mark=mark, etag=etag, found=found)


def _claim_again(
    store: MarkStore,
    key: str,
    mine: Mark,
    *,
    mark: Mark,
    etag: str,
    found: Claims,
    now: datetime,
) -> bool:
    """Claim this batch's own mark again, from now (its lease counts from this run; a
    claim younger than :data:`_RENEW_AFTER` is kept as it is): a claim keeps its version
    and the mark it replaces; a landed or released one (a re-run of the batch, which
    rewrites its own files) is claimed afresh, keeping the batch's landed mark
    (:func:`_own_rows`)."""
    found.again.add(mine.object)
    if mark.state == CLAIMED and not _due_renewal(mark, now):
        found.hold(mine.object, etag, mark.version)
        if mark.replaces is not None:
            found.earlier[mine.object] = mark.replaces
        return True
    again = (
        dataclasses.replace(mine, version=mark.version, replaces=mark.replaces)
        if mark.state == CLAIMED
        else dataclasses.replace(mine, replaces=_own_rows(mark))
    )
    taken = store.replace(key, again.to_json(), etag)
    if taken is None:
        return False
    found.hold(mine.object, taken, again.version)
    if again.replaces is not None:
        found.earlier[mine.object] = again.replaces
    return True


def _own_rows(mark: Mark) -> Optional[Mark]:
    """The landed mark naming this batch's files that may hold the object's rows, kept in
    a re-run's fresh claim of its own landed (or released) ``mark``: should the re-run not
    land the object, its release still names that batch, and the next taker retracts the
    rows from it rather than land them twice."""
    return dataclasses.replace(mark, replaces=None) if mark.state == LANDED else mark.replaces


def _due_renewal(mark: Mark, now: datetime) -> bool:
    return not mark.claimed_at or now - datetime.fromisoformat(mark.claimed_at) > _RENEW_AFTER


def _keep_off(job: JobArgs, mine: Mark, mark: Mark, found: Claims) -> None:
    """Another batch's live claim: skip the object, or wait at another version; a claim
    that took this batch's own lapsed claim over is skipped whatever its version."""
    uri = mine.object
    if _took_landed_from(mark, job.batch_id):
        found.waiting[uri] = _relanding_own(mark)
        found.relanding.add(uri)
    elif _took_from(mark, job.batch_id):
        found.skipped[uri] = (
            f"this batch's claim lapsed (older than its lease) and batch {mark.batch_id} "
            "took it over: that batch lands it"
        )
    elif mark.version == mine.version:
        found.skipped[uri] = _held_by(mark)
    else:
        found.waiting[uri] = _landing_another_version(mark, mine)


def _took_from(mark: Mark, batch_id: str) -> bool:
    """Whether ``mark`` took over (maybe through other lapsed claims) a claim of
    ``batch_id``."""
    return any(m.batch_id == batch_id and m.state == CLAIMED for m in _chain(mark.replaces))


def _took_landed_from(mark: Mark, batch_id: str) -> bool:
    """Whether ``mark`` took over (maybe through other marks) a landed mark of
    ``batch_id``: this batch's files may hold the object's rows, and the taker gives that
    mark back if it does not land the object, so a re-run of the batch must neither
    republish its files without them nor skip the object (it waits)."""
    return any(m.batch_id == batch_id and m.state == LANDED for m in _chain(mark.replaces))


def _chain(mark: Optional[Mark]) -> Iterator[Mark]:
    """``mark`` and the marks it replaces, in turn."""
    while mark is not None:
        yield mark
        mark = mark.replaces


def _take_over(
    store: MarkStore, key: str, mine: Mark, *, mark: Mark, etag: str, found: Claims
) -> bool:
    """Replace another batch's landed, released or lapsed ``mark`` (still ``etag``) with
    this run's claim, which keeps a landed one, or a released or lapsed one with what it
    replaces, as the mark it replaces: its rows, wherever an earlier run published them,
    are retracted (retracting rows a batch's files do not hold changes nothing)."""
    replaced = dataclasses.replace(mark, replaces=None) if mark.state == LANDED else mark
    taken = store.replace(key, dataclasses.replace(mine, replaces=replaced).to_json(), etag)
    if taken is None:
        return False
    found.hold(mine.object, taken, mine.version)
    found.earlier[mine.object] = replaced
    return True


def _held_by(mark: Mark) -> str:
    if mark.state == CLAIMED:
        return (
            f"claimed by batch {mark.batch_id} (same version), which lands it "
            "(or, if that batch failed, its redrive)"
        )
    return (
        f"already landed by batch {mark.batch_id} (same version); "
        "backfill with reprocess true to replace it"
    )


def _relanding_own(mark: Mark) -> str:
    return (
        f"batch {mark.batch_id} took over the mark this batch landed it with and has not "
        "landed it yet (this batch's files keep its rows meanwhile): retry this batch once "
        "that batch is done (redrive it if it failed)"
    )


def _landing_another_version(mark: Mark, mine: Mark) -> str:
    return (
        f"claimed by batch {mark.batch_id} at another version ({mark.version}; this run "
        f"found {mine.version}), which it has not landed yet: retry this batch once that "
        "batch is done (redrive it if it failed)"
    )


def mark_landed(
    storage: Storage, job: JobArgs, claims: Claims, landed: Iterable[str], ingestion_date: str
) -> None:
    """Mark the claimed objects that landed as landed (at their claimed version), and
    release the others' claims (an object refused or held back: the next batch that holds
    it takes it). A mark this run took over goes back to its batch, whose rows stay (this
    run has not touched them); any other is released naming what it replaced (this
    batch's own earlier landed mark, or the marks an earlier run of this batch took over
    and may have retracted the rows of, :attr:`Claims.again`), so that the next taker
    retracts the rows from every batch in that chain. Each write is
    conditional on the claim being still this run's; a landed object's lost write fails
    the run (:class:`MarkLostError`), unless the mark reads as this run's landed one (S3
    committed a write whose answer was lost, and botocore's retry found the mark changed)."""
    store = table_marks(storage, job)
    landing = set(landed)

    def settle(uri: str) -> Optional[str]:
        key, etag = mark_uri(job, uri), claims.etags[uri]
        if uri in landing:
            mark = Mark(uri, claims.versions[uri], job.batch_id, ingestion_date, LANDED)
            written = store.replace(key, mark.to_json(), etag) is not None
            return None if written or _reads_as(store, key, mark) else uri
        earlier = claims.earlier.get(uri)
        if earlier is not None and earlier.batch_id != job.batch_id and uri not in claims.again:
            back = earlier  # taken over by this run only: the other batch's rows stay
        else:  # released, still naming the batches whose files may hold its rows
            back = Mark(uri, claims.versions[uri], job.batch_id, ingestion_date, RELEASED)
            back = dataclasses.replace(back, replaces=earlier)
        if store.replace(key, back.to_json(), etag) is None and not _reads_as(store, key, back):
            _warn(f"could not release the claim on {uri}: it holds until its lease lapses")
        return None

    lost = [uri for uri in _each(settle, claims.etags) if uri is not None]
    if lost:
        raise MarkLostError(
            f"batch {job.batch_id} landed objects whose marks another batch now holds: "
            + ", ".join(lost),
            lost,
        )


def _warn(message: str) -> None:
    print(json.dumps({"level": "WARNING", "message": message}))  # the job's log (CloudWatch)


def _reads_as(store: MarkStore, key: str, mark: Mark) -> bool:
    current = store.read(key)
    return current is not None and Mark.from_json(current[0]) == mark


def retract_earlier_rows(
    spark: SparkSession,
    storage: Storage,
    job: JobArgs,
    replaced: Mapping[str, Mark],
    *,
    waiter: Waiter = Waiter(),
) -> None:
    """Remove the rows of ``replaced`` objects from the earlier batches' files (after this
    run published their new rows): a batch's files are rewritten without them, or deleted
    when no other object's rows in them are still needed. A lapsed claim's batch may have
    published the object before it stopped: its files, and those of the mark it replaced,
    are each rewritten, but never this run's own batch's (a lapsed claim that had taken
    this batch's mark over): this run has just published them, with the object's new rows.
    Each batch's files are changed holding its lock (``batch_lock``:
    another run may be retracting another object from them), read only once it is held."""
    by_batch: dict[tuple[str, str], list[str]] = {}
    for uri, mark in replaced.items():
        for earlier in _chain(mark):
            if earlier.batch_id != job.batch_id:  # its own files: just published again
                by_batch.setdefault((earlier.batch_id, earlier.ingestion_date), []).append(uri)
    store = table_marks(storage, job)  # one client for every batch's lock
    for (batch_id, date), uris in sorted(by_batch.items()):
        with hold_batch_files(storage, job, batch_id, waiter=waiter, store=store) as held:
            files_prefix = f"{job.output}ingestion_date={date}/{batch_id}-"
            finish_interrupted(storage, held, _partition(files_prefix))
            if _holds_others(storage, store, job, batch_id, set(uris)):
                _rewrite_without(spark, storage, job, files_prefix, uris, lock=held)
            else:  # every row in those files is replaced: no need to read them
                _delete_files(storage, files_prefix)


def withdraw_batch_files(storage: Storage, job: JobArgs, ingestion_date: str) -> None:
    """Delete this batch's files in its partition, holding its lock (after finishing a
    retraction from them that a run left half done): a run that publishes nothing (a
    quality rule held the batch back, or it waits for another batch holding one of its
    objects) leaves no rows that an earlier attempt of its batch
    published, since its marks (released) and its report (nothing landed) say so; the
    objects land with the next batch that holds them, or the batch's redrive."""
    partition = f"{job.output}ingestion_date={ingestion_date}/"
    with hold_batch_files(storage, job, job.batch_id) as held:
        finish_interrupted(storage, held, partition)
        _delete_files(storage, f"{partition}{job.batch_id}-")


def hold_batch_files(
    storage: Storage,
    job: JobArgs,
    batch_id: str,
    *,
    waiter: Waiter = Waiter(),
    store: Optional[MarkStore] = None,
) -> AbstractContextManager[HeldLock]:
    """Hold ``batch_id``'s lock on its files in ``job``'s table for as long as this run's
    claims (:func:`claim_lease`: Glue has stopped the run by then), through ``store``
    (default: the marks' store of ``job``'s table)."""
    return batch_files_lock(
        store if store is not None else table_marks(storage, job),
        job.output,
        batch_id,
        holder=job.batch_id,
        lease=claim_lease(job),
        waiter=waiter,
    )


def _holds_others(
    storage: Storage, store: MarkStore, job: JobArgs, batch_id: str, replacing: set[str]
) -> bool:
    """Whether the earlier batch's files may hold rows still needed: rows of an object
    other than ``replacing`` that its run report lists as landed, unless another batch has
    since landed that object (and so retracted its rows from these files). Any other mark
    keeps them: the batch's own, a claim (a reprocess or new upload still under way may
    be refused and give the mark back to this batch), a released one, none. So does a
    report that is not final (its run stopped after publishing: its list is not there)."""
    text = storage.read_text(f"{job.output}{contract.RUNS_DIR}/{batch_id}.json")
    if not text:
        return True  # no report to tell: keep the other rows the safe way
    report = json.loads(text)
    if report.get("status", _STARTED) == _STARTED:
        return True
    return any(
        not _landed_since(store, job, entry["object"], batch_id)
        for entry in report.get("landed", [])
        if entry["object"] not in replacing
    )


_STARTED = "STARTED"
"""A run report's status until its run concludes (``report.RunReport``)."""


def _landed_since(store: MarkStore, job: JobArgs, uri: str, batch_id: str) -> bool:
    current = store.read(mark_uri(job, uri))
    if current is None:
        return False
    mark = Mark.from_json(current[0])
    return mark.state == LANDED and mark.batch_id != batch_id


def _delete_files(storage: Storage, files_prefix: str) -> None:
    for old in _batch_files(storage, files_prefix):
        storage.delete(old)


def _rewrite_without(
    spark: SparkSession,
    storage: Storage,
    job: JobArgs,
    files_prefix: str,
    uris: Sequence[str],
    *,
    lock: HeldLock,
) -> None:
    """Rewrite the files named ``<files_prefix>*`` (one earlier batch's files in its
    partition, as they are now: ``lock`` is held) without the rows of ``uris``.

    The kept rows are published first, as ``<files_prefix>r<token>-<n>`` (the batch's
    prefix, so a later retraction finds them; a new token each time, never an existing
    name), then the old files are deleted: a run stopping in between leaves the rows twice,
    never lost. The lock records both lists meanwhile, for the next holder to finish."""
    files = _batch_files(storage, files_prefix)
    if not files:
        return
    batch = _name(files_prefix)
    staging = f"{job.output}{STAGING_DIR}/{job.batch_id}-retract-{batch.rstrip('-')}/"
    parts = _write_kept(spark, storage, files, uris, staging)
    token = uuid.uuid4().hex[:12]
    new = [f"{files_prefix}r{token}-{index:05d}.snappy.parquet" for index in range(len(parts))]
    lock.record(Rewrite(old=tuple(files), new=tuple(new)))
    for part, target in zip(parts, new):
        storage.rename(part, target)
    for old in files:
        storage.delete(old)
    lock.record(None)
    storage.delete(staging)


def _batch_files(storage: Storage, files_prefix: str) -> list[str]:
    batch = _name(files_prefix)
    return [f for f in storage.list_files(_partition(files_prefix)) if _name(f).startswith(batch)]


def _partition(files_prefix: str) -> str:
    return f"{files_prefix.rsplit('/', 1)[0]}/"


def _write_kept(
    spark: SparkSession, storage: Storage, files: Sequence[str], uris: Sequence[str], staging: str
) -> list[str]:
    """Write the rows of ``files`` but those of ``uris`` under ``staging``: its parts (none
    when no row is kept)."""
    kept = spark.read.parquet(*files).where(~F.col("_source_object").isin(list(uris)))
    storage.delete(staging)
    if kept.limit(1).count():
        kept.write.mode("overwrite").parquet(staging)
    return storage.list_parts(staging)


def _name(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]

"""Which objects landed, or are being landed, and in which batch: one mark per object.

``<output>_objects/<sha256 of the URI>.json`` holds the object's version (size and
modification time as S3 reports them: a new upload of the key is a new version), the batch
whose files hold its rows, that batch's partition and the mark's state. Before reading, a run
claims each object with a conditional create of its mark (``mark_store``), so that of two
runs holding the same object (a live run and a backfill batch) only one lands it; it skips
the objects another batch claimed or landed at the same version; with ``--reprocess true``
it takes their marks over, lands them again and then removes their rows from the earlier
batch's files (an Iceberg table: in the batch's own commit, ``iceberg``), so a reprocess
replaces, never doubles. After publishing, the run marks what it landed and releases the
claims of what it did not. A batch that fails for good keeps its claims: its objects are
in its FAILED notification, and a redrive of that batch (the same batch id) lands them, or
a backfill with ``reprocess`` takes them over.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from .arguments import STAGING_DIR, JobArgs
from .mark_store import MarkStore, mark_store
from .shared import contract
from .storage import Storage

T = TypeVar("T")


CLAIMED, LANDED, RELEASED = "claimed", "landed", "released"
"""A mark's states: a run claims an object before reading it, marks it landed after
publishing, and releases the claims of the objects it did not land."""


@dataclass(frozen=True)
class Mark:
    """Where an object's rows are: its version when it was claimed or landed and the batch
    that holds them."""

    object: str
    version: str
    batch_id: str
    ingestion_date: str
    state: str = LANDED
    """``claimed``, ``landed`` or ``released``; marks written before claims had no state:
    they are landed marks."""


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


@dataclass
class Claims:
    """This run's claims: each claimed object's mark ETag, the other batches' marks it took
    over (a new upload of the key, or ``reprocess``), and the objects another batch holds."""

    etags: dict[str, str] = field(default_factory=dict)
    earlier: dict[str, Mark] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def claim_objects(storage: Storage, job: JobArgs, ingestion_date: str) -> Claims:
    """Claim each object before reading it, so that of two runs holding it only one lands it.

    A conditional create of the object's mark: created, the object is this batch's. If a
    mark is there: this batch's own (a retry or redrive of it) is kept; another batch's at
    the same version (claimed or landed) makes this run skip the object, unless
    ``reprocess``; another version (a new upload of the key), a released claim or
    ``reprocess`` takes the mark over, on condition that it is still the one read."""
    store = mark_store(storage, job.output)
    found = Claims()

    def claim(uri: str) -> None:
        mine = Mark(uri, storage.version(uri), job.batch_id, ingestion_date, CLAIMED)
        for _ in range(_CLAIM_ATTEMPTS):
            if _claim_once(store, job, mine, found):
                return
        raise RuntimeError(f"could not claim {uri}: its mark kept changing")

    _each(claim, job.uris)
    return found


def _claim_once(store: MarkStore, job: JobArgs, mine: Mark, found: Claims) -> bool:
    """One try at claiming ``mine.object``; False when another run wrote its mark between
    this run's read and write (read it again)."""
    uri, key = mine.object, mark_uri(job, mine.object)
    etag = store.create(key, _text(mine))
    if etag is not None:
        found.etags[uri] = etag
        return True
    current = store.read(key)
    if current is None:  # removed in between: create it again
        return False
    text, etag = current
    mark = Mark(**json.loads(text))
    if mark.batch_id == job.batch_id:
        found.etags[uri] = etag
        return True
    if mark.state != RELEASED and mark.version == mine.version and not job.reprocess:
        found.skipped[uri] = _held_by(mark)
        return True
    taken = store.replace(key, _text(mine), etag)
    if taken is None:
        return False
    found.etags[uri] = taken
    if mark.state != RELEASED:
        found.earlier[uri] = mark
    return True


def _held_by(mark: Mark) -> str:
    if mark.state == CLAIMED:
        return (
            f"claimed by batch {mark.batch_id} (same version), which lands it; "
            "backfill with reprocess true to replace it"
        )
    return (
        f"already landed by batch {mark.batch_id} (same version); "
        "backfill with reprocess true to replace it"
    )


def mark_landed(
    storage: Storage, job: JobArgs, claims: Claims, landed: Iterable[str], ingestion_date: str
) -> None:
    """Mark the claimed objects that landed as landed, and release the others' claims (an
    object refused or held back: the next batch that holds it takes it). Each write is
    conditional on the claim being still this run's: a ``reprocess`` may have taken it."""
    store = mark_store(storage, job.output)
    landing = set(landed)

    def settle(uri: str) -> None:
        if uri in landing:
            state = LANDED
        elif uri in claims.earlier:  # the earlier batch's rows stay: its mark comes back
            store.replace(mark_uri(job, uri), _text(claims.earlier[uri]), claims.etags[uri])
            return
        else:
            state = RELEASED
        mark = Mark(uri, storage.version(uri), job.batch_id, ingestion_date, state)
        store.replace(mark_uri(job, uri), _text(mark), claims.etags[uri])

    _each(settle, claims.etags)


def _text(mark: Mark) -> str:
    return json.dumps(mark.__dict__)


def retract_earlier_rows(
    spark: SparkSession, storage: Storage, job: JobArgs, replaced: Mapping[str, Mark]
) -> None:
    """Remove the rows of ``replaced`` objects from the earlier batches' files (after this
    run published their new rows): a batch's files are rewritten without them, or deleted
    when nothing else is left in them."""
    by_batch: dict[tuple[str, str], list[str]] = {}
    for uri, mark in replaced.items():
        by_batch.setdefault((mark.batch_id, mark.ingestion_date), []).append(uri)
    for (batch_id, date), uris in sorted(by_batch.items()):
        files_prefix = f"{job.output}ingestion_date={date}/{batch_id}-"
        if _holds_others(storage, job, batch_id, set(uris)):
            _rewrite_without(spark, storage, job, files_prefix, uris)
        else:  # every row in those files is replaced: no need to read them
            _delete_files(storage, files_prefix)


def _holds_others(storage: Storage, job: JobArgs, batch_id: str, replacing: set[str]) -> bool:
    """Whether the earlier batch's files hold rows of objects other than ``replacing``: the
    objects its run report lists as landed whose marks still name it."""
    text = storage.read_text(f"{job.output}{contract.RUNS_DIR}/{batch_id}.json")
    if not text:
        return True  # no report to tell: keep the other rows the safe way
    for entry in json.loads(text).get("landed", []):
        uri = entry["object"]
        if uri in replacing:
            continue
        mark = storage.read_text(mark_uri(job, uri))
        if mark and json.loads(mark).get("batch_id") == batch_id:
            return True
    return False


def _delete_files(storage: Storage, files_prefix: str) -> None:
    partition, batch = files_prefix.rsplit("/", 1)
    for old in storage.list_files(f"{partition}/"):
        if _name(old).startswith(batch):
            storage.delete(old)


def _rewrite_without(
    spark: SparkSession, storage: Storage, job: JobArgs, files_prefix: str, uris: Sequence[str]
) -> None:
    """Rewrite the files named ``<files_prefix>*`` (one earlier batch's files in its
    partition) without the rows of ``uris``, under the same names' pattern."""
    partition, batch = files_prefix.rsplit("/", 1)
    files = [f for f in storage.list_files(f"{partition}/") if _name(f).startswith(batch)]
    if not files:
        return
    kept = spark.read.parquet(*files).where(~F.col("_source_object").isin(list(uris)))
    staging = f"{job.output}{STAGING_DIR}/{job.batch_id}-retract-{batch.rstrip('-')}/"
    storage.delete(staging)
    if kept.limit(1).count():
        kept.write.mode("overwrite").parquet(staging)
    parts = storage.list_parts(staging)
    for old in files:
        storage.delete(old)
    for index, part in enumerate(parts):
        storage.rename(part, f"{files_prefix}{index:05d}.snappy.parquet")
    storage.delete(staging)


def _name(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]

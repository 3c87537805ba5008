"""Which objects already landed, and in which batch: one mark per landed object.

``<output>_objects/<sha256 of the URI>.json`` holds the object's version (size and
modification time as S3 reports them: a new upload of the key is a new version), the batch
whose files hold its rows and that batch's partition. Before reading, a run skips the objects
that already landed in another batch at the same version (a backfill over objects the live
path processed, an object the live path and a backfill both took); with ``--reprocess true``
it lands them again and then removes their rows from the earlier batch's files (an Iceberg
table: in the batch's own commit, ``iceberg``), so a reprocess replaces, never doubles.
After publishing, the run marks what it landed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, TypeVar

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from .arguments import STAGING_DIR, JobArgs
from .shared import contract
from .storage import Storage

T = TypeVar("T")


@dataclass(frozen=True)
class Mark:
    """Where an object's rows are: its version when it landed and the batch that holds them."""

    object: str
    version: str
    batch_id: str
    ingestion_date: str


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


def read_marks(storage: Storage, job: JobArgs) -> dict[str, Mark]:
    """The marks of this run's objects that landed in another batch."""
    texts = _each(lambda uri: storage.read_text(mark_uri(job, uri)), job.uris)
    marks = {}
    for uri, text in zip(job.uris, texts):
        if text:
            mark = Mark(**json.loads(text))
            if mark.batch_id != job.batch_id:
                marks[uri] = mark
    return marks


def already_landed(storage: Storage, job: JobArgs, marks: Mapping[str, Mark]) -> dict[str, str]:
    """Objects to skip (not reprocessing): landed in another batch at their current version."""
    if job.reprocess:
        return {}
    versions = dict(zip(marks, _each(storage.version, marks)))
    return {
        uri: (
            f"already landed by batch {mark.batch_id} (same version); "
            "backfill with reprocess true to replace it"
        )
        for uri, mark in marks.items()
        if versions[uri] == mark.version
    }


def mark_landed(storage: Storage, job: JobArgs, landed: Iterable[str], ingestion_date: str) -> None:
    def mark(uri: str) -> None:
        found = Mark(uri, storage.version(uri), job.batch_id, ingestion_date)
        storage.write_text(mark_uri(job, uri), json.dumps(found.__dict__))

    _each(mark, landed)


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

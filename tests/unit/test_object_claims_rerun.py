"""A re-run of a batch that had landed objects (a Step Functions retry or a redrive) while
another batch takes them over, or that publishes nothing; the batch lock's lost answers
and its place around the batch's own publish (issue #22, review 4). Fake storage (each
file's rows as text), local marks and lock: no Spark."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, Optional, cast

import pytest
from pyspark.sql import SparkSession

from event_driven_etl.runtime.glue.event_driven_etl_job import job as job_module
from event_driven_etl.runtime.glue.event_driven_etl_job import landed, table_runs
from event_driven_etl.runtime.glue.event_driven_etl_job.arguments import JobArgs
from event_driven_etl.runtime.glue.event_driven_etl_job.batch_lock import (
    FREE,
    HELD,
    LockLostError,
    LockState,
    Rewrite,
    batch_files_lock,
    lock_uri,
)
from event_driven_etl.runtime.glue.event_driven_etl_job.errors import JobInputError
from event_driven_etl.runtime.glue.event_driven_etl_job.landed import (
    CLAIMED,
    LANDED,
    RELEASED,
    ClaimConflictError,
    Claims,
    Mark,
    ObjectHeldError,
    claim_objects,
    mark_landed,
    mark_uri,
    retract_earlier_rows,
)
from event_driven_etl.runtime.glue.event_driven_etl_job.mark_store import LocalMarkStore
from event_driven_etl.runtime.glue.event_driven_etl_job.outcomes import Ledger, Outcome
from event_driven_etl.runtime.glue.event_driven_etl_job.report import RunReport, finish_report
from event_driven_etl.runtime.glue.event_driven_etl_job.shared import contract
from event_driven_etl.runtime.glue.event_driven_etl_job.storage import Storage
from event_driven_etl.runtime.glue.event_driven_etl_job.tables import TableRule
from tests.claims_fakes import MemoryFiles, rewrite_rows_as_text

X, Y = "s3://in/x.json", "s3://in/y.json"
OUTPUT = "/tmp/claims-rerun/out/"
B_DATE, B_PARTITION = "2026-12-01", f"{OUTPUT}ingestion_date=2026-12-01/"


_Files = MemoryFiles


def _job(batch_id: str, uris: Sequence[str], *, reprocess: bool = False) -> JobArgs:
    return JobArgs(uris=tuple(uris), output_path=OUTPUT, batch_id=batch_id, reprocess=reprocess)


@pytest.fixture
def files(table: _Files) -> _Files:
    """Batch B landed X and Y (v1) in one file, then failed."""
    found = table
    for uri in (X, Y):
        mark = Mark(uri, "v1", "B", B_DATE, LANDED)
        found.write_text(mark_uri(_job("B", [uri]), uri), mark.to_json())
    report = {"status": "FAILED", "landed": [{"object": u} for u in (X, Y)]}
    found.write_text(f"{OUTPUT}{contract.RUNS_DIR}/B.json", json.dumps(report))
    found.write_text(f"{B_PARTITION}B-00000.snappy.parquet", f"{X}|1\n{Y}|1")
    return found


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> _Files:
    """An empty table; Spark's part of a rewrite (the kept rows) works on the rows as
    text."""
    found = _Files()
    rewrite_rows_as_text(monkeypatch, found)
    return found


def _storage(files: _Files) -> Storage:
    return cast(Storage, files)


def _claim(files: _Files, job: JobArgs, date: str) -> Claims:
    return claim_objects(_storage(files), job, date)


def _mark(files: _Files, uri: str) -> Mark:
    text = files.read_text(mark_uri(_job("B", [uri]), uri))
    assert text is not None
    return Mark.from_json(text)


def _rows(files: _Files, uri: str) -> Counter[str]:
    """The files (by name) holding a row of ``uri``, each as often as it does."""
    return Counter(
        name.rsplit("/", 1)[-1]
        for name, text in files.texts.items()
        if "/ingestion_date=" in name and name.endswith(".snappy.parquet")
        for row in text.splitlines()
        if row.startswith(f"{uri}|")
    )


def _land(files: _Files, job: JobArgs, claims: Claims, uris: Sequence[str], date: str) -> None:
    """``job``'s run publishes ``uris`` (one row each, in its own file), retracts their
    earlier rows and marks them landed."""
    rows = "\n".join(f"{u}|1" for u in uris)
    files.write_text(f"{OUTPUT}ingestion_date={date}/{job.batch_id}-00000.snappy.parquet", rows)
    earlier = {u: claims.earlier[u] for u in uris if u in claims.earlier}
    retract_earlier_rows(cast(SparkSession, None), _storage(files), job, earlier)
    mark_landed(_storage(files), job, claims, uris, date)


def test_a_rerun_waits_for_a_batch_relanding_an_object_it_had_landed(files: _Files) -> None:
    # C (a reprocess, or a new upload's run) takes X's landed mark over from B. B's re-run
    # must not skip X and republish its files without it: C may give the mark back to B.
    c = _job("C", [X], reprocess=True)
    c_claims = _claim(files, c, "2026-12-06")
    with pytest.raises(ObjectHeldError, match=f"{X}: batch C took over the mark this batch"):
        _claim(files, _job("B", [X, Y]), B_DATE)
    mark_landed(_storage(files), c, c_claims, [], "2026-12-06")  # C refuses X
    assert _mark(files, X).state == LANDED and _mark(files, X).batch_id == "B"
    assert _rows(files, X) == Counter({"B-00000.snappy.parquet": 1})


def test_a_rerun_held_back_releases_its_landed_objects_naming_its_files(files: _Files) -> None:
    # B's re-run claims X and Y again, then publishes nothing (another batch, L, is landing
    # another version of Y): X's release still names B's files, which hold X's rows, so the
    # next batch holding X retracts them there rather than land X a second time.
    files.versions[Y] = "v2"
    _claim(files, _job("L", [Y]), "2026-12-06")
    files.versions[Y] = "v3"
    with pytest.raises(ObjectHeldError):
        _claim(files, _job("B", [X, Y]), B_DATE)
    released = _mark(files, X)
    assert released.state == RELEASED and released.batch_id == "B"
    assert released.replaces is not None and released.replaces.batch_id == "B"
    d = _job("D", [X])
    _land(files, d, _claim(files, d, "2026-12-07"), [X], "2026-12-07")
    assert _rows(files, X) == Counter({"D-00000.snappy.parquet": 1})


def test_a_rerun_held_by_a_quality_rule_does_not_let_its_rows_be_landed_twice(
    files: _Files,
) -> None:
    # B's re-run claims X and Y afresh, a quality rule holds its batch back (nothing is
    # published): both are released, and the next batch landing them retracts B's rows.
    b = _job("B", [X, Y])
    mark_landed(_storage(files), b, _claim(files, b, B_DATE), [], B_DATE)
    d = _job("D", [X, Y])
    _land(files, d, _claim(files, d, "2026-12-07"), [X, Y], "2026-12-07")
    assert _rows(files, X) == Counter({"D-00000.snappy.parquet": 1})
    assert _rows(files, Y) == Counter({"D-00000.snappy.parquet": 1})


def test_a_rerun_landing_its_objects_again_keeps_its_own_new_rows(files: _Files) -> None:
    b = _job("B", [X, Y])
    claims = _claim(files, b, B_DATE)
    files.delete(f"{B_PARTITION}B-00000.snappy.parquet")  # its publish replaces its files
    _land(files, b, claims, [X, Y], B_DATE)
    assert _rows(files, X) == Counter({"B-00000.snappy.parquet": 1})
    assert _mark(files, X) == Mark(X, "v1", "B", B_DATE, LANDED)


class _LostAnswer(LocalMarkStore):
    """A store whose next successful replace S3 commits but whose answer is lost: botocore
    retries it and gets 412 (the ETag changed)."""

    lose_next = False

    def replace(self, uri: str, text: str, etag: str) -> Optional[str]:
        written = super().replace(uri, text, etag)
        if self.lose_next and written is not None:
            self.lose_next = False
            return super().replace(uri, text, etag)
        return written


@pytest.mark.parametrize("lost", ["record", "release"])
def test_a_lock_write_whose_answer_was_lost_is_done(files: _Files, lost: str) -> None:
    store = _LostAnswer(_storage(files))
    with batch_files_lock(store, OUTPUT, "B", holder="C", lease=timedelta(hours=2)) as held:
        store.lose_next = lost == "record"
        held.record(Rewrite(old=("a",), new=("b",)))
        assert _lock_state(files).rewrite == Rewrite(old=("a",), new=("b",))
        store.lose_next = lost == "release"
    assert _lock_state(files).state == FREE


def _lock_state(files: _Files) -> LockState:
    return LockState.from_json(files.texts[lock_uri(OUTPUT, "B")])


class _BodyError(Exception):
    """The run's own error inside the lock."""


def test_a_failed_release_does_not_hide_the_runs_error(
    files: _Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalMarkStore(_storage(files))

    def fails(*_: Any) -> Optional[str]:
        raise RuntimeError("S3 unavailable")

    def fail_inside_the_lock() -> None:
        with batch_files_lock(store, OUTPUT, "B", holder="C", lease=timedelta(hours=2)):
            monkeypatch.setattr(store, "replace", fails)
            raise _BodyError

    with pytest.raises(_BodyError):
        fail_inside_the_lock()


def test_a_batch_publishes_its_files_holding_its_lock(
    files: _Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[LockState] = []

    def publish(storage: Any, job: JobArgs, staged: list[str], date: str) -> list[str]:
        seen.append(_lock_state(files))
        return []

    monkeypatch.setattr(job_module, "publish", publish)
    report = cast(RunReport, SimpleNamespace(ingestion_date=B_DATE))
    job_module._publish(
        cast(SparkSession, None), _storage(files), _job("B", [X]), [], report, replaced=[]
    )
    assert [(s.holder, s.state) for s in seen] == [("B", HELD)]
    assert _lock_state(files).state == FREE


@pytest.mark.parametrize(
    "error",
    [
        LockLostError("the lock was taken over"),
        ClaimConflictError("could not claim s3://in/orders/a.csv: its mark kept changing"),
    ],
)
def test_a_tables_lost_lock_or_claim_conflict_fails_that_table_only(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    # Before: the error ended the run, the tables after it never ran and the run's report
    # stayed STARTED.
    reports = MemoryFiles()
    monkeypatch.setattr(table_runs, "Storage", lambda spark: reports)
    uris = ("s3://in/orders/a.csv", "s3://in/users/b.csv")
    job = JobArgs(uris=uris, output_path=OUTPUT, batch_id="b1")

    def stages(spark: SparkSession, table_job: JobArgs) -> RunReport:
        if table_job.table == "orders":
            raise error
        landed_b = Outcome(uris[1], "landed", rows=1)
        return RunReport("b1", "2026-12-06", "2026-12-06 08:00:00", "SUCCEEDED", [landed_b])

    with pytest.raises(JobInputError):
        table_runs.run_tables(cast(SparkSession, None), job, TableRule.of("by_folder"), stages)
    report = json.loads(reports.texts[job.report_uri])
    assert report["status"] == "FAILED"
    assert [entry["object"] for entry in report["landed"]] == [uris[1]]
    assert type(error).__name__ in report["refused"][0]["reason"]


def test_a_release_that_could_not_be_written_is_logged(
    files: _Files, capsys: pytest.CaptureFixture[str]
) -> None:
    b = _job("B", [X])
    claims = _claim(files, b, B_DATE)
    other = Mark(X, "v1", "Q", "2026-12-06", LANDED)  # written meanwhile: the claim is gone
    files.write_text(mark_uri(b, X), other.to_json())
    mark_landed(_storage(files), b, claims, [], B_DATE)
    assert f"could not release the claim on {X}" in capsys.readouterr().out
    assert _mark(files, X) == other


# Review 5: a run that publishes nothing left in the table what an earlier attempt of its
# batch had published, while its marks and report said those objects were not there.


def _batch_rows(files: _Files, batch_id: str) -> list[str]:
    return sorted(
        row
        for name, text in files.texts.items()
        if "/ingestion_date=" in name and name.rsplit("/", 1)[-1].startswith(f"{batch_id}-")
        for row in text.splitlines()
    )


def _held_run(files: _Files, job: JobArgs, claims: Claims, date: str) -> None:
    """``job``'s run held back by a quality rule: it publishes nothing (no files), settles
    its claims with nothing landed and reports so."""
    report = cast(RunReport, SimpleNamespace(files=[], ingestion_date=date))
    job_module._keep_marks(
        cast(SparkSession, None),
        _storage(files),
        job,
        report,
        landed=[],
        claims=claims,
        published=False,
    )
    held = {"status": "FAILED", "landed": [], "refused": [{"object": u} for u in job.uris]}
    files.write_text(f"{OUTPUT}{contract.RUNS_DIR}/{job.batch_id}.json", json.dumps(held))


def test_a_held_rerun_leaves_no_rows_of_its_batch_and_a_later_taker_keeps_them_apart(
    files: _Files,
) -> None:
    # R1. Before: B's held re-run kept B-00000 (X, Y) while its report said landed=[]; D,
    # taking X only, read that report and deleted all of B's files: Y's rows went with X's,
    # although Y's release said nothing about it. Now the held run deletes its batch's
    # files itself (holding B's lock): the table matches its marks and report at once.
    b = _job("B", [X, Y])
    _held_run(files, b, _claim(files, b, B_DATE), B_DATE)
    assert _batch_rows(files, "B") == []
    assert _lock_state(files).state == FREE
    assert (_mark(files, X).state, _mark(files, Y).state) == (RELEASED, RELEASED)
    files.versions[X] = "v2"  # a new upload of X, landed by D
    d = _job("D", [X])
    _land(files, d, _claim(files, d, "2026-12-07"), [X], "2026-12-07")
    assert _rows(files, X) == Counter({"D-00000.snappy.parquet": 1})
    assert _mark(files, Y).state == RELEASED  # Y lands with the next batch holding it
    e = _job("E", [Y])
    _land(files, e, _claim(files, e, "2026-12-08"), [Y], "2026-12-08")
    assert _rows(files, Y) == Counter({"E-00000.snappy.parquet": 1})


Z = "s3://in/z.json"


def _landing_by_another_batch(files: _Files, uri: str) -> None:
    """Batch L claims version 2 of ``uri`` and is still landing it."""
    files.versions[uri] = "v2"
    _claim(files, _job("L", [uri]), "2026-12-06")


def _crashed_after_publishing(files: _Files, job: JobArgs, date: str) -> Claims:
    """``job``'s first run claims and publishes its objects (but those it skips), then
    stops before marking them (its claims stay)."""
    claims = _claim(files, job, date)
    rows = "\n".join(f"{u}|1" for u in claims.etags)
    files.write_text(f"{OUTPUT}ingestion_date={date}/{job.batch_id}-00000.snappy.parquet", rows)
    return claims


@pytest.mark.parametrize("held", ["quality rule", "object held by another batch"])
def test_a_retry_that_publishes_nothing_after_a_crash_never_leaves_an_object_twice(
    table: _Files, held: str
) -> None:
    # R2. B's first run published X and Y, then stopped before marking them. Before: its
    # retry, publishing nothing, released X naming no batch's files (its claim replaced
    # nothing), and D, taking the released mark, retracted nothing: X in B's file and D's.
    files = table
    b = _job("B", [X, Y, Z])
    _landing_by_another_batch(files, Z)  # B skips Z: L lands it
    _crashed_after_publishing(files, b, B_DATE)
    if held == "quality rule":
        _held_run(files, b, _claim(files, b, B_DATE), B_DATE)
    else:  # Z is uploaded again: B's retry waits for L, publishing nothing
        files.versions[Z] = "v3"
        with pytest.raises(ObjectHeldError):
            _claim(files, b, B_DATE)
    assert _mark(files, X).state == RELEASED
    assert _batch_rows(files, "B") == []  # it publishes nothing: its batch has no rows
    d = _job("D", [X])
    _land(files, d, _claim(files, d, "2026-12-07"), [X], "2026-12-07")
    assert _rows(files, X) == Counter({"D-00000.snappy.parquet": 1})


@pytest.mark.parametrize("held", ["quality rule", "object held by another batch"])
def test_a_takers_retry_that_publishes_nothing_does_not_give_the_mark_back(
    files: _Files, held: str
) -> None:
    # R3. C took X's landed mark over from B, published X, retracted it from B's file, and
    # stopped before marking it. Before: C's retry, publishing nothing, gave the mark back
    # to B (whose rows of X were gone), and B's redrive landed X again beside C's file.
    c = _job("C", [X, Z], reprocess=True)
    _landing_by_another_batch(files, Z)  # C skips Z: L lands it
    claims = _crashed_after_publishing(files, c, "2026-12-06")
    retract_earlier_rows(cast(SparkSession, None), _storage(files), c, {X: claims.earlier[X]})
    if held == "quality rule":
        _held_run(files, c, _claim(files, c, "2026-12-06"), "2026-12-06")
    else:  # Z is uploaded again: C's retry waits for L, publishing nothing
        files.versions[Z] = "v3"
        with pytest.raises(ObjectHeldError):
            _claim(files, c, "2026-12-06")
    released = _mark(files, X)
    assert (released.state, released.batch_id) == (RELEASED, "C")
    assert released.replaces is not None and released.replaces.batch_id == "B"
    b = _job("B", [X, Y])  # B's redrive lands X (and Y) again in its files
    b_claims = _claim(files, b, B_DATE)
    for name in files.list_files(B_PARTITION):  # its publish replaces its files
        files.delete(name)
    _land(files, b, b_claims, [X, Y], B_DATE)
    assert _rows(files, X) == Counter({"B-00000.snappy.parquet": 1})
    assert _rows(files, Y) == Counter({"B-00000.snappy.parquet": 1})


@pytest.mark.parametrize("relanding", [False, True])
def test_a_waiting_run_removes_its_batch_s_rows_its_own_way_before_releasing(
    files: _Files, relanding: bool
) -> None:
    # An Iceberg run removes its batch's rows with a delete commit (job.py passes it as
    # ``withdraw``), not by deleting Parquet files: it runs while the run still holds its
    # claims, and not at all when the batch waits for one that took over its landed mark
    # (that batch may give the mark back: the rows stay).
    if relanding:  # C takes X's landed mark over from B
        _claim(files, _job("C", [X], reprocess=True), "2026-12-06")
    else:  # L lands a version of Z, B's re-run finds another
        _landing_by_another_batch(files, Z)
        files.versions[Z] = "v3"
    states: list[str] = []
    with pytest.raises(ObjectHeldError):
        claim_objects(
            _storage(files),
            _job("B", [X, Y, Z]),
            B_DATE,
            withdraw=lambda: states.append(_mark(files, Y).state),
        )
    assert states == ([] if relanding else [CLAIMED])
    assert _batch_rows(files, "B") == [f"{X}|1", f"{Y}|1"]  # not the Parquet default


def test_a_tables_lost_mark_still_reports_the_objects_that_landed(
    table: _Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: MarkLostError (raised after publishing) failed the whole table, every object
    # of it reported refused with 0 rows, although all had landed and all but one kept
    # their marks.
    monkeypatch.setattr(table_runs, "Storage", lambda spark: table)
    uris = ("s3://in/orders/a.csv", "s3://in/orders/b.csv")
    job = JobArgs(uris=uris, output_path=OUTPUT, batch_id="b1")

    def stages(spark: SparkSession, one: JobArgs) -> RunReport:
        report = RunReport("b1", "2026-12-06", "2026-12-06 08:00:00", files=["b1-00000"])
        claims = _claim(table, one, report.ingestion_date)
        taken = Mark(uris[0], "v1", "Q", "2026-12-07", landed.CLAIMED)  # its lease lapsed
        table.write_text(mark_uri(one, uris[0]), taken.to_json())
        ledger = Ledger()
        failed = job_module._keep_marks_or_lost(
            spark,
            _storage(table),
            one,
            report,
            ledger=ledger,
            landed=list(uris),
            claims=claims,
            published=True,
        )
        rows = dict.fromkeys(uris, 3)
        return finish_report(_storage(table), one, report, ledger, rows, failed=failed)

    with pytest.raises(JobInputError):
        table_runs.run_tables(cast(SparkSession, None), job, TableRule.of("by_folder"), stages)
    report = json.loads(table.texts[job.report_uri])
    assert report["status"] == "FAILED" and "MarkLostError" in report["cause"]
    assert [(e["object"], e["rows"]) for e in report["landed"]] == [(uris[1], 3)]
    assert report["skipped"][0]["object"] == uris[0]
    assert "batch took over this run's claim" in report["skipped"][0]["reason"]
    assert report["tables"] == {"orders": {"rows": 3, "landed": 1}}

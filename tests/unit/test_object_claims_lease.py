"""A claim's lease: a batch that crashed or timed out holding an object does not block it
for ever. Also: a landed write whose answer was lost, a 409 retried, a held run letting go
of its claims, and a table's held objects failing only that table.

Claims are conditional writes on (moto's) S3, as in ``test_object_claims``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Optional, cast

import pytest
from botocore.exceptions import ClientError
from pyspark.sql import SparkSession

from event_driven_etl._contract import JOB_TIMEOUT_ARGUMENT
from event_driven_etl.runtime.glue.event_driven_etl_job import landed, table_runs
from event_driven_etl.runtime.glue.event_driven_etl_job import mark_store as marks
from event_driven_etl.runtime.glue.event_driven_etl_job.arguments import JobArgs
from event_driven_etl.runtime.glue.event_driven_etl_job.errors import JobInputError
from event_driven_etl.runtime.glue.event_driven_etl_job.landed import (
    Claims,
    ObjectHeldError,
    claim_lease,
    claim_objects,
    mark_landed,
    mark_uri,
)
from event_driven_etl.runtime.glue.event_driven_etl_job.report import RunReport
from event_driven_etl.runtime.glue.event_driven_etl_job.storage import Storage
from event_driven_etl.runtime.glue.event_driven_etl_job.tables import TableRule
from tests.claims_fakes import MemoryFiles

pytestmark = pytest.mark.usefixtures("aws_region")

OBJECT = "s3://in/incoming/a.csv"
OTHER = "s3://in/incoming/b.csv"
OUTPUT = "s3://out/processed/"
T0 = datetime(2026, 12, 6, 8, 0, tzinfo=timezone.utc)
TIMEOUT_MINUTES = 60
LEASE = timedelta(minutes=TIMEOUT_MINUTES) + timedelta(minutes=30)


class _Versions:
    def __init__(self) -> None:
        self.current = "5-1000"

    def version(self, uri: str) -> str:
        return self.current

    def list_files(self, prefix: str) -> list[str]:
        return []  # the table's files: none (a run held back deletes its batch's)


def _job(batch_id: str, *, reprocess: bool = False, uris: tuple[str, ...] = (OBJECT,)) -> JobArgs:
    return JobArgs(
        uris=uris,
        output_path=OUTPUT,
        batch_id=batch_id,
        reprocess=reprocess,
        job_timeout_minutes=TIMEOUT_MINUTES,
    )


def _claim(versions: _Versions, batch_id: str, at: datetime, *, reprocess: bool = False) -> Claims:
    job = _job(batch_id, reprocess=reprocess)
    return claim_objects(cast(Storage, versions), job, "2026-12-06", now=at)


def _land(versions: _Versions, batch_id: str, claims: Claims, landed_: list[str]) -> None:
    mark_landed(cast(Storage, versions), _job(batch_id), claims, landed_, "2026-12-06")


def _mark(s3: Any, uri: str = OBJECT) -> dict[str, Any]:
    key = mark_uri(_job("any"), uri).removeprefix("s3://out/")
    return cast(dict[str, Any], json.loads(s3.get_object(Bucket="out", Key=key)["Body"].read()))


def test_the_lease_is_the_job_timeout_plus_margins() -> None:
    assert claim_lease(_job("b")) == LEASE
    unknown = JobArgs(uris=(OBJECT,), output_path=OUTPUT, batch_id="b")
    assert claim_lease(unknown) == timedelta(days=7, minutes=30)  # Glue's longest timeout
    args = {JOB_TIMEOUT_ARGUMENT.removeprefix("--"): "120", "output_path": OUTPUT}
    assert JobArgs.from_args(args, [OBJECT]).job_timeout_minutes == 120


def test_a_claim_records_when_it_was_made_and_its_lease(s3: Any) -> None:
    _claim(_Versions(), "b1", T0)
    mark = _mark(s3)
    assert datetime.fromisoformat(mark["claimed_at"]) == T0
    assert mark["lease_seconds"] == LEASE.total_seconds()


def test_a_claim_within_its_lease_is_not_taken_over(s3: Any) -> None:
    versions = _Versions()
    _claim(versions, "crashed", T0)
    later = _claim(versions, "later", T0 + LEASE - timedelta(minutes=1), reprocess=True)
    assert later.etags == {} and "claimed by batch crashed" in later.skipped[OBJECT]


def test_a_lapsed_claim_at_the_same_version_is_taken_over(s3: Any) -> None:
    # Before: a batch that crashed holding the object, never redriven, kept every later
    # batch off it for ever (skipped at the same version).
    versions = _Versions()
    _claim(versions, "crashed", T0)
    later = _claim(versions, "later", T0 + LEASE + timedelta(minutes=1))
    assert set(later.etags) == {OBJECT} and later.skipped == {}
    assert later.earlier[OBJECT].batch_id == "crashed"  # its rows, if any, are retracted
    _land(versions, "later", later, [OBJECT])
    assert _mark(s3)["batch_id"] == "later" and _mark(s3)["state"] == "landed"


def test_a_lapsed_claim_at_another_version_is_taken_over(s3: Any) -> None:
    # Before: every run of a new upload failed with ObjectHeldError, for ever.
    versions = _Versions()
    _claim(versions, "crashed", T0)
    versions.current = "6-2000"
    later = _claim(versions, "upload", T0 + LEASE + timedelta(minutes=1))
    assert set(later.etags) == {OBJECT} and later.versions[OBJECT] == "6-2000"


def test_reprocess_takes_over_a_lapsed_claim_and_retracts_both_earlier_batches(s3: Any) -> None:
    versions = _Versions()
    _land(versions, "b1", _claim(versions, "b1", T0), [OBJECT])
    _claim(versions, "r1", T0, reprocess=True)  # took b1's mark over, then crashed
    r2 = _claim(versions, "r2", T0 + LEASE + timedelta(minutes=1), reprocess=True)
    chain = [m.batch_id for m in landed._chain(r2.earlier[OBJECT])]
    assert chain == ["r1", "b1"]  # r1 may have published it; b1's rows are still there


def test_a_redrive_past_the_lease_finds_its_claim_taken_and_skips(s3: Any) -> None:
    versions = _Versions()
    _claim(versions, "crashed", T0)
    _claim(versions, "later", T0 + LEASE + timedelta(minutes=1))
    versions.current = "6-2000"  # even at another version: the taker lands the object
    redrive = _claim(versions, "crashed", T0 + LEASE + timedelta(minutes=2))
    assert redrive.etags == {}
    assert "this batch's claim lapsed" in redrive.skipped[OBJECT]
    assert "batch later took it over" in redrive.skipped[OBJECT]


def test_a_later_run_of_the_batch_renews_its_claim(s3: Any) -> None:
    versions = _Versions()
    _claim(versions, "b1", T0)
    retry = _claim(versions, "b1", T0 + timedelta(hours=1))  # a retry, an hour later
    assert set(retry.etags) == {OBJECT}
    assert datetime.fromisoformat(_mark(s3)["claimed_at"]) == T0 + timedelta(hours=1)
    other = _claim(versions, "b2", T0 + LEASE + timedelta(minutes=1))
    assert other.etags == {} and "claimed by batch b1" in other.skipped[OBJECT]


def test_a_run_held_back_by_another_batch_lets_go_of_its_claims(s3: Any) -> None:
    # Before: it kept them, and two runs each waiting for the other's object deadlocked.
    versions = _Versions()
    storage = cast(Storage, versions)
    claim_objects(storage, _job("live"), "2026-12-06", now=T0)
    versions.current = "6-2000"
    with pytest.raises(ObjectHeldError):
        claim_objects(storage, _job("upload", uris=(OBJECT, OTHER)), "2026-12-06", now=T0)
    assert _mark(s3, OTHER)["state"] == "released" and _mark(s3, OBJECT)["batch_id"] == "live"


def test_a_landed_write_whose_answer_was_lost_is_not_lost(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # S3 committed the landed mark, the answer was lost, botocore's retry got 412. Before:
    # MarkLostError, a failed run for an object that landed once.
    versions = _Versions()
    claims = _claim(versions, "b1", T0)

    class _AnswerLost:
        def __init__(self, store: Any) -> None:
            self.store = store

        def __getattr__(self, name: str) -> Any:
            return getattr(self.store, name)

        def replace(self, uri: str, text: str, etag: str) -> Optional[str]:
            self.store.replace(uri, text, etag)
            return None

    real = marks.mark_store
    monkeypatch.setattr(landed, "mark_store", lambda *a, **k: _AnswerLost(real(*a, **k)))
    _land(versions, "b1", claims, [OBJECT])
    assert _mark(s3)["state"] == "landed"


def test_a_409_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: a 409 (another conditional write of the mark under way) counted as lost.
    class _Client:
        def __init__(self) -> None:
            self.calls = 0
            self.meta = type("Meta", (), {"events": type("E", (), {"register": _noop})()})()

        def put_object(self, **_: Any) -> dict[str, str]:
            self.calls += 1
            if self.calls == 1:
                error = {"Error": {"Code": "ConditionalRequestConflict"}}
                raise ClientError(error, "PutObject")
            return {"ETag": '"e1"'}

    monkeypatch.setattr(marks, "_CONFLICT_BACKOFF_SECONDS", 0.0)
    client = _Client()
    store = marks.S3MarkStore(client)
    assert store.create(f"{OUTPUT}_objects/k.json", "{}") == '"e1"' and client.calls == 2


def _noop(*_: Any, **__: Any) -> None:
    return None


def test_a_tables_held_objects_fail_that_table_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: the ObjectHeldError of one table ended the run: the tables after it never
    # ran and the run wrote no report naming the held objects.
    reports = MemoryFiles()
    monkeypatch.setattr(table_runs, "Storage", lambda spark: reports)
    uris = ("s3://in/orders/a.csv", "s3://in/users/b.csv")
    job = JobArgs(uris=uris, output_path=OUTPUT, batch_id="b1")
    rule = TableRule.of("by_folder")

    def stages(spark: SparkSession, table_job: JobArgs) -> RunReport:
        if table_job.table == "orders":
            raise ObjectHeldError(f"{uris[0]}: claimed by batch live at another version")
        from event_driven_etl.runtime.glue.event_driven_etl_job.outcomes import Outcome

        return RunReport(
            "b1",
            "2026-12-06",
            "2026-12-06 08:00:00",
            "SUCCEEDED",
            [Outcome(uris[1], "landed", rows=1)],
        )

    with pytest.raises(JobInputError) as raised:
        table_runs.run_tables(cast(SparkSession, None), job, rule, stages)
    report = json.loads(reports.texts[job.report_uri])
    assert [entry["object"] for entry in report["landed"]] == [uris[1]]
    assert "ObjectHeldError" in report["refused"][0]["reason"]
    assert report["status"] == "FAILED" and "orders" in str(raised.value)

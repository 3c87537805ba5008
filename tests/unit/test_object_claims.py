"""The object claims (issue #22): of two runs holding the same object, one lands it.

The claims are conditional writes of the object marks on (moto's) S3; the object versions
come from a stand-in for the job's Hadoop storage."""

from __future__ import annotations

import json
import threading
from typing import Any, Optional, cast

import pytest

from event_driven_etl._contract import OUTPUT_KMS_KEY_ARGUMENT
from event_driven_etl.runtime.glue.event_driven_etl_job import landed
from event_driven_etl.runtime.glue.event_driven_etl_job.arguments import JobArgs
from event_driven_etl.runtime.glue.event_driven_etl_job.landed import (
    _CONCURRENT_CALLS,
    Claims,
    MarkLostError,
    ObjectHeldError,
    claim_objects,
    mark_landed,
    mark_uri,
)
from event_driven_etl.runtime.glue.event_driven_etl_job.mark_store import mark_store, s3_client
from event_driven_etl.runtime.glue.event_driven_etl_job.storage import Storage

pytestmark = pytest.mark.usefixtures("aws_region")

OBJECT = "s3://in/incoming/a.csv"
OUTPUT = "s3://out/processed/"


class _Versions:
    """The objects' versions, as the job's storage reports them; ``barrier``: every claimer
    waits there after reading the version, so all of them reach the mark at once."""

    def __init__(self, barrier: Optional[threading.Barrier] = None) -> None:
        self.current = "5-1000"
        self.barrier = barrier

    def version(self, uri: str) -> str:
        if self.barrier is not None:
            self.barrier.wait(timeout=30)
        return self.current

    def list_files(self, prefix: str) -> list[str]:
        return []  # the table's files: none (a run held back deletes its batch's)


def _job(batch_id: str, *, reprocess: bool = False) -> JobArgs:
    return JobArgs(uris=(OBJECT,), output_path=OUTPUT, batch_id=batch_id, reprocess=reprocess)


def _claim(versions: _Versions, batch_id: str, *, reprocess: bool = False) -> Claims:
    storage = cast(Storage, versions)  # claims read only the objects' versions from it
    return claim_objects(storage, _job(batch_id, reprocess=reprocess), "2026-12-06")


def _land(versions: _Versions, batch_id: str, claims: Claims, landed_: list[str]) -> None:
    mark_landed(cast(Storage, versions), _job(batch_id), claims, landed_, "2026-12-06")


def _mark_key() -> str:
    return mark_uri(_job("any"), OBJECT).removeprefix("s3://out/")


def _mark(s3: Any) -> dict[str, str]:
    key = _mark_key()
    return cast(dict[str, str], json.loads(s3.get_object(Bucket="out", Key=key)["Body"].read()))


def test_of_two_runs_claiming_at_once_one_takes_the_object(s3: Any) -> None:
    # Both claimers read the object's version, then write its mark at the same moment:
    # before claims, both found no mark there and both landed the object.
    versions = _Versions(threading.Barrier(2))
    results: dict[str, Claims] = {}

    def claim(batch_id: str) -> None:
        results[batch_id] = _claim(versions, batch_id)

    threads = [threading.Thread(target=claim, args=(b,)) for b in ("live", "backfill")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [b for b, c in results.items() if OBJECT in c.etags]
    assert len(winners) == 1
    (loser,) = set(results) - set(winners)
    assert OBJECT not in results[loser].etags
    assert f"claimed by batch {winners[0]}" in results[loser].skipped[OBJECT]
    assert _mark(s3)["batch_id"] == winners[0] and _mark(s3)["state"] == "claimed"


def test_a_landed_object_is_skipped_naming_its_batch(s3: Any) -> None:
    versions = _Versions()
    first = _claim(versions, "b1")
    _land(versions, "b1", first, [OBJECT])
    assert _mark(s3)["state"] == "landed"
    later = _claim(versions, "b2")
    assert later.etags == {} and "already landed by batch b1" in later.skipped[OBJECT]


def test_a_retry_of_the_same_batch_keeps_its_claim(s3: Any) -> None:
    versions = _Versions()
    first = _claim(versions, "b1")
    again = _claim(versions, "b1")  # a retry or redrive: the same batch id
    assert set(again.etags) == {OBJECT} and again.skipped == {} and again.earlier == {}
    _land(versions, "b1", again, [OBJECT])
    assert _mark(s3)["state"] == "landed" and first.etags[OBJECT] == again.etags[OBJECT]


def test_a_failed_batch_keeps_others_off_until_its_redrive_lands_it(s3: Any) -> None:
    versions = _Versions()
    _claim(versions, "failed")  # the run fails for good before marking anything
    other = _claim(versions, "live")
    assert "claimed by batch failed" in other.skipped[OBJECT]
    redrive = _claim(versions, "failed")
    assert set(redrive.etags) == {OBJECT}
    _land(versions, "failed", redrive, [OBJECT])
    assert _mark(s3)["batch_id"] == "failed" and _mark(s3)["state"] == "landed"


def test_reprocess_takes_over_landed_marks(s3: Any) -> None:
    versions = _Versions()
    _land(versions, "failed", _claim(versions, "failed"), [OBJECT])
    taken = _claim(versions, "backfill", reprocess=True)
    assert set(taken.etags) == {OBJECT} and taken.earlier[OBJECT].batch_id == "failed"
    _land(versions, "backfill", taken, [OBJECT])
    replaced = _claim(versions, "again", reprocess=True)
    assert replaced.earlier[OBJECT].batch_id == "backfill"
    assert replaced.earlier[OBJECT].state == "landed"


def test_reprocess_skips_an_object_another_batch_has_claimed(s3: Any) -> None:
    # Before: the backfill took the live run's claim, published first and retracted the
    # live run's not-yet-written files; the live run then published too: the object twice.
    versions = _Versions()
    _claim(versions, "live")
    backfill = _claim(versions, "backfill", reprocess=True)
    assert backfill.etags == {} and "claimed by batch live" in backfill.skipped[OBJECT]
    assert _mark(s3)["batch_id"] == "live" and _mark(s3)["state"] == "claimed"


def test_a_claim_is_never_taken_over_so_its_holder_marks_it_landed(s3: Any) -> None:
    versions = _Versions()
    first = _claim(versions, "b1")
    _claim(versions, "b2", reprocess=True)
    _land(versions, "b1", first, [OBJECT])
    assert _mark(s3)["batch_id"] == "b1" and _mark(s3)["state"] == "landed"


def test_a_new_version_of_an_object_another_batch_is_landing_fails_the_run(s3: Any) -> None:
    # A re-upload's run must neither take the live run's claim (both would land) nor skip
    # the new version (lost): it fails, and its retry takes the object over.
    versions = _Versions()
    live = _claim(versions, "live")
    versions.current = "6-2000"
    with pytest.raises(ObjectHeldError, match="claimed by batch live at another version"):
        _claim(versions, "upload")
    assert _mark(s3)["batch_id"] == "live" and _mark(s3)["state"] == "claimed"
    _land(versions, "live", live, [OBJECT])
    retry = _claim(versions, "upload")
    assert set(retry.etags) == {OBJECT} and retry.earlier[OBJECT].batch_id == "live"


def test_a_lost_landed_write_fails_the_run(s3: Any) -> None:
    versions = _Versions()
    first = _claim(versions, "b1")
    other = {"object": OBJECT, "version": "5-1000", "batch_id": "b2", "ingestion_date": "d"}
    s3.put_object(Bucket="out", Key=_mark_key(), Body=json.dumps(other).encode())
    with pytest.raises(MarkLostError, match="b1 landed objects whose marks another batch"):
        _land(versions, "b1", first, [OBJECT])


def test_a_retry_of_a_reprocess_takeover_still_knows_the_earlier_batch(s3: Any) -> None:
    # Before: the earlier mark was kept only in memory; the retry found its own claim and
    # retracted nothing: the object twice.
    versions = _Versions()
    _land(versions, "b1", _claim(versions, "b1"), [OBJECT])
    _claim(versions, "r", reprocess=True)  # the run crashes before publishing
    retry = _claim(versions, "r", reprocess=True)
    assert retry.earlier[OBJECT].batch_id == "b1" and retry.earlier[OBJECT].state == "landed"
    # Refused this time. The crashed attempt may have published and retracted b1's rows
    # (review 5, R3): the mark is released naming both batches, not given back to b1.
    _land(versions, "r", retry, [])
    assert _mark(s3)["batch_id"] == "r" and _mark(s3)["state"] == "released"
    replaced = landed.Mark.from_json(json.dumps(_mark(s3))).replaces
    assert replaced is not None and replaced.batch_id == "b1" and replaced.state == "landed"


def test_a_retry_of_a_new_uploads_takeover_still_knows_the_older_version(s3: Any) -> None:
    versions = _Versions()
    _land(versions, "b1", _claim(versions, "b1"), [OBJECT])
    versions.current = "6-2000"
    _claim(versions, "b2")  # the run crashes before publishing
    retry = _claim(versions, "b2")
    assert retry.earlier[OBJECT].batch_id == "b1" and retry.earlier[OBJECT].version == "5-1000"


def test_a_takeover_that_s3_committed_before_its_retry_keeps_the_earlier_mark(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # botocore retries a takeover PUT whose answer was lost although S3 had committed it:
    # the retry gets 412 (the ETag changed), the claim re-reads the mark and finds its own.
    versions = _Versions()
    _land(versions, "b1", _claim(versions, "b1"), [OBJECT])

    class _AnswerLost:
        def __init__(self, store: Any) -> None:
            self.store, self.lost = store, False

        def __getattr__(self, name: str) -> Any:
            return getattr(self.store, name)

        def replace(self, uri: str, text: str, etag: str) -> Optional[str]:
            committed = self.store.replace(uri, text, etag)
            if committed is not None and not self.lost:
                self.lost = True
                return None  # what the retried PUT answered: 412
            return cast(Optional[str], committed)

    monkeypatch.setattr(landed, "mark_store", lambda *a, **k: _AnswerLost(mark_store(*a, **k)))
    taken = _claim(versions, "r", reprocess=True)
    assert set(taken.etags) == {OBJECT} and taken.earlier[OBJECT].batch_id == "b1"


def test_the_landed_mark_records_the_claimed_version(s3: Any) -> None:
    # Before: the mark recorded a fresh look: an object overwritten during the run was
    # marked landed at the new version, and the new version's run skipped it.
    versions = _Versions()
    first = _claim(versions, "b1")
    versions.current = "6-2000"  # uploaded again while b1 reads the old version
    _land(versions, "b1", first, [OBJECT])
    assert _mark(s3)["version"] == "5-1000"
    later = _claim(versions, "b2")
    assert set(later.etags) == {OBJECT} and later.earlier[OBJECT].batch_id == "b1"


def test_marks_are_put_with_the_output_key(s3: Any) -> None:
    import boto3

    key_arn = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
    job = JobArgs(uris=(OBJECT,), output_path=OUTPUT, batch_id="b1", output_kms_key=key_arn)
    claim_objects(cast(Storage, _Versions()), job, "2026-12-06")
    head = s3.head_object(Bucket="out", Key=_mark_key())
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key_arn


def test_the_output_key_argument_reaches_the_job() -> None:
    args = {OUTPUT_KMS_KEY_ARGUMENT.removeprefix("--"): "arn:aws:kms:eu-west-1:1:key/k"}
    assert JobArgs.from_args(args, [OBJECT]).output_kms_key == "arn:aws:kms:eu-west-1:1:key/k"


def test_the_marks_client_has_the_jobs_region_and_a_pool_for_its_threads() -> None:
    client = s3_client("eu-west-1")
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.max_pool_connections >= _CONCURRENT_CALLS


def test_a_new_upload_of_the_key_takes_the_mark_over(s3: Any) -> None:
    versions = _Versions()
    first = _claim(versions, "b1")
    _land(versions, "b1", first, [OBJECT])
    versions.current = "6-2000"
    later = _claim(versions, "b2")
    assert set(later.etags) == {OBJECT} and later.earlier[OBJECT].batch_id == "b1"


def test_claims_of_objects_not_landed_are_released(s3: Any) -> None:
    versions = _Versions()
    refused = _claim(versions, "b1")
    _land(versions, "b1", refused, [])  # refused or held back: the next batch may take it
    assert _mark(s3)["state"] == "released"
    later = _claim(versions, "b2")
    # The released mark is kept (review 5, R2): b1's files might hold rows an earlier
    # attempt published; retracting none there changes nothing.
    assert set(later.etags) == {OBJECT} and later.skipped == {}
    assert later.earlier[OBJECT].batch_id == "b1" and later.earlier[OBJECT].state == "released"


def test_a_refused_reprocess_gives_the_mark_back_to_the_earlier_batch(s3: Any) -> None:
    versions = _Versions()
    _land(versions, "b1", _claim(versions, "b1"), [OBJECT])
    taken = _claim(versions, "b2", reprocess=True)
    _land(versions, "b2", taken, [])  # its rows are still b1's
    assert _mark(s3)["batch_id"] == "b1" and _mark(s3)["state"] == "landed"


def test_marks_written_before_claims_read_as_landed(s3: Any) -> None:
    old = {"object": OBJECT, "version": "5-1000", "batch_id": "b0", "ingestion_date": "d"}
    key = mark_uri(_job("any"), OBJECT).removeprefix("s3://out/")
    s3.put_object(Bucket="out", Key=key, Body=json.dumps(old).encode())
    assert "already landed by batch b0" in _claim(_Versions(), "b1").skipped[OBJECT]
    assert landed.Mark.from_json(json.dumps(old)).state == "landed"

"""One run of a batch at a time (issue #22, review 6 F1): two runs of one batch id (a retried
StartJobRun whose first answer was lost, a duplicate run) must not overlap, since each takes
the batch's claims, lock and files as its own. The second waits for the first, asking Glue
whether it ended; a lease left by a run that crashed is taken over at once. In-memory
storage, local conditional writes, an injected sleep: no Spark, no real waits."""

from __future__ import annotations

import contextlib
import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Optional, cast

import pytest
from botocore.stub import Stubber

from event_driven_etl.runtime.glue.event_driven_etl_job import batch_lock, batch_run, job
from event_driven_etl.runtime.glue.event_driven_etl_job.arguments import JobArgs
from event_driven_etl.runtime.glue.event_driven_etl_job.batch_lock import (
    FREE,
    HELD,
    LockState,
    Waiter,
)
from event_driven_etl.runtime.glue.event_driven_etl_job.batch_run import (
    batch_run_uri,
    glue_run_ended,
    one_run_of_the_batch,
)
from event_driven_etl.runtime.glue.event_driven_etl_job.mark_store import LocalMarkStore
from event_driven_etl.runtime.glue.event_driven_etl_job.report import RunReport
from event_driven_etl.runtime.glue.event_driven_etl_job.storage import Storage

OUTPUT = "/tmp/batch-run/out/"
LEASE = timedelta(hours=1, minutes=30)
LEASE_URI = batch_run_uri(OUTPUT, "B")


class _Texts:
    """The job's storage in memory: each object's text."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def read_text(self, uri: str) -> Optional[str]:
        return self.texts.get(uri)

    def write_text(self, uri: str, text: str) -> None:
        self.texts[uri] = text


def _job(run_id: str) -> JobArgs:
    return JobArgs(
        uris=("s3://in/a.csv",), output_path=OUTPUT, batch_id="B", job_name="etl", job_run_id=run_id
    )


def _store(texts: _Texts) -> LocalMarkStore:
    return LocalMarkStore(cast(Storage, texts))


def _lease(texts: _Texts) -> LockState:
    return LockState.from_json(texts.texts[LEASE_URI])


def _left_by(texts: _Texts, run_id: str) -> None:
    """``run_id`` took the lease a minute ago and never freed it."""
    taken = datetime.now(timezone.utc) - timedelta(minutes=1)
    held = LockState(run_id, HELD, taken.isoformat(), int(LEASE.total_seconds()))
    texts.write_text(LEASE_URI, held.to_json())


def _never_sleeps(seconds: float) -> None:
    raise AssertionError(f"waited {seconds} s: the lease should have been taken at once")


def test_a_run_holds_its_batch_s_lease_and_frees_it_even_when_it_fails() -> None:
    texts = _Texts()
    seen: list[tuple[str, str, str]] = []

    def failing_run() -> None:
        with one_run_of_the_batch(_store(texts), _job("jr_1"), lease=LEASE) as run_id:
            seen.append((run_id, _lease(texts).holder, _lease(texts).state))
            raise RuntimeError("the run failed")

    with pytest.raises(RuntimeError, match="the run failed"):
        failing_run()
    assert seen == [("jr_1", "jr_1", HELD)]
    assert (_lease(texts).holder, _lease(texts).state) == ("jr_1", FREE)


def test_a_lease_left_by_a_run_that_ended_is_taken_over_at_once() -> None:
    # The driver was lost holding the lease (the run FAILED or TIMEOUT in Glue): its
    # retry asks Glue, learns it ended, and does not wait for the lease to lapse.
    texts = _Texts()
    _left_by(texts, "jr_1")
    asked: list[str] = []

    def ended(run_id: str) -> bool:
        asked.append(run_id)
        return True

    store, waiter = _store(texts), Waiter(sleep=_never_sleeps)
    with one_run_of_the_batch(store, _job("jr_2"), lease=LEASE, ended=ended, waiter=waiter):
        assert _lease(texts).holder == "jr_2"
    assert asked == ["jr_1"]


def test_a_second_run_of_a_batch_waits_for_the_first_to_end(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Review 6, F1: run 2 of B started while run 1 was going (a StartJobRun retried after
    # its answer was lost). Before, run 2 took B's claims and lock as its own and deleted
    # B's files while run 1 marked its objects landed: landed by mark, not in the table.
    texts = _Texts()
    store = _store(texts)
    first = one_run_of_the_batch(store, _job("jr_1"), lease=LEASE)
    first.__enter__()
    order: list[str] = []

    def first_ends(_seconds: float) -> None:  # run 1 ends while run 2 waits
        if not order:
            order.append("run 1 ended")
            first.__exit__(None, None, None)

    with one_run_of_the_batch(
        store,
        _job("jr_2"),
        lease=LEASE,
        ended=lambda run_id: False,  # Glue says run 1 is still going
        waiter=Waiter(sleep=first_ends),
    ):
        order.append("run 2 started")
    assert order == ["run 1 ended", "run 2 started"]
    logged = [json.loads(line)["message"] for line in capsys.readouterr().out.splitlines()]
    assert logged == [
        "another run of batch B (jr_1) is going: this run waits for it to end, then runs "
        "as its re-run"
    ]


def test_a_run_outside_glue_takes_a_left_lease_at_once() -> None:
    # No --JOB_RUN_ID (a local run): nothing to ask; runs of one process run a batch in turn.
    texts = _Texts()
    _left_by(texts, "local-earlier")
    with one_run_of_the_batch(
        _store(texts), _job(""), lease=LEASE, waiter=Waiter(sleep=_never_sleeps)
    ) as run_id:
        assert run_id.startswith("local-") and _lease(texts).holder == run_id


NOW = datetime(2026, 12, 6, 22, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("answer", "completed_minutes_ago", "ended"),
    [
        ("STARTING", None, False),
        ("RUNNING", None, False),
        ("WAITING", None, False),
        ("STOPPING", None, False),
        ("SUCCEEDED", 1, True),
        ("FAILED", 1, True),
        ("ERROR", 1, True),
        ("EXPIRED", 1, True),
        # Stopped by Glue (its timeout, a stop): the driver may still write while Glue tears
        # it down (review 7, R1), so the run counts as ended 15 minutes after it completed.
        ("TIMEOUT", 5, False),
        ("STOPPED", 5, False),
        ("TIMEOUT", 16, True),
        ("STOPPED", 16, True),
        ("EntityNotFoundException", None, True),
    ],
)
def test_glue_says_whether_a_run_ended(
    monkeypatch: pytest.MonkeyPatch, answer: str, completed_minutes_ago: Optional[int], ended: bool
) -> None:
    import boto3

    client = boto3.client("glue", region_name="us-east-1")
    stubber = Stubber(client)
    expected = {"JobName": "etl", "RunId": "jr_1"}
    if answer == "EntityNotFoundException":
        stubber.add_client_error("get_job_run", answer, expected_params=expected)
    else:
        run: dict[str, Any] = {"JobRunState": answer}
        if completed_minutes_ago is not None:
            run["CompletedOn"] = NOW - timedelta(minutes=completed_minutes_ago)
        stubber.add_response("get_job_run", {"JobRun": run}, expected)
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: client)
    with stubber:
        assert glue_run_ended("etl", clock=lambda: NOW)("jr_1") is ended
    stubber.assert_no_pending_responses()


def test_a_glue_run_names_itself_in_its_batch_s_lease() -> None:
    # Glue passes --JOB_RUN_ID: without it every run would count as outside Glue and take
    # a held lease at once (review 7, R3).
    args = {"output_path": OUTPUT, "JOB_NAME": "etl", "JOB_RUN_ID": "jr_1"}
    job_args = JobArgs.from_args(args, ["s3://in/a.csv"])
    assert (job_args.job_name, job_args.job_run_id) == ("etl", "jr_1")


def test_a_long_wait_for_a_lock_stays_at_the_longest_wait() -> None:
    # Review 6, F2: 2.0 ** 1024 overflowed after about 85 minutes of waiting.
    now = datetime.now(timezone.utc)
    assert 0 <= batch_lock._wait(5_000, None, now) <= batch_lock._LONGEST_WAIT_SECONDS


def test_two_runs_of_one_batch_through_the_job_never_overlap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The job takes the lease before its first write (its report, its claims): run 2's
    # stages start only after run 1's ended, whatever the threads' timing.
    texts = _Texts()
    monkeypatch.setattr(job, "Storage", lambda _spark: texts)
    monkeypatch.setattr(job, "session_settings", lambda _spark: contextlib.nullcontext())
    run_1_going, run_2_waiting = threading.Event(), threading.Event()
    going: list[str] = []
    stages: list[str] = []

    def ended(run_id: str) -> bool:
        run_2_waiting.set()
        return False

    monkeypatch.setattr(batch_run, "glue_run_ended", lambda *_args: ended)

    def stages_of(_spark: Any, args: JobArgs) -> RunReport:
        going.append(args.job_run_id)
        assert going == [args.job_run_id], f"two runs of batch B at once: {going}"
        if args.job_run_id == "jr_1":
            run_1_going.set()
            assert run_2_waiting.wait(timeout=60)  # run 2 found the lease held by run 1
        stages.append(args.job_run_id)
        going.remove(args.job_run_id)
        return RunReport("B", "2026-12-06", "2026-12-06T08:00:00")

    monkeypatch.setattr(job, "_stages", stages_of)
    first = threading.Thread(target=job.run_job, args=(None, _job("jr_1")))
    first.start()
    assert run_1_going.wait(timeout=60)
    job.run_job(cast(Any, None), _job("jr_2"))
    first.join(timeout=60)
    assert stages == ["jr_1", "jr_2"]
    assert (_lease(texts).holder, _lease(texts).state) == ("jr_2", FREE)

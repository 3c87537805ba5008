"""Retracting a reprocessed object's rows keeps every other object's rows still needed.

An earlier batch's files are deleted whole only when every other object in them has landed
in another batch since (which retracted it from them); a claim still under way, whose run
may be refused and give the mark back, keeps them. Fake storage, local marks, no Spark."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, cast

import pytest
from pyspark.sql import SparkSession

from event_driven_etl.runtime.glue.event_driven_etl_job import landed
from event_driven_etl.runtime.glue.event_driven_etl_job.arguments import JobArgs
from event_driven_etl.runtime.glue.event_driven_etl_job.landed import (
    LANDED,
    Mark,
    claim_objects,
    mark_landed,
    mark_uri,
    retract_earlier_rows,
)
from event_driven_etl.runtime.glue.event_driven_etl_job.shared import contract
from event_driven_etl.runtime.glue.event_driven_etl_job.storage import Storage
from tests.claims_fakes import MemoryFiles

X, Y = "s3://in/x.json", "s3://in/y.json"
OUTPUT = "/tmp/claims-retract/out/"
B_FILE = f"{OUTPUT}ingestion_date=2026-12-01/B-00000.snappy.parquet"


_Files = MemoryFiles


def _job(batch_id: str, uris: list[str], *, reprocess: bool = True) -> JobArgs:
    return JobArgs(uris=tuple(uris), output_path=OUTPUT, batch_id=batch_id, reprocess=reprocess)


@pytest.fixture
def files() -> _Files:
    """Batch B landed X and Y in one file; its report lists both."""
    found = _Files()
    for uri in (X, Y):
        mark = Mark(uri, "v1", "B", "2026-12-01", LANDED)
        found.write_text(mark_uri(_job("B", [uri]), uri), mark.to_json())
    report = {"status": "SUCCEEDED", "landed": [{"object": X}, {"object": Y}]}
    found.write_text(f"{OUTPUT}{contract.RUNS_DIR}/B.json", json.dumps(report))
    found.write_text(B_FILE, "rows of x and y")
    return found


@pytest.fixture
def rewrites(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    """The files rewritten without some objects' rows (Spark's part), as (prefix, objects)."""
    done: list[tuple[str, list[str]]] = []

    def rewrite(
        spark: Any, storage: Any, job: JobArgs, prefix: str, uris: list[str], **_: Any
    ) -> None:
        done.append((prefix, list(uris)))

    monkeypatch.setattr(landed, "_rewrite_without", rewrite)
    return done


def _retract(files: _Files, job: JobArgs, replaced: dict[str, Mark]) -> None:
    retract_earlier_rows(cast(SparkSession, None), cast(Storage, files), job, replaced)


def test_rows_of_an_object_another_run_is_reprocessing_are_kept(
    files: _Files, rewrites: list[tuple[str, list[str]]]
) -> None:
    # The review's case: C (a reprocess of Y) takes Y's mark over, A (a reprocess of X)
    # retracts X. Before: A counted only marks naming B, deleted B's file with Y's rows,
    # and C, held back, gave Y's mark back to B: Y "landed by B" with no rows left.
    storage = cast(Storage, files)
    c_job, a_job = _job("C", [Y]), _job("A", [X])
    c_claims = claim_objects(storage, c_job, "2026-12-06")
    a_claims = claim_objects(storage, a_job, "2026-12-06")
    _retract(files, a_job, dict(a_claims.earlier))
    assert B_FILE in files.texts
    assert rewrites == [(f"{OUTPUT}ingestion_date=2026-12-01/B-", [X])]
    mark_landed(storage, c_job, c_claims, [], "2026-12-06")  # C held back: Y goes back to B
    y_mark = Mark.from_json(files.texts[mark_uri(c_job, Y)])
    assert y_mark.batch_id == "B" and y_mark.state == LANDED


def test_a_file_whose_other_objects_landed_elsewhere_is_deleted(
    files: _Files, rewrites: list[tuple[str, list[str]]]
) -> None:
    storage = cast(Storage, files)
    c_job, a_job = _job("C", [Y]), _job("A", [X])
    c_claims = claim_objects(storage, c_job, "2026-12-06")
    mark_landed(storage, c_job, c_claims, [Y], "2026-12-06")  # C landed Y (and retracted it)
    a_claims = claim_objects(storage, a_job, "2026-12-06")
    _retract(files, a_job, dict(a_claims.earlier))
    assert B_FILE not in files.texts and rewrites == []


def test_a_batch_that_stopped_before_its_report_keeps_its_files(
    files: _Files, rewrites: list[tuple[str, list[str]]]
) -> None:
    # B marked its objects, then stopped before concluding its report: its list of landed
    # objects is not there (a re-run wrote STARTED), so it cannot tell what else is in them.
    files.write_text(f"{OUTPUT}{contract.RUNS_DIR}/B.json", json.dumps({"status": "STARTED"}))
    a_job = _job("A", [X])
    _retract(files, a_job, dict(claim_objects(cast(Storage, files), a_job, "2026-12-06").earlier))
    assert B_FILE in files.texts and [uris for _, uris in rewrites] == [[X]]


def test_a_lapsed_claims_batch_and_the_mark_it_replaced_are_both_retracted(
    files: _Files, rewrites: list[tuple[str, list[str]]]
) -> None:
    # S took B's mark of X over (a reprocess), published, and crashed before marking: past
    # S's lease, R takes X over and removes X's rows from S's files and from B's.
    start = datetime(2026, 12, 6, 8, 0, tzinfo=timezone.utc)
    storage = cast(Storage, files)
    claim_objects(storage, _job("S", [X]), "2026-12-06", now=start)
    s_file = f"{OUTPUT}ingestion_date=2026-12-06/S-00000.snappy.parquet"
    files.write_text(s_file, "rows of x")
    files.write_text(f"{OUTPUT}{contract.RUNS_DIR}/S.json", json.dumps({"status": "STARTED"}))
    r_job = _job("R", [X])
    later = start + landed.claim_lease(r_job) + timedelta(minutes=1)
    r_claims = claim_objects(storage, r_job, "2026-12-06", now=later)
    _retract(files, r_job, dict(r_claims.earlier))
    assert sorted(rewrites) == [
        (f"{OUTPUT}ingestion_date=2026-12-01/B-", [X]),
        (f"{OUTPUT}ingestion_date=2026-12-06/S-", [X]),
    ]


def test_a_batch_taking_a_lapsed_claim_over_keeps_its_own_new_rows(
    files: _Files, rewrites: list[tuple[str, list[str]]]
) -> None:
    # T reprocessed X (taking B's landed mark over) and stopped. Past T's lease, a re-run
    # of B takes T's claim over: the chain names B itself, whose files B has just published
    # again with X's rows. Before: B rewrote its own new files without X, and X was lost.
    start = datetime(2026, 12, 6, 8, 0, tzinfo=timezone.utc)
    storage = cast(Storage, files)
    claim_objects(storage, _job("T", [X]), "2026-12-06", now=start)
    b_job = _job("B", [X, Y])
    later = start + landed.claim_lease(b_job) + timedelta(minutes=1)
    b_claims = claim_objects(storage, b_job, "2026-12-01", now=later)
    assert b_claims.earlier[X].batch_id == "T"
    _retract(files, b_job, dict(b_claims.earlier))
    assert rewrites == [(f"{OUTPUT}ingestion_date=2026-12-06/T-", [X])]

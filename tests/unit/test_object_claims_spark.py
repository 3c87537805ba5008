"""Two whole runs of different batches holding the same object, both past their mark check
before either reads or publishes (issue #22): the object lands once.

The offline harness runs one Glue script at a time (``sys.argv`` is process-wide), so the
two runs are interleaved here, on the job's ``run`` in two threads, held together after
their claims. Before claims, both found no mark, both landed it: its row was there twice."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable

import pytest

from event_driven_etl.runtime.glue.event_driven_etl_job import job
from event_driven_etl.runtime.glue.event_driven_etl_job.arguments import CatalogTable, JobArgs
from event_driven_etl.runtime.glue.event_driven_etl_job.errors import JobInputError
from event_driven_etl.runtime.glue.event_driven_etl_job.job import run, run_job
from event_driven_etl.runtime.glue.event_driven_etl_job.landed import (
    ObjectHeldError,
    retract_earlier_rows,
)
from event_driven_etl.runtime.glue.event_driven_etl_job.probe import probe_objects
from event_driven_etl.runtime.glue.event_driven_etl_job.report import RunReport
from event_driven_etl.runtime.glue.event_driven_etl_job.session import session_settings
from event_driven_etl.testing._output import read_table_rows

pytestmark = pytest.mark.spark


def test_two_runs_holding_one_object_land_it_once(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "in" / "a.csv"
    source.parent.mkdir()
    source.write_text("id,n\n1,x\n")
    uri, out = f"file://{source}", (tmp_path / "out").as_uri() + "/"
    both_checked = threading.Barrier(2)

    def probe_once_both_checked(*args: Any) -> Any:
        both_checked.wait(timeout=120)  # both runs are past their marks: neither published
        return probe_objects(*args)

    monkeypatch.setattr(job, "probe_objects", probe_once_both_checked)
    reports: dict[str, RunReport] = {}

    def land(batch_id: str) -> None:
        reports[batch_id] = run(spark, [uri], out, batch_id=batch_id)

    threads = [threading.Thread(target=land, args=(b,)) for b in ("live", "backfill")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [row["id"] for row in read_table_rows(tmp_path / "out")] == [1]
    (winner,) = [b for b, r in reports.items() if r.by_status("landed")]
    (loser,) = set(reports) - {winner}
    (skipped,) = reports[loser].by_status("skipped")
    assert skipped.object == uri and f"claimed by batch {winner}" in str(skipped.reason)


def test_two_reprocesses_retracting_from_one_batch_at_once_leave_each_row_once(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batch B landed a, b and c; A reprocesses a and C reprocesses b, both reaching their
    # retraction from B's file at once. The batch's lock makes one wait for the other and
    # read B's files as the other left them: neither puts the other's rows back.
    folder = tmp_path / "in"
    folder.mkdir()
    uris = []
    for name in ("a", "b", "c"):
        (folder / f"{name}.csv").write_text(f"id,n\n1,{name}\n")
        uris.append(f"file://{folder / name}.csv")
    out = (tmp_path / "out").as_uri() + "/"
    run(spark, uris, out, batch_id="B")
    both_published = threading.Barrier(2)

    def retract_once_both_published(*args: Any, **kwargs: Any) -> None:
        both_published.wait(timeout=300)
        retract_earlier_rows(*args, **kwargs)

    monkeypatch.setattr(job, "retract_earlier_rows", retract_once_both_published)

    failures: list[BaseException] = []

    def reprocess(batch_id: str, uri: str) -> None:
        try:
            run_job(spark, JobArgs(uris=(uri,), output_path=out, batch_id=batch_id, reprocess=True))
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)
            both_published.abort()

    threads = [
        threading.Thread(target=reprocess, args=args) for args in (("A", uris[0]), ("C", uris[1]))
    ]
    # One session for both runs (in Glue, each has its own): the first run to end would
    # put the session's own settings back while the other still writes.
    with session_settings(spark):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not failures
    rows = sorted(row["n"] for row in read_table_rows(tmp_path / "out"))
    assert rows == ["a", "b", "c"]


def test_a_rerun_held_by_a_quality_rule_leaves_no_rows_of_its_batch(
    spark: Any, tmp_path: Path
) -> None:
    # Review 5, R1: B landed a; B's re-run was held back by a dataset rule, published
    # nothing, released a and reported nothing landed, while B's file still held a's rows.
    # Now the held run deletes its batch's files: the table matches its marks and report,
    # and the next batch holding a lands it once.
    source = tmp_path / "in" / "a.csv"
    source.parent.mkdir()
    source.write_text("id,n\n1,x\n")
    uri, out = f"file://{source}", (tmp_path / "out").as_uri() + "/"
    run(spark, [uri], out, batch_id="B")
    rules = json.dumps({"*": "Rules = [ RowCount > 5 ]"})
    with pytest.raises(JobInputError, match="RowCount > 5"):
        run(spark, [uri], out, batch_id="B", quality_rules=rules)
    assert read_table_rows(tmp_path / "out") == []
    assert run(spark, [uri], out, batch_id="D").by_status("landed")
    assert [row["id"] for row in read_table_rows(tmp_path / "out")] == [1]


@pytest.mark.parametrize("table_format", ["parquet", "iceberg"])
def test_a_run_waiting_for_another_batch_withdraws_its_rows_its_table_format_s_way(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table_format: str
) -> None:
    # The job hands claim_objects the way its table removes what an earlier attempt of the
    # batch published: an Iceberg table's is a delete commit of the batch's rows (at the
    # batch's timestamp), not a deletion of Parquet files it does not have.
    withdrawn: list[tuple[str, str]] = []
    monkeypatch.setattr(
        job, "withdraw_iceberg_rows", lambda _s, j, at: withdrawn.append(("iceberg", at))
    )
    monkeypatch.setattr(
        job, "withdraw_batch_files", lambda _s, j, date: withdrawn.append(("parquet", date))
    )

    def claim_then_wait(*_args: Any, withdraw: Callable[[], None], **_kwargs: Any) -> Any:
        withdraw()  # as claim_objects does before failing with ObjectHeldError
        raise ObjectHeldError("s3://in/a.csv: claimed by batch L at another version")

    monkeypatch.setattr(job, "claim_objects", claim_then_wait)
    out = (tmp_path / "out").as_uri() + "/"
    args = JobArgs(
        uris=("s3://in/a.csv",),
        output_path=out,
        batch_id="B",
        catalog=CatalogTable("db", "orders"),
        table_format=table_format,
    )
    with pytest.raises(ObjectHeldError):
        run_job(spark, args)
    report = json.loads((tmp_path / "out" / "_runs" / "B.json").read_text())
    moment = report["ingested_at"] if table_format == "iceberg" else report["ingestion_date"]
    assert withdrawn == [(table_format, moment)]

"""Two whole runs of different batches holding the same object, both past their mark check
before either reads or publishes (issue #22): the object lands once.

The offline harness runs one Glue script at a time (``sys.argv`` is process-wide), so the
two runs are interleaved here, on the job's ``run`` in two threads, held together after
their claims. Before claims, both found no mark, both landed it: its row was there twice."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from event_driven_etl.runtime.glue.event_driven_etl_job import job
from event_driven_etl.runtime.glue.event_driven_etl_job.job import run
from event_driven_etl.runtime.glue.event_driven_etl_job.probe import probe_objects
from event_driven_etl.runtime.glue.event_driven_etl_job.report import RunReport
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

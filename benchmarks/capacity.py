"""Capacity planning offline: what a burst does and costs before deploy.

    .venv/bin/python benchmarks/capacity.py                      # the README table
    .venv/bin/python benchmarks/capacity.py --sizes 100 --run-time 90

Runs bursts of small objects, all uploaded at the same moment, through the offline
pipeline on its virtual clock with ``run_glue_script=False`` (runs keep their timing and
concurrency, no Spark): per object with job-run queuing (the default) and without it, and
batching 100 and 1,000 objects per run. For each: executions, FAILED and TIMED_OUT
executions, the virtual time until the last execution ended (time to drain), the Glue cost
of the runs that ran (``event_driven_etl.cost``, us-east-1 list prices, 2 x G.1X) and the
real seconds the emulation took (synthesis included). Real time grows linearly with the
executions: about 0.1 s each on a 2-core machine. Each Glue run holds its slot for
``--run-time`` virtual seconds.

The figures are the template's arithmetic, not a measurement of AWS: Glue's own start-up
latency, account-level quotas and Lambda's scaling are not modelled.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, Duration, Stack

from event_driven_etl import Batching, EventDrivenEtlPipeline
from event_driven_etl.cost import estimate_glue_cost
from event_driven_etl.testing import LocalPipeline

CSV = b"id,amount\n1,2.5\n"
MODES: dict[str, dict[str, Any]] = {
    "per object, queuing (default)": {},
    "per object, no queuing": {"job_run_queuing": False},
    "batching 100": {"batching": Batching(max_batch_size=100)},
    "batching 1,000": {"batching": Batching(max_batch_size=1000)},
}


@dataclass
class Outcome:
    mode: str
    objects: int
    executions: int
    failed: int
    timed_out: int
    drained_hours: float
    glue_dollars: float
    real_seconds: float


def run(mode: str, objects: int, run_time: float) -> Outcome:
    props = MODES[mode]
    with tempfile.TemporaryDirectory() as folder:
        app = App(outdir=str(Path(folder) / "cdk.out"))
        stack = Stack(app, "Capacity")
        EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="incoming/", **props)
        started = time.monotonic()
        # The trigger's JSON log lines (one per execution) would bury the table.
        with (
            contextlib.redirect_stdout(io.StringIO()),
            LocalPipeline.from_stack(
                stack,
                "Pipeline",
                glue_run_time=Duration.seconds(run_time),
                run_glue_script=False,
            ) as local,
        ):
            local.deliver_immediately = False  # the whole burst arrives at one moment
            for i in range(objects):
                local.put_object(f"incoming/burst-{i:05}.csv", CSV)
            local.flush()
            runs = local.wait_for_runs(timeout=6 * 3600)
            drained = local.elapsed
            glue_runs = len(local.glue_runs)
        per_run = props["batching"].max_batch_size if "batching" in props else 1
        # Only the Glue runs that ran are billed: an execution that FAILED on Glue's
        # concurrency limit never started one.
        cost = estimate_glue_cost(
            objects_per_day=min(objects, glue_runs * per_run),
            object_size_mb=len(CSV) / 1e6,
            objects_per_run=per_run,
        )
        return Outcome(
            mode=mode,
            objects=objects,
            executions=len(runs),
            failed=sum(r.status == "FAILED" for r in runs),
            timed_out=sum(r.status == "TIMED_OUT" for r in runs),
            drained_hours=drained / 3600,
            glue_dollars=cost.dollars_per_day,
            real_seconds=time.monotonic() - started,
        )


def _duration(hours: float) -> str:
    return f"{hours * 60:.0f} min" if hours < 2 else f"{hours:.1f} h"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--run-time", type=float, default=90.0, help="virtual s per run")
    options = parser.parse_args(argv)
    print(f"Glue run time {options.run_time:g} s (virtual), MaxConcurrentRuns 10\n")
    print(
        "| burst | mode | executions | FAILED | TIMED_OUT | time to drain | Glue cost "
        "| real s |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    for objects in options.sizes:
        for mode in options.modes:
            o = run(mode, objects, options.run_time)
            print(
                f"| {o.objects:,} | {o.mode} | {o.executions:,} | {o.failed:,} "
                f"| {o.timed_out:,} | {_duration(o.drained_hours)} | ${o.glue_dollars:,.2f} "
                f"| {o.real_seconds:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:])

"""The cost of data quality rules: the built-in script on N small CSVs with 10 DQDL rules
against the same run without rules, in one Spark session.

    .venv/bin/python benchmarks/quality_rules.py [--count 1000] [--repetitions 3]

The files are benchmarks/glue_script.py's small files (20 rows each). After a warm-up of
each, the two alternate; it prints the medians, their ratio, the median of each round's
paired ratio (the two runs of a round see the same load), and the 1-minute load average
before and after (the machine may be shared). Target: <= 1.15 at N = 1,000.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from glue_script import small_files  # noqa: E402

from event_driven_etl.runtime.glue.event_driven_etl_job.job import run  # noqa: E402
from event_driven_etl.runtime.glue.event_driven_etl_job.session import configure  # noqa: E402
from event_driven_etl.testing._spark import spark_session  # noqa: E402

RULES = """Rules = [
    RowCount > 0,
    IsComplete "order_id",
    IsUnique "order_id",
    ColumnValues "amount" between 0 and 1000,
    ColumnValues "customer" matches "customer [0-9]+",
    ColumnLength "customer" between 1 and 40,
    Completeness "amount" > 0.99,
    Mean "amount" between 1 and 500,
    StandardDeviation "amount" < 1000,
    ColumnExists "ordered_at"
]"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args()
    spark = spark_session()
    configure(spark)
    work = Path(tempfile.mkdtemp(prefix="quality-bench-"))
    try:
        uris = small_files(work / "in", args.count)
        cases = {"without rules": "", "10 rules": json.dumps({"*": RULES})}
        times: dict[str, list[float]] = {name: [] for name in cases}
        load_before = os.getloadavg()[0]
        for repetition in range(args.repetitions + 1):  # the first round warms up
            for name, rules in cases.items():
                output = work / f"out-{repetition}-{name.replace(' ', '_')}"
                started = time.perf_counter()
                report = run(
                    spark,
                    uris,
                    f"file://{output}/",
                    batch_id=f"bench-{repetition}",
                    quality_rules=rules,
                )
                elapsed = time.perf_counter() - started
                assert report.rows == 20 * args.count, report.rows
                if repetition:
                    times[name].append(elapsed)
                print(f"round {repetition} {name:<14} {elapsed:7.2f} s", flush=True)
                shutil.rmtree(output, ignore_errors=True)
        medians = {name: statistics.median(values) for name, values in times.items()}
        ratio = medians["10 rules"] / medians["without rules"]
        # Each round's two runs are neighbours in time: their ratio sees the same load.
        paired = statistics.median(
            with_rules / without
            for with_rules, without in zip(times["10 rules"], times["without rules"])
        )
        load = f"{load_before:.1f}-{os.getloadavg()[0]:.1f}"
        print(
            f"N = {args.count}: without rules {medians['without rules']:.2f} s, "
            f"10 rules {medians['10 rules']:.2f} s, ratio of medians {ratio:.3f}, "
            f"median of paired ratios {paired:.3f} (load {load})"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

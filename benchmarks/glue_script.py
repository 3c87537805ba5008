"""The built-in Glue script against two floors, in one Spark session.

    .venv/bin/python benchmarks/glue_script.py [--repetitions 3] [--skip-large]
        [--cases 10,100,1000,wide,large]

The typed floor is what any typed job must do: one ``spark.read`` of all paths with type
inference (which reads CSV twice), the same metadata columns (``_source_object``,
``_ingested_at``, ``ingestion_date``) and one partitioned write. The read-once floor is the
physical limit of one pass: one read with every column as a string, the same metadata and
write. The built-in script also checks every object's content, counts rows per object, types
columns CSV and JSON agree on, keeps one table schema, reports each object's outcome and
replaces a re-run's earlier files. Cases: N = 10, 100, 1,000 small CSVs (20 rows each), one
CSV of 200 columns (2,000 rows of numbers, words, dates, booleans and NA), then 10 CSVs of
50 MB. After a warm-up, the three alternate; the table shows medians, both ratios, and the
JVM heap's peak during each case, and the 1-minute load average before and after it (the
machine may be shared: a ratio is only as good as the load it was measured under). The CPU
columns are the CPU seconds of the driver and the JVM per job: the steadier measure of the work
when the machine is loaded.
Targets against the typed floor: <= 1.2 at N >= 100, <= 1.5 for 200 columns, <= 1.3 for
10 x 50 MB; time growing linearly in N.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from event_driven_etl.runtime.glue.event_driven_etl_job.job import run  # noqa: E402
from event_driven_etl.runtime.glue.event_driven_etl_job.probe import probe_objects  # noqa: E402
from event_driven_etl.runtime.glue.event_driven_etl_job.read import read_group  # noqa: E402
from event_driven_etl.runtime.glue.event_driven_etl_job.session import configure, session_settings  # noqa: E402
from event_driven_etl.testing._spark import spark_session  # noqa: E402

HEADER = "order_id,customer,amount,paid,ordered_at\n"


def row(rng: random.Random, i: int) -> str:
    return (
        f"{i},customer {rng.randint(1, 5000)},{rng.uniform(1, 500):.2f},"
        f"{rng.choice(['true', 'false'])},2026-11-{rng.randint(1, 28):02d}T10:00:00Z\n"
    )


def small_files(folder: Path, count: int) -> list[str]:
    rng = random.Random(count)
    folder.mkdir(parents=True)
    uris = []
    for n in range(count):
        path = folder / f"part-{n:05d}.csv"
        path.write_text(HEADER + "".join(row(rng, n * 20 + i) for i in range(20)))
        uris.append(f"file://{path}")
    return uris


def large_files(folder: Path, count: int, size: int) -> list[str]:
    rng = random.Random(size)
    folder.mkdir(parents=True)
    block = "".join(row(rng, i) for i in range(10_000))
    uris = []
    for n in range(count):
        path = folder / f"big-{n:02d}.csv"
        with path.open("w") as handle:
            handle.write(HEADER)
            while handle.tell() < size:
                handle.write(block)
        uris.append(f"file://{path}")
    return uris


def wide_file(folder: Path, columns: int = 200, rows: int = 2000) -> list[str]:
    """One CSV of ``columns`` columns: a fifth each integers, decimals, words, dates and
    booleans, with NA here and there (what a wide export looks like)."""
    rng = random.Random(columns)
    folder.mkdir(parents=True)
    kinds = [c % 5 for c in range(columns)]
    words = ["alpha", "beta", "gamma", "delta", "NA"]

    def value(kind: int) -> str:
        if rng.random() < 0.02:
            return "NA"
        if kind == 0:
            return str(rng.randint(0, 10_000))
        if kind == 1:
            return f"{rng.uniform(0, 1000):.3f}"
        if kind == 2:
            return rng.choice(words)
        if kind == 3:
            return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        return rng.choice(["true", "false"])

    path = folder / "wide.csv"
    with path.open("w") as handle:
        handle.write(",".join(f"Column {c}" for c in range(columns)) + "\n")
        for _ in range(rows):
            handle.write(",".join(value(k) for k in kinds) + "\n")
    return [f"file://{path}"]


def _metadata_write(frame: Any, output: str) -> None:
    from pyspark.sql import functions as F  # noqa: N812

    (
        frame.withColumn("_source_object", F.input_file_name())
        .withColumn("_ingested_at", F.current_timestamp())
        .withColumn("ingestion_date", F.lit("2026-11-25"))
        .write.mode("append")
        .partitionBy("ingestion_date")
        .parquet(output)
    )


def floor(spark: Any, uris: list[str], output: str) -> None:
    """The typed floor: inferSchema (a pass to infer, a pass to read) and the write."""
    _metadata_write(spark.read.option("header", True).option("inferSchema", True).csv(uris), output)


def read_once(spark: Any, uris: list[str], output: str) -> None:
    """The read-once floor: one pass, every column a string (the header read for names)."""
    from pyspark.sql import types as T  # noqa: N812

    with Path(uris[0].removeprefix("file://")).open() as handle:
        header = handle.readline().rstrip("\n").split(",")
    schema = T.StructType([T.StructField(f"c{i}", T.StringType()) for i in range(len(header))])
    _metadata_write(spark.read.option("header", True).schema(schema).csv(uris), output)


def built_in(spark: Any, uris: list[str], output: str) -> None:
    run(spark, uris, output, batch_id=f"bench-{time.monotonic_ns()}")


def heap_peak_reset(spark: Any) -> None:
    for (
        pool
    ) in spark.sparkContext._jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans():
        pool.resetPeakUsage()


def heap_peak_mb(spark: Any) -> float:
    pools = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans()
    heap = [p for p in pools if str(p.getType().toString()) == "Heap memory"]
    return sum(int(p.getPeakUsage().getUsed()) for p in heap) / 2**20


JOBS: dict[str, Callable[[Any, list[str], str], None]] = {
    "built-in": built_in,
    "typed floor": floor,
    "read-once floor": read_once,
}


CASES = ("10", "100", "1000", "wide", "large")
"""The benchmark's cases, as ``--cases`` names them."""

LABELS = ["built-in s", "typed floor s", "read-once floor s", "vs typed", "vs read-once"]
CPU_LABELS = ["built-in CPU s", "typed CPU s", "CPU vs typed"]


def cpu_seconds(spark: Any) -> float:
    """CPU time used so far by the driver's Python process and Spark's JVM (local mode: the
    executors are threads of the JVM). Unlike wall time, it barely moves with the load of
    other work on the machine, so its ratio is the steadier measure of the work done."""
    jvm_pid = int(spark.sparkContext._jvm.ProcessHandle.current().pid())

    def used(pid: int) -> float:
        # /proc/<pid>/stat: utime and stime are fields 14 and 15, after the ")" of the name.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    return used(jvm_pid) + used(os.getpid())


def measure(spark: Any, work: Path, name: str, uris: list[str], repetitions: int) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {label: [] for label in JOBS}
    cpu: dict[str, list[float]] = {label: [] for label in JOBS}
    peaks: dict[str, float] = dict.fromkeys(JOBS, 0.0)
    for repetition in range(repetitions):
        for label, job in JOBS.items():
            output = work / f"out-{name}-{label}-{repetition}".replace(" ", "_")
            heap_peak_reset(spark)
            started, cpu_started = time.perf_counter(), cpu_seconds(spark)
            job(spark, uris, f"file://{output}/")
            times[label].append(time.perf_counter() - started)
            cpu[label].append(cpu_seconds(spark) - cpu_started)
            peaks[label] = max(peaks[label], heap_peak_mb(spark))
            shutil.rmtree(output, ignore_errors=True)
    medians = {label: statistics.median(values) for label, values in times.items()}
    result = {
        "case": name,
        **{f"{label} s": value for label, value in medians.items()},
        "vs typed": medians["built-in"] / medians["typed floor"],
        "vs read-once": medians["built-in"] / medians["read-once floor"],
        "built-in CPU s": statistics.median(cpu["built-in"]),
        "typed CPU s": statistics.median(cpu["typed floor"]),
        "CPU vs typed": statistics.median(cpu["built-in"]) / statistics.median(cpu["typed floor"]),
        "heap MB": f"{peaks['built-in']:.0f} / {peaks['typed floor']:.0f}",
        "load": f"{load_before:.1f}-{os.getloadavg()[0]:.1f}",
    }
    cells = " ".join(f"{result[label]:>17.2f}" for label in LABELS + CPU_LABELS)
    # A row as it is measured.
    print(f"{name:<12} {cells} {result['heap MB']:>12} {result['load']:>10}", flush=True)
    return result


def read_tasks(spark: Any, uris: list[str], cores: int = 0) -> int:
    """How many tasks the built-in script's read of ``uris`` runs (its input partitions),
    where Spark sees ``cores`` cores (0: this machine's): Spark splits files finer when
    there are more cores to share them (``spark.sql.leafNodeDefaultParallelism``)."""
    key = "spark.sql.leafNodeDefaultParallelism"
    with session_settings(spark):
        if cores:
            spark.conf.set(key, str(cores))
        group = read_group(spark, probe_objects(spark, uris))
        try:
            return int(group.frame.rdd.getNumPartitions())
        finally:
            group.frame.unpersist()
            spark.conf.unset(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--skip-large", action="store_true", help="leave out 10 x 50 MB")
    parser.add_argument(
        "--cases",
        default=",".join(CASES),
        help="which cases to run, comma-separated (default: all): "
        "10, 100, 1000 (N small files), wide (200 columns), large (10 x 50 MB)",
    )
    options = parser.parse_args()
    cases = set(options.cases.split(","))
    if options.skip_large:
        cases.discard("large")
    if not cases <= set(CASES):
        parser.error(f"--cases: unknown {sorted(cases - set(CASES))}; known: {', '.join(CASES)}")
    spark = spark_session()
    configure(spark)
    work = Path(tempfile.mkdtemp(prefix="glue-bench-"))
    notes = []
    heading = " ".join(f"{label:>17}" for label in LABELS + CPU_LABELS)
    print(f"{'case':<12} {heading} {'heap MB':>12} {'load':>10}")
    try:
        warm = small_files(work / "warm", 10)
        for label, job in JOBS.items():
            job(spark, warm, f"file://{work}/warm-{label.replace(' ', '_')}/")
        results = [
            measure(spark, work, f"N={n}", small_files(work / f"n{n}", n), options.repetitions)
            for n in (10, 100, 1000)
            if str(n) in cases
        ]
        if "wide" in cases:
            results.append(
                measure(spark, work, "200 columns", wide_file(work / "wide"), options.repetitions)
            )
        if "large" in cases:
            uris = large_files(work / "large", 10, 50 * 2**20)
            notes.append(
                f"10 x 50 MB: the built-in read runs {read_tasks(spark, uris)} tasks here, "
                f"{read_tasks(spark, uris, cores=16)} where Spark sees 16 cores "
                "(a Glue job of 5 G.1X workers)"
            )
            results.append(measure(spark, work, "10 x 50 MB", uris, 1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    by_case = {r["case"]: r["built-in s"] for r in results}
    if {"N=100", "N=1000"} <= set(by_case):
        print(
            "growth N=100 -> N=1000 (10x objects): "
            f"{by_case['N=1000'] / by_case['N=100']:.1f}x time (linear: 10x or less)"
        )
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()

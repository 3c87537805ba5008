"""The built-in Glue script against a floor, in one Spark session.

    .venv/bin/python benchmarks/glue_script.py [--repetitions 3] [--skip-large]

The floor is what any job must do: one ``spark.read`` of all paths with type inference,
the same metadata columns (``_source_object``, ``_ingested_at``, ``ingestion_date``) and
one partitioned write. The built-in script also checks every object's content, counts
rows per object, types columns CSV and JSON agree on, keeps one table schema, reports each
object's outcome and replaces a re-run's earlier files. Cases: N = 10, 100, 1,000 small
CSVs (20 rows each), then 10 CSVs of 50 MB. After a warm-up, the two alternate; the table
shows medians, the ratio, and the JVM heap's peak during each case.
Target: ratio <= 1.5 at N >= 100, time growing linearly in N.
"""

from __future__ import annotations

import argparse
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

from event_driven_etl.runtime.glue import etl_job  # noqa: E402
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


def floor(spark: Any, uris: list[str], output: str) -> None:
    from pyspark.sql import functions as F  # noqa: N812

    frame = spark.read.option("header", True).option("inferSchema", True).csv(uris)
    (
        frame.withColumn("_source_object", F.input_file_name())
        .withColumn("_ingested_at", F.current_timestamp())
        .withColumn("ingestion_date", F.lit("2026-11-25"))
        .write.mode("append")
        .partitionBy("ingestion_date")
        .parquet(output)
    )


def built_in(spark: Any, uris: list[str], output: str) -> None:
    etl_job.run(spark, uris, output, batch_id=f"bench-{time.monotonic_ns()}")


def heap_peak_reset(spark: Any) -> None:
    for (
        pool
    ) in spark.sparkContext._jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans():
        pool.resetPeakUsage()


def heap_peak_mb(spark: Any) -> float:
    pools = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans()
    heap = [p for p in pools if str(p.getType().toString()) == "Heap memory"]
    return sum(int(p.getPeakUsage().getUsed()) for p in heap) / 2**20


def measure(spark: Any, work: Path, name: str, uris: list[str], repetitions: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {"built-in": [], "floor": []}
    peaks: dict[str, float] = {"built-in": 0.0, "floor": 0.0}
    jobs: dict[str, Callable[[Any, list[str], str], None]] = {
        "built-in": built_in,
        "floor": floor,
    }
    for repetition in range(repetitions):
        for label, job in jobs.items():
            output = work / f"out-{name}-{label}-{repetition}"
            heap_peak_reset(spark)
            started = time.perf_counter()
            job(spark, uris, f"file://{output}/")
            times[label].append(time.perf_counter() - started)
            peaks[label] = max(peaks[label], heap_peak_mb(spark))
            shutil.rmtree(output, ignore_errors=True)
    built, base = statistics.median(times["built-in"]), statistics.median(times["floor"])
    return {
        "case": name,
        "built_in_s": built,
        "floor_s": base,
        "ratio": built / base,
        "built_in_heap_mb": peaks["built-in"],
        "floor_heap_mb": peaks["floor"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--skip-large", action="store_true", help="leave out 10 x 50 MB")
    options = parser.parse_args()
    spark = spark_session()
    etl_job.configure(spark)
    work = Path(tempfile.mkdtemp(prefix="glue-bench-"))
    try:
        warm = small_files(work / "warm", 10)
        built_in(spark, warm, f"file://{work}/warm-out/")
        floor(spark, warm, f"file://{work}/warm-floor/")
        results = [
            measure(spark, work, f"N={n}", small_files(work / f"n{n}", n), options.repetitions)
            for n in (10, 100, 1000)
        ]
        if not options.skip_large:
            uris = large_files(work / "large", 10, 50 * 2**20)
            results.append(measure(spark, work, "10 x 50 MB", uris, 1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'case':<12} {'built-in s':>10} {'floor s':>8} {'ratio':>6} {'heap MB':>14}")
    for r in results:
        heap = f"{r['built_in_heap_mb']:.0f} / {r['floor_heap_mb']:.0f}"
        print(
            f"{r['case']:<12} {r['built_in_s']:>10.2f} {r['floor_s']:>8.2f} "
            f"{r['ratio']:>6.2f} {heap:>14}"
        )
    by_case = {r["case"]: r["built_in_s"] for r in results}
    print(
        "growth N=100 -> N=1000 (10x objects): "
        f"{by_case['N=1000'] / by_case['N=100']:.1f}x time (linear: 10x or less)"
    )


if __name__ == "__main__":
    main()

"""The built-in job writing Iceberg against writing Parquet, in one Spark session.

    .venv/bin/python benchmarks/iceberg.py [--repetitions 1] [--skip-large]

Each case runs the built-in job twice on the same CSVs (the generators of
``benchmarks/glue_script.py``): once with the Parquet table (``s3://bench/parquet/``), once
with the Iceberg table (``s3://bench/iceberg/``, ``--table_format iceberg``) kept by Iceberg's
``GlueCatalog`` and ``S3FileIO`` as offline: against moto's Glue and S3 through a moto server
in this process. So the Iceberg figure includes moto's HTTP and in-memory S3, where the
Parquet path writes the local mirror directly: an upper bound of Iceberg's cost, not AWS's.
Both go through the same stages; Iceberg adds the read of the staged files and one commit.
Cases: N = 100 and 1,000 small CSVs (20 rows each), then 10 CSVs of 50 MB; target: Iceberg /
Parquet <= 1.3. Needs the jars of ``scripts/setup`` and the testing extra (``moto[server]``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks")]

from glue_script import large_files, small_files  # noqa: E402

from event_driven_etl._iceberg_conf import iceberg_spark_conf  # noqa: E402
from event_driven_etl.runtime.glue.event_driven_etl_job.arguments import (  # noqa: E402
    CatalogTable,
    JobArgs,
)
from event_driven_etl.runtime.glue.event_driven_etl_job.job import run_job  # noqa: E402
from event_driven_etl.testing import _iceberg, _spark  # noqa: E402

BUCKET = "bench"


def job(uris: list[str], table_format: str, case: str) -> JobArgs:
    table = f"{case}_{table_format}_{time.monotonic_ns()}"
    return JobArgs(
        uris=tuple(uris),
        output_path=f"s3://{BUCKET}/{table_format}/{table}/",
        batch_id=f"bench-{time.monotonic_ns()}",
        catalog=CatalogTable(BUCKET, table, "us-east-1"),
        table_format=table_format,
    )


def measure(spark: Any, case: str, uris: list[str], repetitions: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"parquet": [], "iceberg": []}
    load_before = os.getloadavg()[0]
    for _ in range(repetitions):
        for table_format, taken in times.items():
            started = time.perf_counter()
            run_job(spark, job(uris, table_format, re.sub(r"\W+", "_", case).lower()))
            taken.append(time.perf_counter() - started)
    parquet, iceberg = (statistics.median(times[f]) for f in ("parquet", "iceberg"))
    print(
        f"{case:<12} {parquet:>10.2f} {iceberg:>10.2f} {iceberg / parquet:>8.2f}"
        f" {load_before:>5.1f}-{os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return {"parquet": parquet, "iceberg": iceberg}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--skip-large", action="store_true", help="leave out 10 x 50 MB")
    parser.add_argument("--sizes", default="100,1000", help="the N of the small-file cases")
    options = parser.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    import boto3
    from moto import mock_aws

    work = Path(tempfile.mkdtemp(prefix="iceberg-bench-"))
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        boto3.client("glue").create_database(DatabaseInput={"Name": BUCKET})
        spark = _spark.spark_session()
        _spark.mount_bucket(spark, BUCKET, (work / "mirror").resolve().as_uri())
        _iceberg.configure_catalog(spark, iceberg_spark_conf(f"s3://{BUCKET}/iceberg/"))
        print(f"{'case':<12} {'parquet s':>10} {'iceberg s':>10} {'ratio':>8} {'load':>9}")
        try:
            measure(spark, "warm-up", small_files(work / "warm", 10), 1)
            for n in (int(size) for size in options.sizes.split(",")):
                measure(spark, f"N={n}", small_files(work / f"n{n}", n), options.repetitions)
            if not options.skip_large:
                uris = large_files(work / "large", 10, 50 * 2**20)
                measure(spark, "10 x 50 MB", uris, 1)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

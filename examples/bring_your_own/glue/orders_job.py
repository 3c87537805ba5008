"""A custom Glue script: keep only orders with a positive total, write Parquet.

Receives the same arguments as the built-in script: --objects (JSON list of s3:// URIs),
--manifest (s3:// URI of a JSON-lines list, or empty) and --output_path.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> None:
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F  # noqa: N812

    args = dict(zip(argv[::2], argv[1::2]))
    objects = json.loads(args.get("--objects") or "[]")
    spark = SparkSession.builder.getOrCreate()
    if args.get("--manifest"):
        objects += [json.loads(r.value) for r in spark.read.text(args["--manifest"]).collect()]
    orders = spark.read.option("header", True).csv(objects)
    orders.where(F.col("total").cast("double") > 0).write.mode("append").parquet(
        args["--output_path"] + "orders/"
    )


if __name__ == "__main__":
    main([a for a in sys.argv[1:] if not a.startswith("--JOB")])

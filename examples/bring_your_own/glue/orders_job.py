"""A custom Glue script: keep only orders with a positive total, write Parquet.

Receives the same arguments as the built-in script: --objects (JSON list of s3:// URIs),
--manifest (s3:// URI of a JSON-lines list, or empty), --output_path and --batch_id (the
input's identity: a retry or redrive of the same input passes the same one). Glue adds its
own (--JOB_ID, --JOB_RUN_ID, --JOB_NAME, --TempDir, --job-bookmark-option ...):
``awsglue.utils.getResolvedOptions`` reads them as Glue means them. Locally it comes from
``pip install awsgluedataplanepython`` (Amazon Software License).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

ARGUMENTS = ("objects", "manifest", "output_path", "batch_id")


def job_arguments(argv: Sequence[str]) -> dict[str, str]:
    """The pipeline's arguments from Glue's argv (``argv[0]`` is the script)."""
    from awsglue.utils import getResolvedOptions

    resolved = getResolvedOptions(list(argv), list(ARGUMENTS))
    return {name: str(resolved[name] or "") for name in ARGUMENTS}


def main(argv: Sequence[str]) -> None:
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F  # noqa: N812

    args = job_arguments(argv)
    objects = json.loads(args["objects"] or "[]")
    spark = SparkSession.builder.getOrCreate()
    if args["manifest"]:
        lines = spark.read.text(args["manifest"]).collect()
        objects += [json.loads(row.value) for row in lines if row.value.strip()]
    orders = spark.read.option("header", True).csv(objects)
    # One folder per input: a retry or redrive of the same batch replaces its own output.
    target = f"{args['output_path']}orders/batch_id={args['batch_id']}/"
    orders.where(F.col("total").cast("double") > 0).write.mode("overwrite").parquet(target)


if __name__ == "__main__":
    main(sys.argv)

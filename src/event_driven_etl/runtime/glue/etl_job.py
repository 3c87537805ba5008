"""The built-in Glue (Spark) script: land new S3 objects as partitioned Parquet.

For each object named in the job arguments (inline ``--objects``, a JSON list of
``s3://`` URIs, or ``--manifest``, the URI of a JSON-lines file with one URI per line):

* read it by its extension: CSV with a header (``.csv``, ``.tsv``), JSON lines
  (``.json``, ``.jsonl``, ``.ndjson``) or Parquet (``.parquet``), optionally compressed
  (``.gz``, ``.bz2``);
* normalise column names to ``lower_snake_case`` (Parquet rejects spaces and ``,;{}()=``);
* add ``_source_object`` (the object's URI), ``_ingested_at`` (UTC timestamp) and the
  partition column ``ingestion_date``;
* append everything to ``--output_path`` as Parquet, partitioned by ``ingestion_date``.

Everything is plain PySpark, so it runs on local Spark too (pyspark 3.5 = Glue 5.0's
Spark 3.5). It imports nothing from AWS Glue's ``awsglue`` library.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

CSV_SUFFIXES = (".csv", ".tsv")
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
COMPRESSION_SUFFIXES = (".gz", ".bz2")
METADATA_COLUMNS = ("_source_object", "_ingested_at", "ingestion_date")
_NOT_WORD = re.compile(r"[^0-9a-z]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_HADOOP_GLOB = re.compile(r"([\\*?\[\]{}])")


class JobInputError(ValueError):
    """The job's arguments or one of its objects cannot be processed (a data error)."""


def parse_args(argv: Sequence[str]) -> dict[str, str]:
    """Parse ``--name value`` and ``--name=value`` pairs as Glue passes them.

    Unknown arguments (Glue adds ``--JOB_ID``, ``--job-bookmark-option`` ...) are kept.
    """
    args: dict[str, str] = {}
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        if item.startswith("--"):
            name, eq, value = item[2:].partition("=")
            if not eq and i + 1 < len(items) and not items[i + 1].startswith("--"):
                value = items[i + 1]
                i += 1
            args[name] = value
        i += 1
    return args


def object_uris(spark: SparkSession, args: dict[str, str]) -> list[str]:
    """The objects this run processes, deduplicated, in a stable order."""
    uris: list[str] = []
    inline = args.get("objects", "").strip()
    if inline:
        try:
            parsed = json.loads(inline)
        except json.JSONDecodeError as error:
            raise JobInputError(f"--objects must be a JSON list of s3:// URIs: {error}") from error
        if not isinstance(parsed, list) or not all(isinstance(u, str) for u in parsed):
            raise JobInputError(f"--objects must be a JSON list of strings, got {inline[:200]!r}")
        uris += parsed
    manifest = args.get("manifest", "").strip()
    if manifest:
        lines = [row.value for row in spark.read.text(hadoop_path(manifest)).collect()]
        uris += parse_manifest_lines(lines)
    if not uris:
        raise JobInputError("no objects to process: pass --objects or --manifest")
    return list(dict.fromkeys(uris))


def parse_manifest_lines(lines: Sequence[str]) -> list[str]:
    """One URI per line: a JSON string (``"s3://b/k"``) or, leniently, the bare URI."""
    uris = []
    for line in lines:
        text = line.strip()
        if not text:
            continue
        uris.append(json.loads(text) if text.startswith('"') else text)
    return uris


def object_format(uri: str) -> str:
    """``csv``, ``json`` or ``parquet`` from the key's extension; a clear error otherwise."""
    name = uri.lower()
    for compression in COMPRESSION_SUFFIXES:
        if name.endswith(compression):
            name = name[: -len(compression)]
    for suffixes, fmt in (
        (CSV_SUFFIXES, "csv"),
        (JSON_SUFFIXES, "json"),
        (PARQUET_SUFFIXES, "parquet"),
    ):
        if name.endswith(suffixes):
            return fmt
    allowed = ", ".join(CSV_SUFFIXES + JSON_SUFFIXES + PARQUET_SUFFIXES)
    raise JobInputError(f"unsupported object format for {uri!r}: expected one of {allowed}")


def normalise_column_names(names: Sequence[str]) -> list[str]:
    """``"Order ID"`` -> ``order_id``, ``"camelCase"`` -> ``camel_case``; unique, never empty."""
    result: list[str] = []
    seen: set[str] = set()
    for position, name in enumerate(names):
        snake = _NOT_WORD.sub("_", _CAMEL_BOUNDARY.sub("_", name.strip()).lower()).strip("_")
        snake = snake or f"column_{position + 1}"
        if snake[0].isdigit():
            snake = f"_{snake}"
        candidate, n = snake, 2
        while candidate in seen or candidate in METADATA_COLUMNS:
            candidate, n = f"{snake}_{n}", n + 1
        seen.add(candidate)
        result.append(candidate)
    return result


def hadoop_path(uri: str) -> str:
    """Escape Hadoop glob characters so a key containing ``[`` or ``*`` is read literally."""
    return _HADOOP_GLOB.sub(r"\\\1", uri)


def read_object(spark: SparkSession, uri: str) -> DataFrame:
    fmt = object_format(uri)
    path = hadoop_path(uri)
    if fmt == "csv":
        sep = "\t" if ".tsv" in uri.lower() else ","
        return spark.read.option("header", True).option("sep", sep).csv(path)
    if fmt == "json":
        return spark.read.json(path)
    return spark.read.parquet(path)


def transform(df: DataFrame, source_uri: str, ingested_at: datetime) -> DataFrame:
    """Normalise column names and add the ingestion metadata columns."""
    from pyspark.sql import functions as F  # noqa: N812 - PySpark's own convention

    renamed = df.toDF(*normalise_column_names(df.columns))
    return (
        renamed.withColumn("_source_object", F.lit(source_uri))
        .withColumn("_ingested_at", F.lit(ingested_at).cast("timestamp"))
        .withColumn("ingestion_date", F.lit(ingested_at.strftime("%Y-%m-%d")))
    )


def run(
    spark: SparkSession,
    uris: Sequence[str],
    output_path: str,
    ingested_at: datetime | None = None,
) -> int:
    """Read, transform and append ``uris`` to ``output_path``; return the rows written."""
    if not output_path:
        raise JobInputError("--output_path is required (an s3:// prefix for the Parquet output)")
    moment = ingested_at or datetime.now(timezone.utc).replace(tzinfo=None)
    frames = [transform(read_object(spark, uri), uri, moment) for uri in uris]
    combined = frames[0]
    for frame in frames[1:]:
        combined = combined.unionByName(frame, allowMissingColumns=True)
    combined = combined.cache()
    rows = combined.count()
    combined.write.mode("append").partitionBy("ingestion_date").parquet(output_path)
    combined.unpersist()
    return int(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point on Glue (and under the offline harness): parse arguments, run, report."""
    from pyspark.sql import SparkSession

    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.appName("event-driven-etl").getOrCreate()
    uris = object_uris(spark, args)
    rows = run(spark, uris, args.get("output_path", ""))
    print(json.dumps({"message": "etl finished", "objects": len(uris), "rows": rows}))
    return rows


if __name__ == "__main__":
    main()

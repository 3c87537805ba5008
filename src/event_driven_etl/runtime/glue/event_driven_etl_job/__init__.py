"""The built-in Glue job's stages: land new S3 objects as one typed, partitioned Parquet table.

Glue runs ``etl_job.py`` (the job's script), which calls :func:`job.main`; this package comes
with it in ``--extra-py-files``: a CDK directory asset, uploaded as ``<hash>.zip`` with the
package at the zip's root, that the job's role may read (that object, no other asset). The
stages, in pipeline order, one module each, each returning a typed value:

1. ``probe``: each object's size and first bytes (and Parquet footer) -> ``Probe``;
2. ``plan``: the probe's verdicts and the objects grouped for one ``spark.read`` each ->
   ``ReadPlan``;
3. ``read``: one ``spark.read`` per group (CSV: two, large objects proven to hold no quoted
   line break read line by line, in splits) -> ``Group`` (a persisted frame, its columns);
4. ``profile``: one aggregation pass per group -> ``FileStats`` per object and ``Verdicts``
   (malformed rows, bytes that are not UTF-8, no rows);
5. ``schema``: type the new columns and settle the table's schema -> ``Settled`` (the table,
   the objects refused), running
6. ``write``: the rows written off to the side (``StagedWrite``), then published; with
   ``--quality_rules`` the table's DQDL rules (``quality``: parser and pure-Python evaluator,
   ``quality_gate``: their Spark evaluation) are judged on the typed rows first: failing rows
   quarantined or their objects refused, a failing dataset rule holding the batch back;
7. ``report``: each object's outcome in the run report -> ``RunReport``.

``job.run`` is that sequence over one outcome ledger (``outcomes.Ledger``), the arguments
parsed once into one frozen ``arguments.JobArgs``. ``arguments``, ``names``, ``errors`` and
``outcomes`` import no pyspark (the offline harness reads manifests with
``arguments.parse_manifest_lines``); the contract values shared with the constructs come from
``event_driven_etl/_contract.py`` through ``shared``. This ``__init__`` imports nothing.

Arguments (Glue style, ``--name value``): ``--objects`` (a JSON list of ``s3://`` URIs) and/or
``--manifest`` (the URI of a JSON-lines file, one URI per line), ``--output_path`` (the
table's ``s3://`` prefix); optional ``--batch_id`` (the input's identity; the workflow passes
its execution name), ``--bad_records`` (``fail`` or ``quarantine``), ``--quarantine_path``
and ``--catalog_database`` / ``--catalog_table`` / ``--catalog_region`` (keep the table in
the Glue Data Catalog); ``--table_format iceberg`` keeps it as an Iceberg table there, written
through Spark's ``glue_catalog`` in one commit per batch (``iceberg``).

Every object ends in exactly one outcome, written to the run report
``<output_path>_runs/<batch_id>.json`` (and a short ``.summary.json`` the workflow reads):

* **landed**: all its rows, typed, with ``_source_object``, ``_ingested_at`` and the partition
  ``ingestion_date``;
* **skipped**: nothing to land (0 bytes, a header only, an empty JSON array), with a reason;
* **refused** (``bad_records=fail``): the run ends FAILED after landing the good objects; the
  error's first line names the object, the reason and the row where known;
* **quarantined** (``bad_records=quarantine``): copied under ``--quarantine_path`` with a
  ``.reason.json`` beside it; the run succeeds.

Formats by extension, checked against the content: CSV (``.csv``; RFC 4180 quoting, quoted
newlines, BOM, CR/LF/CRLF, a header row assumed; ``;``, tab or ``|`` used when the header has
no comma), TSV (``.tsv``), JSON lines or a top-level JSON array (``.json``, ``.jsonl``,
``.ndjson``), Parquet (``.parquet``, nanosecond timestamps included); ``.gz``/``.bz2``
compressed text. A column gets the most specific type every present value represents
exactly (``181.0`` is a bigint, ``2026-11-25`` a date), the same for CSV as for JSON; the null
tokens are missing in every column, and a column without a value yet is not added. The table
keeps one type per column across runs (``<output_path>_schema.json`` or the catalog), later
data is cast to it and new columns are added; the same files give the same table whatever
their order and grouping. The whole object must be UTF-8; an object whose rows Spark cannot
write is refused on its own, and the schema is committed only for rows that were written.
Re-running the same input (same ``--batch_id``) replaces its earlier output.

Plain PySpark (pyspark 3.5 = Glue 5's Spark): it imports nothing from ``awsglue``, so it runs
on local Spark too.
"""

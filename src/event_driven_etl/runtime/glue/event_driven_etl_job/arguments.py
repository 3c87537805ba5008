"""The job's arguments, parsed once into one frozen :class:`JobArgs` (no Spark needed, but
for reading a manifest).

Glue passes ``--name value`` pairs: ``--objects`` (a JSON list of ``s3://`` URIs) and/or
``--manifest`` (the URI of a JSON-lines file, one URI per line), ``--output_path`` (the
table's ``s3://`` prefix); optional ``--batch_id`` (the input's identity; the workflow passes
its execution name), ``--bad_records`` (``fail`` or ``quarantine``), ``--quarantine_path`` and
``--catalog_database`` / ``--catalog_table`` / ``--catalog_region``; ``--tables`` (the table
routing rule, see ``tables``).
``--catalog_database`` / ``--catalog_table`` / ``--catalog_region``, ``--table_format``
(``parquet`` or ``iceberg``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

from .errors import JobInputError
from .names import hadoop_path
from .quality import RulesetError, parse_ruleset, table_name_of
from .shared import contract
from .tables import TableRule

if TYPE_CHECKING:  # the job imports pyspark where it uses it; this module reads a manifest only
    from pyspark.sql import SparkSession

STAGING_DIR = "_staging"
_SAFE_ID = re.compile(r"[^A-Za-z0-9._=-]")


def parse_args(argv: Sequence[str]) -> dict[str, str]:
    """Parse ``--name value`` and ``--name=value`` pairs as Glue passes them.

    A name followed by another ``--name`` (or nothing) has the empty value. Unknown arguments
    (Glue adds ``--JOB_ID``, ``--JOB_RUN_ID``, ``--job-bookmark-option`` ...) are kept.
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


def parse_manifest_lines(lines: Iterable[str]) -> list[str]:
    """The URIs of a manifest (see :func:`parse_manifest`)."""
    return parse_manifest(lines)[0]


def parse_manifest(lines: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """A manifest's URIs, and the job arguments it carries.

    One URI per line: a JSON string (``"s3://b/k"``) or, leniently, the bare URI. A line
    that is a JSON object is a backfill's batch, ``{"objects": [...], "reprocess": bool}``
    (Step Functions writes it with ``States.JsonToString``, which cannot join lines): its
    ``objects`` are URIs and its ``reprocess`` is the ``--reprocess`` argument.
    """
    uris: list[str] = []
    carried: dict[str, str] = {}
    for line in lines:
        text = line.strip()
        if not text:
            continue
        if text.startswith("{"):
            batch = json.loads(text)
            uris += [str(uri) for uri in batch.get("objects", [])]
            if "reprocess" in batch:
                carried["reprocess"] = "true" if batch["reprocess"] is True else "false"
            continue
        uris.append(json.loads(text) if text.startswith('"') else text)
    return uris, carried


def job_input(spark: SparkSession, args: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """The run's objects (see :func:`object_uris`) and its arguments: ``args`` over what its
    manifest carries (a backfill's ``reprocess``)."""
    uris, carried = _objects_and_carried(spark, args)
    given = {name: value for name, value in args.items() if value != ""}
    return uris, {**carried, **given}


def object_uris(spark: SparkSession, args: Mapping[str, str]) -> list[str]:
    """The objects this run processes, deduplicated, in a stable order."""
    return _objects_and_carried(spark, args)[0]


def _objects_and_carried(
    spark: SparkSession, args: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    uris: list[str] = []
    inline = args.get("objects", "").strip()
    if inline:
        try:
            parsed = json.loads(inline)
        except json.JSONDecodeError as error:
            raise JobInputError(
                f"{contract.OBJECTS_ARGUMENT} must be a JSON list of s3:// URIs: {error}"
            ) from error
        if not isinstance(parsed, list) or not all(isinstance(u, str) for u in parsed):
            raise JobInputError(
                f"{contract.OBJECTS_ARGUMENT} must be a JSON list of strings, got {inline[:200]!r}"
            )
        uris += parsed
    carried: dict[str, str] = {}
    manifest = args.get("manifest", "").strip()
    if manifest:
        lines = [row.value for row in spark.read.text(hadoop_path(manifest)).collect()]
        listed, carried = parse_manifest(lines)
        uris += listed
    if not uris:
        raise JobInputError(
            "no objects to process: pass "
            f"{contract.OBJECTS_ARGUMENT} or {contract.MANIFEST_ARGUMENT}"
        )
    return list(dict.fromkeys(uris)), carried


def batch_id_of(args: Mapping[str, str], uris: Sequence[str]) -> str:
    """The input's identity: ``--batch_id`` (made file-name safe) or a hash of the URIs."""
    given = args.get("batch_id", "").strip()
    if not given:
        digest = hashlib.sha256("\n".join(sorted(uris)).encode("utf-8")).hexdigest()
        return f"objects-{digest[:32]}"
    safe = _SAFE_ID.sub("_", given)
    if safe != given:  # two different ids must not meet in one safe spelling
        safe = f"{safe[:64]}-{hashlib.sha256(given.encode('utf-8')).hexdigest()[:12]}"
    return safe


@dataclass(frozen=True)
class CatalogTable:
    """Where the output table lives in the Glue Data Catalog (``--catalog_*`` arguments)."""

    database: str
    table: str
    region: Optional[str] = None

    def client(self) -> Any:
        import boto3  # in Glue's runtime; imported only when a catalog table is kept

        return boto3.client("glue", region_name=self.region or None)

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> Optional[CatalogTable]:
        database, table = args.get("catalog_database", ""), args.get("catalog_table", "")
        if not (database and table):
            return None
        return cls(database, table, args.get("catalog_region") or None)


def _reprocess(args: Mapping[str, str]) -> bool:
    value = (args.get("reprocess", "") or "false").strip().lower()
    if value not in contract.REPROCESS_VALUES:
        raise JobInputError(
            f"{contract.REPROCESS_ARGUMENT} must be one of "
            f"{', '.join(contract.REPROCESS_VALUES)}, got {value!r}"
        )
    return value == "true"


def _minutes(value: str) -> int:
    """A whole number of minutes; 0 for none (or one this run cannot read)."""
    return int(value) if value.strip().isdigit() else 0


@dataclass(frozen=True)
class JobArgs:
    """One run's arguments, read once: every stage takes what it needs from here."""

    uris: tuple[str, ...]
    """The objects, deduplicated, in a stable order."""
    output_path: str
    """The table's prefix as given (see :attr:`output` for it with its ``/``)."""
    batch_id: str
    """The input's identity, file-name safe: names the run report, staging and files."""
    bad_records: str = "fail"
    quarantine_path: str = ""
    catalog: Optional[CatalogTable] = None
    ingested_at: Optional[datetime] = None
    """The run's timestamp (default: now; a re-run keeps its first run's)."""
    tables: Optional[TableRule] = None
    """The table routing rule (``--tables``); None: one table at :attr:`output_path`."""
    table: Optional[str] = None
    """With routing, the name of this run's one table (``table_runs`` sets it); else None."""
    quality_rules: str = ""
    """``--quality_rules``: a JSON object, table name -> DQDL ruleset (``"*"``: every table)."""
    job_name: str = ""
    """Glue's ``--JOB_NAME``: the dimension of the quality metrics, and the job whose runs
    ``batch_run`` asks Glue about."""
    job_run_id: str = ""
    """Glue's ``--JOB_RUN_ID``: this run, named in its batch's run lease (``batch_run``);
    empty outside Glue."""
    table_format: str = contract.TABLE_FORMATS[0]
    """``parquet`` (Hive-style files) or ``iceberg`` (an Iceberg table in ``catalog``)."""
    reprocess: bool = False
    """Land objects that already landed in another batch again, replacing their rows
    (``--reprocess true``); otherwise they are skipped."""
    output_kms_key: str = ""
    """``--output_kms_key_arn``: the output key's ARN, the object marks' SSE-KMS key (empty:
    the bucket's default encryption)."""
    job_timeout_minutes: int = 0
    """``--job_timeout_minutes``: the Glue job's timeout, the claims' lease (0: unknown, the
    lease is Glue's longest timeout)."""

    @classmethod
    def from_args(cls, args: Mapping[str, str], uris: Sequence[str]) -> JobArgs:
        """The run of ``uris`` that Glue-style ``args`` (see :func:`parse_args`) describe."""
        return cls(
            uris=tuple(uris),
            output_path=args.get("output_path", ""),
            batch_id=batch_id_of(args, uris),
            bad_records=args.get("bad_records", "fail") or "fail",
            quarantine_path=args.get("quarantine_path", ""),
            catalog=CatalogTable.from_args(args),
            tables=TableRule.from_json(args.get(contract.TABLES_ARGUMENT.removeprefix("--"), "")),
            quality_rules=args.get("quality_rules", ""),
            job_name=args.get("JOB_NAME", ""),
            job_run_id=args.get("JOB_RUN_ID", ""),
            table_format=args.get("table_format") or contract.TABLE_FORMATS[0],
            reprocess=_reprocess(args),
            output_kms_key=args.get(contract.OUTPUT_KMS_KEY_ARGUMENT.removeprefix("--"), ""),
            job_timeout_minutes=_minutes(
                args.get(contract.JOB_TIMEOUT_ARGUMENT.removeprefix("--"), "")
            ),
        )

    def check(self) -> None:
        """Refuse arguments the run cannot honour, before it touches anything."""
        if not self.output_path:
            raise JobInputError(
                f"{contract.OUTPUT_PATH_ARGUMENT} is required (the table's s3:// prefix)"
            )
        modes = contract.BAD_RECORDS_MODES
        if self.bad_records not in modes:
            raise JobInputError(
                f"{contract.BAD_RECORDS_ARGUMENT} must be one of {', '.join(modes)}, "
                f"got {self.bad_records!r}"
            )
        if self.table_format not in contract.TABLE_FORMATS:
            raise JobInputError(
                f"{contract.TABLE_FORMAT_ARGUMENT} must be one of "
                f"{', '.join(contract.TABLE_FORMATS)}, got {self.table_format!r}"
            )
        if self.iceberg and self.catalog is None:
            raise JobInputError(
                f"{contract.TABLE_FORMAT_ARGUMENT} iceberg needs the table's catalog: "
                f"{contract.CATALOG_DATABASE_ARGUMENT} and {contract.CATALOG_TABLE_ARGUMENT}"
            )
        if self.bad_records == "quarantine" and not self.quarantine_path:
            raise JobInputError(
                f"{contract.BAD_RECORDS_ARGUMENT} quarantine needs "
                f"{contract.QUARANTINE_PATH_ARGUMENT} (an s3:// prefix)"
            )

        if self.quality_rules:
            self.quality_rulesets()

    def quality_rulesets(self) -> dict[str, str]:
        """``--quality_rules`` read and every ruleset parsed (a bad one is refused here,
        before the run touches anything)."""
        if not self.quality_rules.strip():
            return {}
        try:
            parsed = json.loads(self.quality_rules)
        except json.JSONDecodeError as error:
            raise JobInputError(
                f"{contract.QUALITY_RULES_ARGUMENT} must be a JSON object: {error}"
            ) from error
        if not isinstance(parsed, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
        ):
            raise JobInputError(
                f"{contract.QUALITY_RULES_ARGUMENT} must be a JSON object of table name -> "
                f"DQDL ruleset, got {self.quality_rules[:200]!r}"
            )
        for table, text in parsed.items():
            try:
                parse_ruleset(text)
            except RulesetError as error:
                raise JobInputError(
                    f"{contract.QUALITY_RULES_ARGUMENT} for table {table!r}: {error}"
                ) from error
        return parsed

    @property
    def table_name(self) -> str:
        """The table's name for its quality rules: the routed table, else the catalog table,
        else the last folder of the output path."""
        if self.table:
            return self.table
        return table_name_of(self.catalog.table if self.catalog else None, self.output_path)

    @property
    def iceberg(self) -> bool:
        """Whether the table is an Iceberg table (see ``iceberg``)."""
        return self.table_format == contract.TABLE_FORMATS[1]

    @property
    def output(self) -> str:
        """The table's prefix, ending in ``/``."""
        return self.output_path if self.output_path.endswith("/") else f"{self.output_path}/"

    @property
    def report_uri(self) -> str:
        """The run report, ``<output>_runs/<batch_id>.json``."""
        return f"{self.output}{contract.RUNS_DIR}/{self.batch_id}.json"

    @property
    def staging(self) -> str:
        """Where the run writes its files before publishing them."""
        return f"{self.output}{STAGING_DIR}/{self.batch_id}/"

    def quarantine_copy(self, uri: str) -> str:
        """Where ``uri`` is copied when quarantined (under the run's own folder)."""
        base = self.quarantine_path
        base = base if base.endswith("/") else f"{base}/"
        return f"{base}{self.batch_id}/{uri.split('://', 1)[-1]}"

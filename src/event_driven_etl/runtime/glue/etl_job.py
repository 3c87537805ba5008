"""The built-in Glue (Spark) script: land new S3 objects as one typed, partitioned Parquet table.

Arguments (Glue style, ``--name value``): ``--objects`` (a JSON list of ``s3://`` URIs) and/or
``--manifest`` (the URI of a JSON-lines file, one URI per line), ``--output_path`` (the
table's ``s3://`` prefix); optional ``--batch_id`` (the input's identity; the workflow passes
its execution name), ``--bad_records`` (``fail`` or ``quarantine``) and ``--quarantine_path``.

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

from __future__ import annotations

import bz2
import csv
import hashlib
import io
import json
import math
import re
import sys
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import unquote

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType

CSV_SUFFIXES = (".csv", ".tsv")
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
COMPRESSION_SUFFIXES = (".gz", ".bz2")
_CODECS = {".gz": "gzip", ".bz2": "bz2"}
_SUFFIX_OF = {codec: suffix for suffix, codec in _CODECS.items()}
METADATA_COLUMNS = ("_source_object", "_ingested_at", "ingestion_date")
BAD_RECORDS_MODES = ("fail", "quarantine")
NULL_TOKENS = ("", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "#N/A", "<NA>")
"""A text value that is one of these (trimmed, spelled exactly so: ``none`` is a word) is
missing, in every column, as pandas reads them: so a column's values, and whether it has any,
never depend on the type it gets."""

RUNS_DIR = "_runs"
SCHEMA_FILE = "_schema.json"
STAGING_DIR = "_staging"
REPORT_LIST_LIMIT = 20
"""Entries per list in the summary the workflow reads (Step Functions payloads are small)."""

_PEEK_BYTES = 64 * 1024
_BZ2_PEEK_BYTES = 1024 * 1024  # a bzip2 block is up to 900 kB: peek far enough to see rows
_TARGET_FILE_BYTES = 128 * 1024 * 1024
_CORRUPT = "_corrupt_record"
_PATH = "_path"
_ROW_ID = "_row_id"
_HADOOP_GLOB = re.compile(r"([\\*?\[\]{}])")
_NOT_WORD = re.compile(r"[\W]+", re.UNICODE)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SAFE_ID = re.compile(r"[^A-Za-z0-9._=-]")

# The regular expressions gate Spark's casts, which are lenient ("2020" casts to a timestamp,
# "007" to 7: zero-padded codes stay strings here).
_INTEGER = r"^[+-]?(0|[1-9][0-9]{0,17})$"  # up to 18 digits: always fits a bigint
_WHOLE = r"^[+-]?(0|[1-9][0-9]{0,17})\.0*$"  # 181.0 (pandas' integers with gaps): a bigint
_DECIMAL = r"^[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIMESTAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
)

TYPE_ORDER = ("bigint", "double", "boolean", "date", "timestamp")
"""The types a column can be inferred as, most specific first (else ``string``)."""
_BIT = {name: 1 << index for index, name in enumerate(TYPE_ORDER)}
FITS_MASK = {
    "bigint": _BIT["bigint"] | _BIT["double"],
    "double": _BIT["double"],
    "boolean": _BIT["boolean"],
    "date": _BIT["date"] | _BIT["timestamp"],
    "timestamp": _BIT["timestamp"],
}
"""A value's type -> the table types that represent it exactly (as bits; ``string`` holds
everything). These sets are chains (bigint < double, date < timestamp, boolean), so the
types of any set of values meet in one least type whatever their order: the typing rule is
order-independent."""


class JobInputError(ValueError):
    """The job's arguments or its objects cannot be processed (a data error, not a bug)."""


# ---------------------------------------------------------------------------- arguments


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
    """One URI per line: a JSON string (``"s3://b/k"``) or, leniently, the bare URI."""
    uris = []
    for line in lines:
        text = line.strip()
        if not text:
            continue
        uris.append(json.loads(text) if text.startswith('"') else text)
    return uris


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


def batch_id_of(args: dict[str, str], uris: Sequence[str]) -> str:
    """The input's identity: ``--batch_id`` (made file-name safe) or a hash of the URIs."""
    given = args.get("batch_id", "").strip()
    if not given:
        digest = hashlib.sha256("\n".join(sorted(uris)).encode("utf-8")).hexdigest()
        return f"objects-{digest[:32]}"
    safe = _SAFE_ID.sub("_", given)
    if safe != given:  # two different ids must not meet in one safe spelling
        safe = f"{safe[:64]}-{hashlib.sha256(given.encode('utf-8')).hexdigest()[:12]}"
    return safe


# ---------------------------------------------------------------------------- names


def object_format(uri: str) -> str:
    """``csv``, ``json`` or ``parquet`` from the key's extension; a clear error otherwise."""
    name = strip_compression(uri.lower())
    for suffixes, fmt in (
        (CSV_SUFFIXES, "csv"),
        (JSON_SUFFIXES, "json"),
        (PARQUET_SUFFIXES, "parquet"),
    ):
        if name.endswith(suffixes):
            return fmt
    allowed = ", ".join(CSV_SUFFIXES + JSON_SUFFIXES + PARQUET_SUFFIXES)
    raise JobInputError(
        f"unsupported object format for {uri!r}: expected one of {allowed} "
        "(optionally followed by .gz or .bz2)"
    )


def strip_compression(name: str) -> str:
    for suffix in COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def compression_of(uri: str) -> Optional[str]:
    """``gzip`` or ``bz2`` from the key's last suffix, else None."""
    lowered = uri.lower()
    return next((_CODECS[s] for s in COMPRESSION_SUFFIXES if lowered.endswith(s)), None)


def normalise_column_name(name: str, position: int) -> str:
    """``"Order ID"`` -> ``order_id``, ``"camelCase"`` -> ``camel_case``, ``"Straße"`` ->
    ``strasse``; letters of any script are kept (case-folded), other characters become ``_``."""
    text = unicodedata.normalize("NFKC", name.replace("\ufeff", "")).strip().strip("'\"")
    snake = _NOT_WORD.sub("_", _CAMEL_BOUNDARY.sub("_", text).casefold()).strip("_")
    snake = snake or f"column_{position + 1}"
    return f"_{snake}" if snake[0].isdigit() else snake


def normalise_column_names(names: Sequence[str]) -> list[str]:
    """Normalised names, unique, never one of the metadata columns (those get ``_2``...)."""
    result: list[str] = []
    seen: set[str] = set()
    for position, name in enumerate(names):
        snake = normalise_column_name(name, position)
        candidate, n = snake, 2
        while candidate in seen or candidate in METADATA_COLUMNS:
            candidate, n = f"{snake}_{n}", n + 1
        seen.add(candidate)
        result.append(candidate)
    return result


def hadoop_path(uri: str) -> str:
    """Escape Hadoop glob characters so a key containing ``[`` or ``*`` is read literally."""
    return _HADOOP_GLOB.sub(r"\\\1", uri)


# ---------------------------------------------------------------------------- content checks


@dataclass
class Probe:
    """What an object's size and first bytes say about it, before Spark reads it."""

    uri: str
    size: int = 0
    fmt: str = ""
    problem: Optional[str] = None
    """Why the object is refused (content does not match its name, not UTF-8 ...)."""
    skip: Optional[str] = None
    """Why there is nothing to land (0 bytes ...)."""
    sep: str = ","
    header: tuple[str, ...] = ()
    json_layout: str = "lines"
    parquet_schema: str = ""

    @property
    def group(self) -> tuple[Any, ...]:
        """Objects of one group are read by one ``spark.read``."""
        if self.fmt == "csv":
            return ("csv", self.sep, self.header)
        if self.fmt == "json":
            return ("json", self.json_layout)
        return ("parquet", self.parquet_schema)


def sniff(uri: str, size: int, head: bytes, tail: bytes = b"") -> Probe:
    """Classify an object from its size and first bytes (and, for Parquet, its last 4)."""
    probe = Probe(uri=uri, size=size)
    try:
        probe.fmt = object_format(uri)
    except JobInputError as error:
        probe.problem = str(error).replace(f" for {uri!r}", "")
        return probe
    if size == 0:
        probe.skip = "empty object (0 bytes)"
        return probe
    compression = compression_of(uri)
    kind = _content_kind(head)
    if probe.fmt == "parquet":
        if compression:
            probe.problem = f"a Parquet object must not be {compression}-compressed as a whole"
        elif kind != "parquet" or tail != b"PAR1":
            probe.problem = "content is not Parquet (no PAR1 magic bytes at both ends)"
        return probe
    probe.problem = _container_problem(probe.fmt, kind, compression)
    if probe.problem:
        return probe
    try:
        text, complete = _decompressed_text(head, compression, whole=size <= len(head))
    except ValueError as error:
        probe.problem = str(error)
        return probe
    if not text.strip():
        probe.skip = "no data (only whitespace)"
        return probe
    if probe.fmt == "csv":
        _sniff_csv(probe, text)
    else:
        _sniff_json(probe, text, complete)
    return probe


def _container_problem(fmt: str, kind: str, compression: Optional[str]) -> Optional[str]:
    """Why a text object's bytes do not match its name (Parquet, compression, archives)."""
    if kind == "parquet":
        return f"content is Parquet but the key does not end in .parquet (it is {fmt})"
    if compression is None and kind in _SUFFIX_OF:
        return f"content is {kind}-compressed but the key does not end in {_SUFFIX_OF[kind]}"
    if compression is not None and kind != compression:
        return f"the key ends in {_SUFFIX_OF[compression]} but the content is not {compression}"
    if kind == "archive":
        return "content is an archive or office document (zip/OLE), not text"
    return None


def _content_kind(head: bytes) -> str:
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh") and head[3:4].isdigit():
        return "bz2"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        return "archive"
    return "text"


def _decompressed_text(
    head: bytes, compression: Optional[str], *, whole: bool = False
) -> tuple[str, bool]:
    """The peek as text, and whether it is the whole object (``whole``: ``head`` is)."""
    data = head
    if compression == "gzip":
        try:
            unzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
            data = unzip.decompress(head, _PEEK_BYTES)
            whole = whole and unzip.eof
        except zlib.error as error:
            raise ValueError(f"corrupt gzip data: {error}") from error
    elif compression == "bz2":
        try:
            unbz = bz2.BZ2Decompressor()
            data = unbz.decompress(head, _PEEK_BYTES)
            whole = whole and unbz.eof
        except OSError as error:
            raise ValueError(f"corrupt bzip2 data: {error}") from error
    if _content_kind(data) != "text" or b"\x00" in data[:_PEEK_BYTES]:
        raise ValueError("content is binary, not text")
    try:
        # A peek may end inside a multi-byte character: up to 3 bytes may be cut off.
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(data) - 3:
            raise ValueError(
                f"content is not UTF-8 text (byte {error.start}: {data[error.start]:#04x})"
            ) from error
        text = data[: error.start].decode("utf-8")
    return text.lstrip("\ufeff"), whole


def _sniff_csv(probe: Probe, text: str) -> None:
    first_line = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    if strip_compression(probe.uri.lower()).endswith(".tsv"):
        probe.sep = "\t"
    else:
        probe.sep = next((s for s in (",", ";", "\t", "|") if s in first_line), ",")
    header = next(csv.reader(io.StringIO(text, newline=""), delimiter=probe.sep), [])
    probe.header = tuple(header)
    if header and all(_is_number(value) for value in header):
        probe.problem = (
            "the first row looks like data, not a header (every field is a number): "
            "CSV objects need a header row"
        )


def _sniff_json(probe: Probe, text: str, complete: bool = True) -> None:
    stripped = text.lstrip()
    if stripped.startswith("["):
        probe.json_layout = "array"
        return
    first_line, newline, _rest = stripped.partition("\n")
    if not newline and not complete:
        # The first line goes on past the peek: it cannot be judged here. Spark's read does
        # (a line that is not one JSON object is a malformed record, refused with its number).
        return
    try:
        json.loads(first_line.strip())
    except ValueError:
        probe.problem = (
            "not JSON lines (one object per line) nor a JSON array: line 1 is not a complete "
            "JSON value (a single pretty-printed document such as GeoJSON is not a table)"
        )


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return bool(value.strip())


def probe_objects(spark: SparkSession, uris: Sequence[str]) -> list[Probe]:
    """Size, first bytes and (Parquet) footer of every object, many at a time."""
    jvm = _jvm(spark)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    file_systems: dict[str, Any] = {}  # one per bucket: getFileSystem is a round trip

    def probe(uri: str) -> Probe:
        path = jvm.org.apache.hadoop.fs.Path(uri)
        root = uri.split("/", 3)[:3]
        fs = file_systems.get("/".join(root)) or file_systems.setdefault(
            "/".join(root), path.getFileSystem(conf)
        )
        parquet = strip_compression(uri.lower()).endswith(PARQUET_SUFFIXES)
        peek = _BZ2_PEEK_BYTES if uri.lower().endswith(".bz2") else _PEEK_BYTES
        try:
            size, head, tail = _read_ends(fs, path, peek, parquet)
        except Exception as error:
            if "FileNotFoundException" in str(error):
                return Probe(uri=uri, skip="object not found (deleted before the run)")
            raise
        result = sniff(uri, size, head, tail)
        if result.fmt == "parquet" and result.problem is None and result.skip is None:
            _read_parquet_footer(spark, path, result)
        return result

    with ThreadPoolExecutor(max_workers=min(16, max(1, len(uris)))) as pool:
        return list(pool.map(probe, uris))


def _read_ends(fs: Any, path: Any, peek: int, parquet: bool) -> tuple[int, bytes, bytes]:
    """The object's size, its first ``peek`` bytes and (Parquet) its last 4."""
    stream = fs.open(path)
    try:
        head = bytes(stream.readNBytes(peek))
        # Shorter than the peek: that is the whole object, no size look-up needed.
        size = len(head) if len(head) < peek else int(fs.getFileStatus(path).getLen())
        tail = head[-4:]
        if parquet and size > len(head):
            stream.seek(size - 4)
            tail = bytes(stream.readNBytes(4))
        return size, head, tail
    finally:
        stream.close()


def _read_parquet_footer(spark: SparkSession, path: Any, probe: Probe) -> None:
    jvm = _jvm(spark)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    try:
        reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(
            jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(path, conf)
        )
        try:
            schema = str(reader.getFooter().getFileMetaData().getSchema().toString())
            rows = int(reader.getRecordCount())
        finally:
            reader.close()
    except Exception as error:
        probe.problem = f"unreadable Parquet footer: {_first_line(str(error))}"
        return
    probe.parquet_schema = schema
    if rows == 0:
        probe.skip = "no rows (a Parquet file with 0 rows)"


# ---------------------------------------------------------------------------- reading


@dataclass
class ParquetNode:
    """One field of a Parquet schema as its footer prints it."""

    name: str
    repetition: str = "optional"
    annotation: str = ""
    children: list[ParquetNode] = field(default_factory=list)
    group: bool = False


_PARQUET_FIELD = re.compile(
    r"^\s*(required|optional|repeated)\s+(group|\S+)\s+(.+?)(?:\s+\((.*)\))?\s*(\{|;)\s*$"
)


def parse_parquet_schema(text: str) -> list[ParquetNode]:
    """The top-level fields of a schema as ``MessageType.toString()`` spells it."""
    root = ParquetNode("schema", group=True)
    stack = [root]
    for line in text.splitlines()[1:]:
        if line.strip() == "}":
            if len(stack) > 1:
                stack.pop()
            continue
        found = _PARQUET_FIELD.match(line)
        if not found:
            continue
        repetition, kind, name, annotation, opener = found.groups()
        node = ParquetNode(name, repetition, annotation or "", group=kind == "group")
        stack[-1].children.append(node)
        if opener == "{":
            stack.append(node)
    return root.children


NanosShape = Any
"""``"nanos"`` (a nanosecond timestamp), ``("struct", {name: shape})``, ``("list", shape)``,
``("map", key shape, value shape)``, or None (no nanosecond timestamp inside)."""


def nanos_shape(node: ParquetNode) -> NanosShape:
    """Where a field holds nanosecond timestamps, at any depth (None: nowhere)."""
    if not node.group:
        shape: NanosShape = "nanos" if node.annotation.startswith("TIMESTAMP(NANOS") else None
        return ("list", shape) if node.repetition == "repeated" and shape else shape
    if node.annotation == "LIST" and len(node.children) == 1:
        repeated = node.children[0]
        # Three-level lists wrap one element field; the legacy two-level forms do not.
        legacy = (
            not repeated.group
            or len(repeated.children) != 1
            or repeated.name
            in (
                "array",
                f"{node.name}_tuple",
            )
        )
        element = ParquetNode(repeated.name, "optional", repeated.annotation, repeated.children)
        element.group = repeated.group
        inner = nanos_shape(element if legacy else repeated.children[0])
        return ("list", inner) if inner else None
    if node.annotation in ("MAP", "MAP_KEY_VALUE") and len(node.children) == 1:
        pair = {c.name: c for c in node.children[0].children}
        key = nanos_shape(pair["key"]) if "key" in pair else None
        value = nanos_shape(pair["value"]) if "value" in pair else None
        return ("map", key, value) if key or value else None
    fields = {c.name: nanos_shape(c) for c in node.children}
    if not any(fields.values()):
        return None
    shape = ("struct", fields)
    return ("list", shape) if node.repetition == "repeated" else shape


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def nanos_expression(ref: str, data_type: DataType, shape: NanosShape, depth: int = 0) -> str:
    """SQL turning the epoch nanoseconds in ``ref`` (Spark reads them as longs) into
    timestamps (to the microsecond, rounded down), keeping every other value as it is."""
    from pyspark.sql import types as T  # noqa: N812

    if shape is None:
        return ref
    if shape == "nanos":
        if not isinstance(data_type, T.LongType):
            return ref
        # Exact floor division (also before 1970), then microseconds since the epoch.
        return f"timestamp_micros(({ref} - pmod({ref}, 1000)) div 1000)"
    kind = shape[0]
    if kind == "struct" and isinstance(data_type, T.StructType):
        parts = []
        for item in data_type.fields:
            inner = nanos_expression(
                f"{ref}.{_quoted(item.name)}", item.dataType, shape[1].get(item.name), depth
            )
            parts.append(f"'{item.name.replace(chr(39), chr(92) + chr(39))}', {inner}")
        return f"IF({ref} IS NULL, NULL, named_struct({', '.join(parts)}))"
    if kind == "list" and isinstance(data_type, T.ArrayType):
        var = f"e{depth}"
        inner = nanos_expression(var, data_type.elementType, shape[1], depth + 1)
        return f"transform({ref}, {var} -> {inner})"
    if kind == "map" and isinstance(data_type, T.MapType):
        key, value = f"k{depth}", f"v{depth}"
        result = ref
        if shape[2]:
            inner = nanos_expression(value, data_type.valueType, shape[2], depth + 1)
            result = f"transform_values({result}, ({key}, {value}) -> {inner})"
        if shape[1]:
            inner = nanos_expression(key, data_type.keyType, shape[1], depth + 1)
            result = f"transform_keys({result}, ({key}, {value}) -> {inner})"
        return result
    return ref


@dataclass
class FileStats:
    """Per-object figures from one aggregation pass over its rows."""

    path: str = ""
    """The object's path as Spark's ``input_file_name()`` spells it."""
    rows: int = 0
    corrupt: int = 0
    first_corrupt_row: Optional[int] = None
    first_corrupt_text: Optional[str] = None
    non_null: dict[str, int] = field(default_factory=dict)
    """column -> values present (a text null token is missing)."""
    masks: dict[str, int] = field(default_factory=dict)
    """column -> the table types every present value fits exactly (``FITS_MASK`` bits);
    only for columns of the inferred types, and only where a value is present."""
    replacement_chars: int = 0
    """Rows holding U+FFFD: the decoder's mark for bytes that are not UTF-8 (checked)."""


@dataclass
class Group:
    """Objects read by one ``spark.read``, their columns and per-object figures."""

    probes: list[Probe]
    frame: DataFrame
    columns: dict[str, DataType]
    """Normalised column name -> Spark type as read (text columns are ``StringType``)."""
    stats: dict[str, FileStats] = field(default_factory=dict)
    """Object URI -> figures."""


def read_group(spark: SparkSession, probes: list[Probe]) -> Group:
    """One ``spark.read`` for objects of one format and layout, with columns normalised and
    ``_path`` (the file Spark read) and ``_row_id`` (increasing within a file) added.

    The frame is persisted: the statistics pass and the write read the objects once."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql import types as T  # noqa: N812

    first = probes[0]
    paths = [hadoop_path(p.uri) for p in probes]
    reader = spark.read.option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", _CORRUPT)
    if first.fmt == "csv":
        raw = [f"c{i}" for i in range(len(first.header))]
        schema = T.StructType(
            [T.StructField(n, T.StringType()) for n in raw]
            + [T.StructField(_CORRUPT, T.StringType())]
        )
        frame = (
            reader.schema(schema)
            .option("header", True)
            .option("multiLine", True)  # RFC 4180: quoted fields may hold newlines
            .option("escape", '"')  # RFC 4180: a quote inside quotes is doubled
            .option("sep", first.sep)
            .csv(paths)
        )
        names = normalise_column_names(first.header)
        frame = frame.toDF(*names, _CORRUPT)
    elif first.fmt == "json":
        frame = reader.option("multiLine", first.json_layout == "array").json(paths)
        if _CORRUPT not in frame.columns:
            frame = frame.withColumn(_CORRUPT, F.lit(None).cast("string"))
        # Spark sorts inferred JSON fields by name: the corrupt-record column may be anywhere.
        data = [c for c in frame.columns if c != _CORRUPT]
        frame = frame.select(*[_quoted(c) for c in data], _CORRUPT)
        frame = frame.toDF(*normalise_column_names(data), _CORRUPT)
    else:
        frame = reader.parquet(*paths)
        shapes = {n.name: nanos_shape(n) for n in parse_parquet_schema(first.parquet_schema)}
        converted = [
            F.expr(nanos_expression(_quoted(f.name), f.dataType, shapes.get(f.name))).alias(f.name)
            if shapes.get(f.name)
            else F.col(_quoted(f.name))
            for f in frame.schema.fields
        ]
        frame = frame.select(*converted)
        frame = frame.toDF(*normalise_column_names(frame.columns)).withColumn(
            _CORRUPT, F.lit(None).cast("string")
        )
    frame = frame.withColumn(_PATH, F.input_file_name()).withColumn(
        _ROW_ID, F.monotonically_increasing_id()
    )
    frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    columns = {
        f.name: f.dataType for f in frame.schema.fields if f.name not in (_CORRUPT, _PATH, _ROW_ID)
    }
    return Group(probes=probes, frame=frame, columns=columns)


def _is_null_token(column: Column) -> Column:
    from pyspark.sql import functions as F  # noqa: N812

    return F.trim(column).isin(*NULL_TOKENS)


def _text_value(column: Column) -> Column:
    """A text value trimmed, with the null tokens as null (how typed columns read text)."""
    from pyspark.sql import functions as F  # noqa: N812

    trimmed = F.trim(column)
    return F.when(trimmed.isin(*NULL_TOKENS), F.lit(None)).otherwise(trimmed)


def _text_mask(value: Column) -> Column:
    """The ``FITS_MASK`` of one trimmed text value: one pass of cheap tests, most first
    (a word fails every pattern on its first character), null for a missing value."""
    from pyspark.sql import functions as F  # noqa: N812

    return (
        F.when(value.isNull(), F.lit(None))
        .when(value.rlike(_INTEGER) | value.rlike(_WHOLE), F.lit(FITS_MASK["bigint"]))
        .when(value.rlike(_DECIMAL), F.lit(FITS_MASK["double"]))
        .when(F.lower(value).isin("true", "false"), F.lit(FITS_MASK["boolean"]))
        # The patterns admit days that do not exist (2026-02-30): Spark's cast decides.
        .when(value.rlike(_DATE) & value.cast("date").isNotNull(), F.lit(FITS_MASK["date"]))
        .when(
            value.rlike(_TIMESTAMP) & value.cast("timestamp").isNotNull(),
            F.lit(FITS_MASK["timestamp"]),
        )
        .otherwise(F.lit(0))
    )


def _value_mask(column: Column, data_type: DataType, text_format: bool) -> Optional[Column]:
    """The ``FITS_MASK`` of a value read as ``data_type`` (None: not an inferred type)."""
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql import types as T  # noqa: N812

    if isinstance(data_type, T.StringType):
        return _text_mask(_text_value(column))
    name = spark_type_name(data_type)
    if name == "double" and text_format:  # Parquet's declared double stays a double
        # A whole number written as a float (JSON 181.0) is that integer, exactly.
        whole = ~F.isnan(column) & (F.abs(column) < 2.0**53) & (column == F.floor(column))
        return (
            F.when(column.isNull(), F.lit(None))
            .when(whole, F.lit(FITS_MASK["bigint"]))
            .otherwise(F.lit(FITS_MASK["double"]))
        )
    if name in FITS_MASK:
        return F.lit(FITS_MASK[name])
    return None


def _corrupt_texts(group: Group, row_ids: list[int]) -> dict[int, str]:
    """The raw text of the given malformed rows (a second look, only when there are any)."""
    from pyspark.sql import functions as F  # noqa: N812

    if not row_ids:
        return {}
    # Spark refuses a query on raw CSV/JSON that reads only the corrupt-record column: one
    # data column goes along (a file with none at all is reported without its text).
    data = [_quoted(name) for name in list(group.columns)[:1]]
    if not data:
        return {}
    found = (
        group.frame.where(F.col(_ROW_ID).isin(row_ids)).select(_ROW_ID, _CORRUPT, *data).collect()
    )
    return {int(r[_ROW_ID]): str(r[_CORRUPT]) for r in found}


def _has_replacement_char(group: Group) -> Column:
    """Whether a row holds U+FFFD anywhere (text columns, nested values, a malformed row)."""
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql import types as T  # noqa: N812

    found: list[Column] = [F.coalesce(F.instr(F.col(_CORRUPT), "\ufffd") > 0, F.lit(False))]
    for name, data_type in group.columns.items():
        column = F.col(_quoted(name))
        if isinstance(data_type, (T.StructType, T.ArrayType, T.MapType)):
            column = F.to_json(column)
        elif not isinstance(data_type, T.StringType):
            continue
        found.append(F.coalesce(F.instr(column, "\ufffd") > 0, F.lit(False)))
    result = found[0]
    for other in found[1:]:
        result = result | other
    return result


def collect_stats(spark: SparkSession, group: Group) -> None:
    """One aggregation pass: rows, malformed rows and, per column, the values present and the
    types they all fit, for every object of the group."""
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql import types as T  # noqa: N812

    # Per row: a 0/1 flag or a type mask per column, each text value classified once; then one
    # aggregation per object. Only numbers are aggregated, so Spark keeps a hash aggregation.
    text_format = group.probes[0].fmt != "parquet"
    flags: dict[str, Column] = {"_bad": F.col(_CORRUPT).isNotNull().cast("int")}
    if text_format:
        flags["_fffd"] = _has_replacement_char(group).cast("int")
    masked: list[tuple[int, str]] = []
    for index, (name, data_type) in enumerate(group.columns.items()):
        column = F.col(_quoted(name))
        present = column.isNotNull()
        if isinstance(data_type, T.StringType):
            present = present & ~_is_null_token(column)
        flags[f"n{index}"] = present.cast("int")
        mask = _value_mask(column, data_type, text_format)
        if mask is not None:
            flags[f"m{index}"] = mask
            masked.append((index, name))
    projected = group.frame.select(
        _PATH, _ROW_ID, *[flag.alias(name) for name, flag in flags.items()]
    )
    aggregates = [
        F.count(F.lit(1)).alias("rows"),
        F.min(_ROW_ID).alias("first_id"),
        F.min(F.when(F.col("_bad") == 1, F.col(_ROW_ID))).alias("corrupt_id"),
        *[
            (F.expr(f"bit_and({name})") if name.startswith("m") else F.sum(name)).alias(name)
            for name in flags
        ],
    ]
    rows = projected.groupBy(_PATH).agg(*aggregates).collect()
    corrupt_text = _corrupt_texts(group, [r["corrupt_id"] for r in rows if r["_bad"]])
    uris = {p.uri for p in group.probes}
    for row in rows:
        # Spark percent-encodes the path it read; decoding gives the object's URI back.
        decoded = unquote(row[_PATH])
        uri = decoded if decoded in uris else _match_path(decoded, uris)
        stats = FileStats(path=row[_PATH], rows=int(row["rows"]), corrupt=int(row["_bad"] or 0))
        if text_format:
            stats.replacement_chars = int(row["_fffd"] or 0)
        if stats.corrupt:
            stats.first_corrupt_row = int(row["corrupt_id"]) - int(row["first_id"]) + 1
            stats.first_corrupt_text = corrupt_text.get(int(row["corrupt_id"]))
        for index, name in enumerate(group.columns):
            stats.non_null[name] = int(row[f"n{index}"] or 0)
        for index, name in masked:
            if row[f"m{index}"] is not None:
                stats.masks[name] = int(row[f"m{index}"])
        group.stats[uri] = stats


def _match_path(path: str, uris: set[str]) -> str:
    """The object a file path Spark read belongs to, where a file system maps ``s3://``
    onto another scheme (the offline harness mounts buckets on local folders)."""
    for uri in sorted(uris, key=len, reverse=True):  # the longest match is the object
        if path.endswith("/" + uri.split("://", 1)[-1]):
            return uri
    raise RuntimeError(f"Spark read a file that no object of the run names: {path}")


_UTF8_CHUNK = 4 * 1024 * 1024


def utf8_problem(chunks: Iterable[bytes], compression: Optional[str]) -> Optional[str]:
    """Why a whole object is not UTF-8 text (the first bad byte's offset), else None."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    unpack: Any = None
    if compression == "gzip":
        unpack = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif compression == "bz2":
        unpack = bz2.BZ2Decompressor()
    offset = 0
    for raw in chunks:
        data = unpack.decompress(raw) if unpack is not None else raw
        try:
            decoder.decode(data)
        except UnicodeDecodeError as error:
            return (
                f"content is not UTF-8 text (byte {offset + error.start}: {data[error.start]:#04x})"
            )
        offset += len(data)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return f"content is not UTF-8 text (it ends inside a character, byte {offset})"
    return None


def check_utf8(spark: SparkSession, uri: str) -> Optional[str]:
    """Read the object's bytes through and decode them strictly (only objects whose rows
    hold U+FFFD: Spark's decoder writes it for bytes that are not UTF-8, and a file may hold
    the character itself)."""
    jvm = _jvm(spark)
    path = jvm.org.apache.hadoop.fs.Path(uri)
    stream = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).open(path)

    def chunks() -> Iterable[bytes]:
        while True:
            data = bytes(stream.readNBytes(_UTF8_CHUNK))
            if not data:
                return
            yield data

    try:
        return utf8_problem(chunks(), compression_of(uri))
    finally:
        stream.close()


# ---------------------------------------------------------------------------- types


def spark_type_name(data_type: DataType) -> str:
    """The table type of a column read with ``data_type`` (integers widen to ``bigint``)."""
    from pyspark.sql import types as T  # noqa: N812

    if isinstance(data_type, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return "bigint"
    if isinstance(data_type, (T.FloatType, T.DoubleType)):
        return "double"
    if isinstance(data_type, T.TimestampNTZType):
        return "timestamp"
    return str(data_type.simpleString())


def mask_type(mask: int) -> str:
    """The most specific type that represents every value of a ``FITS_MASK`` meet."""
    return next((name for name in TYPE_ORDER if mask & _BIT[name]), "string")


def join_types(left: str, right: str) -> str:
    """The least type both types fit: equal, widened (bigint -> double, date -> timestamp),
    or ``string``."""
    if left == right:
        return left
    if left in FITS_MASK and right in FITS_MASK:
        return mask_type(FITS_MASK[left] & FITS_MASK[right])
    return "string"


def fits(source: str, target: str, mask: Optional[int]) -> bool:
    """Whether values read as ``source`` (with the ``FITS_MASK`` meet ``mask`` of those
    present, where the source is an inferred type) land in the table's ``target`` type
    exactly."""
    if target in ("string", source):
        return True
    if mask is not None and target in _BIT:
        return bool(mask & _BIT[target])
    return join_types(source, target) == target


def column_type(data_type: DataType, mask: Optional[int]) -> str:
    """The type a column's present values give it in one object."""
    return mask_type(mask) if mask is not None else spark_type_name(data_type)


def cast_to(column: Column, source: Any, target: str) -> Column:
    """``column`` (read as ``source``) as the table's ``target`` type."""
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql import types as T  # noqa: N812

    if isinstance(source, T.StringType):
        if target == "string":  # verbatim, but a null token is missing here too
            return F.when(_is_null_token(column), F.lit(None)).otherwise(column)
        value = _text_value(column)
        if target == "bigint":  # 181.0 is 181: drop the zero fraction, then an exact cast
            return F.regexp_replace(value, r"\.0*$", "").cast("bigint")
        return value.cast(target)
    if target == "string" and isinstance(source, (T.StructType, T.ArrayType, T.MapType)):
        return F.to_json(column)
    return column.cast(target)


# ---------------------------------------------------------------------------- the table


@dataclass
class TableSchema:
    """The output table's columns and types, kept in ``<output_path>_schema.json``."""

    columns: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        fields = [{"name": n, "type": t} for n, t in self.columns.items()]
        return json.dumps({"columns": fields}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> TableSchema:
        return cls({c["name"]: c["type"] for c in json.loads(text)["columns"]})


@dataclass
class Outcome:
    """What happened to one object."""

    object: str
    status: str
    """``landed``, ``skipped``, ``refused`` or ``quarantined``."""
    reason: Optional[str] = None
    rows: int = 0
    copy: Optional[str] = None

    def entry(self) -> dict[str, Any]:
        data: dict[str, Any] = {"object": self.object}
        if self.status == "landed":
            data["rows"] = self.rows
        else:
            data["reason"] = self.reason
        if self.copy:
            data["copy"] = self.copy
        return data


def plan_columns(
    groups: list[Group], table: TableSchema, bad: dict[str, str]
) -> tuple[TableSchema, dict[str, str]]:
    """The table after this run (new columns typed from the data), and the objects whose
    values do not fit the table's existing types (added to ``bad``)."""
    for group in groups:
        for uri, stats in group.stats.items():
            if uri in bad or stats.corrupt:
                continue
            for name, data_type in group.columns.items():
                target = table.columns.get(name)
                if target is None or not stats.non_null.get(name):
                    continue
                mask = stats.masks.get(name)
                source = spark_type_name(data_type)
                if not fits(source, target, mask):
                    found = column_type(data_type, mask)
                    found = "text" if found == "string" and source == "string" else found
                    bad[uri] = (
                        f"column {name!r} holds {found} values that are not {target} "
                        "(the table's type for it)"
                    )
                    break
    new_types: dict[str, str] = {}
    for group in groups:
        for name, data_type in group.columns.items():
            if name in table.columns:
                continue
            for uri, stats in group.stats.items():
                if uri in bad or not stats.non_null.get(name):
                    continue  # no values yet: the column is added when it first has one
                found = column_type(data_type, stats.masks.get(name))
                new_types[name] = join_types(new_types.get(name, found), found)
    return TableSchema({**table.columns, **new_types}), bad


def bad_row_reason(probe: Probe, stats: FileStats) -> str:
    """Why rows of an object were malformed, with the first one's row number and text."""
    text = (stats.first_corrupt_text or "").rstrip("\r\n")
    where = f"data row {stats.first_corrupt_row}" if stats.first_corrupt_row else "a row"
    if probe.fmt == "csv":
        fields = len(next(csv.reader(io.StringIO(text, newline=""), delimiter=probe.sep), []))
        detail = f"{where} has {_count(fields, 'field')}, the header has {len(probe.header)}"
    elif probe.fmt == "json":
        where = where.replace("data row", "record")
        detail = f"{where} is not a JSON object"
    else:
        detail = f"{where} is unreadable"
    more = f" ({stats.corrupt} malformed rows in all)" if stats.corrupt > 1 else ""
    return f"{detail}{more}: {text[:120]!r}"


# ---------------------------------------------------------------------------- storage


class Storage:
    """Small files and renames through Hadoop's FileSystem (the script's only S3 client)."""

    def __init__(self, spark: SparkSession) -> None:
        self._jvm = _jvm(spark)
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _path(self, uri: str) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(uri)

    def _fs(self, path: Any) -> Any:
        return path.getFileSystem(self._conf)

    def read_text(self, uri: str) -> Optional[str]:
        path = self._path(uri)
        fs = self._fs(path)
        if not fs.exists(path):
            return None
        stream = fs.open(path)
        try:
            return bytes(stream.readAllBytes()).decode("utf-8")
        finally:
            stream.close()

    def write_text(self, uri: str, text: str) -> None:
        path = self._path(uri)
        stream = self._fs(path).create(path, True)
        try:
            stream.write(text.encode("utf-8"))
        finally:
            stream.close()

    def list_parts(self, directory: str) -> list[str]:
        """The ``part-`` files Spark wrote under ``directory`` (at any depth), sorted."""
        path = self._path(directory)
        fs = self._fs(path)
        if not fs.exists(path):
            return []
        found = []
        files = fs.listFiles(path, True)
        while files.hasNext():
            name = str(files.next().getPath().toString())
            if name.rsplit("/", 1)[-1].startswith("part-"):
                found.append(name)
        return sorted(found)

    def list_files(self, directory: str) -> list[str]:
        path = self._path(directory)
        fs = self._fs(path)
        if not fs.exists(path):
            return []
        return [str(s.getPath().toString()) for s in fs.listStatus(path) if s.isFile()]

    def delete(self, uri: str) -> None:
        path = self._path(uri)
        self._fs(path).delete(path, True)

    def rename(self, source: str, target: str) -> None:
        src, dst = self._path(source), self._path(target)
        fs = self._fs(dst)
        fs.mkdirs(dst.getParent())
        if not fs.rename(src, dst):
            raise RuntimeError(f"could not move {source} to {target}")

    def copy(self, source: str, target: str) -> None:
        src, dst = self._path(source), self._path(target)
        self._jvm.org.apache.hadoop.fs.FileUtil.copy(
            self._fs(src), src, self._fs(dst), dst, False, True, self._conf
        )


# ---------------------------------------------------------------------------- the catalog

PARQUET_SERDE = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    },
}


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
    def from_args(cls, args: dict[str, str]) -> Optional[CatalogTable]:
        database, table = args.get("catalog_database", ""), args.get("catalog_table", "")
        if not (database and table):
            return None
        return cls(database, table, args.get("catalog_region") or None)


def table_input(name: str, location: str, schema: TableSchema) -> dict[str, Any]:
    """The Glue table for the output: the schema's columns (Spark's type names are Hive's),
    the metadata columns, the ``ingestion_date`` partition, projected for Athena."""
    columns = [{"Name": n, "Type": t} for n, t in schema.columns.items()]
    columns += [
        {"Name": "_source_object", "Type": "string"},
        {"Name": "_ingested_at", "Type": "timestamp"},
    ]
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "StorageDescriptor": {"Columns": columns, "Location": location, **PARQUET_SERDE},
        "PartitionKeys": [{"Name": "ingestion_date", "Type": "string"}],
        "Parameters": {
            "classification": "parquet",
            "EXTERNAL": "TRUE",
            # Athena: partitions are computed, never listed or registered.
            "projection.enabled": "true",
            "projection.ingestion_date.type": "date",
            "projection.ingestion_date.format": "yyyy-MM-dd",
            "projection.ingestion_date.range": "2000-01-01,NOW",
            "projection.ingestion_date.interval": "1",
            "projection.ingestion_date.interval.unit": "DAYS",
            "storage.location.template": f"{location}ingestion_date=${{ingestion_date}}/",
        },
    }


_METADATA_TYPES = {"_source_object": "string", "_ingested_at": "timestamp"}
SCHEMA_ATTEMPTS = 5
"""How often a run re-reads and re-plans the schema when another run changed it first."""


class SchemaConflictError(Exception):
    """Another run changed the table's schema since this run read it."""


class FileSchemaStore:
    """The table's schema in ``<output_path>_schema.json`` (no catalog table kept).

    Hadoop's FileSystem has no conditional write: two runs adding columns at the same moment
    can race here (documented); the catalog store below cannot.
    """

    def __init__(self, storage: Storage, output: str) -> None:
        self._storage, self._uri = storage, f"{output}{SCHEMA_FILE}"

    def load(self) -> tuple[TableSchema, Any]:
        text = self._storage.read_text(self._uri)
        return (TableSchema.from_json(text) if text else TableSchema()), None

    def commit(self, schema: TableSchema, _version: Any) -> None:
        self._storage.write_text(self._uri, schema.to_json())


class CatalogSchemaStore:
    """The table's schema is the Glue Data Catalog table's: created on the first run, changed
    with the version read (Glue refuses a stale ``VersionId``), so concurrent runs agree."""

    def __init__(self, catalog: CatalogTable, location: str) -> None:
        self._catalog, self._location = catalog, location
        self._glue = catalog.client()

    def load(self) -> tuple[TableSchema, Any]:
        try:
            response = self._glue.get_table(
                DatabaseName=self._catalog.database, Name=self._catalog.table
            )
        except self._glue.exceptions.EntityNotFoundException:
            return TableSchema(), None
        columns = response["Table"]["StorageDescriptor"]["Columns"]
        schema = {c["Name"]: c["Type"] for c in columns if c["Name"] not in _METADATA_TYPES}
        return TableSchema(schema), response["Table"].get("VersionId")

    def commit(self, schema: TableSchema, version: Any) -> None:
        wanted = table_input(self._catalog.table, self._location, schema)
        errors = self._glue.exceptions
        try:
            if version is None:
                self._glue.create_table(DatabaseName=self._catalog.database, TableInput=wanted)
            else:
                self._glue.update_table(
                    DatabaseName=self._catalog.database, TableInput=wanted, VersionId=version
                )
        except (errors.AlreadyExistsException, errors.ConcurrentModificationException) as error:
            raise SchemaConflictError(str(error)) from error

    def register_partition(self, ingestion_date: str) -> None:
        """Spark, Hive and Trino read registered partitions (Athena projects them)."""
        storage = table_input(self._catalog.table, self._location, TableSchema())
        partition = {
            "Values": [ingestion_date],
            "StorageDescriptor": {
                **storage["StorageDescriptor"],
                "Location": f"{self._location}ingestion_date={ingestion_date}/",
            },
        }
        response = self._glue.batch_create_partition(
            DatabaseName=self._catalog.database,
            TableName=self._catalog.table,
            PartitionInputList=[partition],
        )
        for error in response.get("Errors", []):
            if error["ErrorDetail"]["ErrorCode"] != "AlreadyExistsException":
                raise RuntimeError(
                    f"registering partition {ingestion_date}: {error['ErrorDetail']}"
                )


Stage = Callable[[TableSchema, dict[str, str]], dict[str, str]]
"""Writes the landing objects' rows in the planned table, off to the side; returns the
objects whose rows could not be written, with why."""


def settle_schema(
    store: FileSchemaStore | CatalogSchemaStore,
    groups: list[Group],
    bad: dict[str, str],
    stage: Optional[Stage] = None,
) -> tuple[TableSchema, dict[str, str]]:
    """Plan the table's columns against its current schema, write the rows (``stage``), then
    commit the columns of what was written; if another run committed first, plan and write
    again against what it committed. So the table changes only for data that lands."""
    for _attempt in range(SCHEMA_ATTEMPTS):
        current, version = store.load()
        planned, planned_bad = plan_columns(groups, current, dict(bad))
        # Each round refuses at least one more object: the loop ends.
        while stage is not None:
            failed = stage(planned, planned_bad)
            if not failed:
                break
            planned_bad.update(failed)
            replanned, planned_bad = plan_columns(groups, current, planned_bad)
            if replanned == planned:
                break  # the others' staged files hold exactly the planned columns
            planned = replanned
        if planned == current:
            return planned, planned_bad
        try:
            store.commit(planned, version)
        except SchemaConflictError:
            continue
        return planned, planned_bad
    raise RuntimeError(
        f"the table's schema changed under this run {SCHEMA_ATTEMPTS} times: try again"
    )


# ---------------------------------------------------------------------------- the run


@dataclass
class RunReport:
    """What one run did, object by object (``_runs/<batch_id>.json``)."""

    batch_id: str
    ingestion_date: str
    ingested_at: str
    status: str = "STARTED"
    outcomes: list[Outcome] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    cause: str = ""

    def by_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def rows(self) -> int:
        return sum(o.rows for o in self.by_status("landed"))

    def full(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "batch_id": self.batch_id,
            "status": self.status,
            "ingestion_date": self.ingestion_date,
            "ingested_at": self.ingested_at,
            "rows": self.rows,
            "files": self.files,
            "cause": self.cause,
        }
        for status in ("landed", "skipped", "quarantined", "refused"):
            data[status] = [o.entry() for o in self.by_status(status)]
        return data

    def summary(self) -> dict[str, Any]:
        """The short form the workflow reads: every key always present, lists capped."""
        data: dict[str, Any] = {
            "batch_id": self.batch_id,
            "status": self.status,
            "rows": self.rows,
            "landed": len(self.by_status("landed")),
            "cause": self.cause,
        }
        for status in ("skipped", "quarantined", "refused"):
            entries = [o.entry() for o in self.by_status(status)]
            for entry in entries:
                entry["reason"] = str(entry.get("reason", ""))[:300]
            data[status] = entries[:REPORT_LIST_LIMIT]
            data[f"{status}_count"] = len(entries)
        return data


SESSION_SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    # Parquet TIMESTAMP(NANOS) (pandas' default) is read as epoch nanoseconds, then converted.
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.files.ignoreMissingFiles": "false",
    # JSON keys and Parquet fields that differ only in case (Name, name) are two columns
    # (normalised to name, name_2), not an ambiguous one.
    "spark.sql.caseSensitive": "true",
    # A cast that does not apply gives null (the type checks decide first), on Spark 3.5 and 4.
    "spark.sql.ansi.enabled": "false",
    # Dates before 1582 and timestamps before 1900 (historical data) are written and read as
    # they are, in the proleptic Gregorian calendar that Spark 3+, Athena, Trino and pyarrow
    # use; Spark's default refuses to write them. See the Glue 3.0 migration notes:
    # https://docs.aws.amazon.com/glue/latest/dg/migrating-version-30.html
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInRead": "CORRECTED",
}
"""Session settings the data contract relies on, set for the duration of a run."""


@contextmanager
def session_settings(spark: SparkSession) -> Iterator[None]:
    """``SESSION_SETTINGS`` for the run, the session's own values back afterwards (the
    offline harness shares one session with other scripts)."""
    saved: dict[str, Optional[str]] = {key: spark.conf.get(key, None) for key in SESSION_SETTINGS}
    for key, value in SESSION_SETTINGS.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, before in saved.items():
            if before is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, before)


def run(
    spark: SparkSession,
    uris: Sequence[str],
    output_path: str,
    *,
    batch_id: str,
    bad_records: str = "fail",
    quarantine_path: str = "",
    ingested_at: Optional[datetime] = None,
    catalog: Optional[CatalogTable] = None,
) -> RunReport:
    """Land ``uris`` in the table at ``output_path``; return what happened to each object.

    Raises :class:`JobInputError` (after landing the good objects and writing the report)
    when ``bad_records`` is ``fail`` and an object was refused.
    """
    _check_run_arguments(output_path, bad_records, quarantine_path)
    with session_settings(spark):
        return _run(
            spark,
            uris,
            output_path,
            batch_id=batch_id,
            bad_records=bad_records,
            quarantine_path=quarantine_path,
            ingested_at=ingested_at,
            catalog=catalog,
        )


def _run(
    spark: SparkSession,
    uris: Sequence[str],
    output_path: str,
    *,
    batch_id: str,
    bad_records: str,
    quarantine_path: str,
    ingested_at: Optional[datetime],
    catalog: Optional[CatalogTable],
) -> RunReport:
    output = output_path if output_path.endswith("/") else f"{output_path}/"
    storage = Storage(spark)
    report_uri = f"{output}{RUNS_DIR}/{batch_id}.json"
    report = _start_report(storage, report_uri, batch_id, ingested_at)
    # Only the name's own ending: a bucket or prefix may hold ".json" too (logs.json.example).
    summary_uri = summary_uri_of(report_uri)
    # Both rewritten now: a retry that fails another way must not be notified with the
    # cause an earlier attempt left behind.
    storage.write_text(report_uri, json.dumps(report.full()))
    storage.write_text(summary_uri, json.dumps(report.summary()))

    probes = probe_objects(spark, uris)
    bad: dict[str, str] = {p.uri: p.problem for p in probes if p.problem}
    skipped: dict[str, str] = {p.uri: p.skip for p in probes if p.skip and not p.problem}
    readable = [p for p in probes if p.uri not in bad and p.uri not in skipped]
    groups: dict[tuple[Any, ...], list[Probe]] = {}
    for probe in readable:
        groups.setdefault(probe.group, []).append(probe)
    read = [read_group(spark, members) for members in groups.values()]
    try:
        _classify_rows(spark, read, bad, skipped)
        store = CatalogSchemaStore(catalog, output) if catalog else FileSchemaStore(storage, output)
        staging = f"{output}{STAGING_DIR}/{report.batch_id}/"
        staged: list[str] = []
        sizes = {p.uri: p.size for p in probes}

        def stage(table: TableSchema, refused: dict[str, str]) -> dict[str, str]:
            landing = {
                p.uri
                for g in read
                for p in g.probes
                if p.uri not in refused and p.uri not in skipped
            }
            failed, staged[:] = _write_staging(
                spark,
                storage,
                groups=read,
                table=table,
                landing=landing,
                staging=staging,
                report=report,
                sizes=sizes,
            )
            return failed

        _table, bad = settle_schema(store, read, bad, stage)
        report.files = _publish(storage, staged, staging, output, report)
        if report.files and isinstance(store, CatalogSchemaStore):
            store.register_partition(report.ingestion_date)
    finally:
        for group in read:
            group.frame.unpersist()

    for probe in probes:
        uri = probe.uri
        if uri in bad:
            report.outcomes.append(
                _refuse(
                    storage,
                    uri,
                    bad[uri],
                    bad_records=bad_records,
                    quarantine_path=quarantine_path,
                    batch_id=batch_id,
                )
            )
        elif uri in skipped:
            report.outcomes.append(Outcome(uri, "skipped", skipped[uri]))
        else:
            rows = next(g.stats[uri].rows for g in read if uri in g.stats)
            report.outcomes.append(Outcome(uri, "landed", rows=rows))
    refused = report.by_status("refused")
    report.status = "FAILED" if refused else "SUCCEEDED"
    if refused:
        report.cause = refusal_cause(refused, report_uri)
    storage.write_text(report_uri, json.dumps(report.full()))
    storage.write_text(summary_uri, json.dumps(report.summary()))
    if refused:
        raise JobInputError(report.cause)
    return report


def _classify_rows(
    spark: SparkSession, groups: list[Group], bad: dict[str, str], skipped: dict[str, str]
) -> None:
    """Objects with malformed rows or bytes that are not UTF-8 are bad, objects without rows
    are skipped."""
    for group in groups:
        collect_stats(spark, group)
        odd_name = any("\ufffd" in name for name in group.columns)
        for probe in group.probes:
            stats = group.stats.get(probe.uri, FileStats())
            problem = None
            if probe.fmt != "parquet" and (stats.replacement_chars or odd_name):
                problem = check_utf8(spark, probe.uri)
            if problem:
                bad[probe.uri] = problem
            elif stats.corrupt:
                bad[probe.uri] = bad_row_reason(probe, stats)
            elif stats.rows == 0:
                skipped[probe.uri] = "no data rows" + (" (header only)" if probe.header else "")


CAUSE_LINES = 20
CAUSE_CHARS = 8_000
"""A failure's cause stays well inside Step Functions' 32,768 characters and SNS's 256 KB."""


def summary_uri_of(report_uri: str) -> str:
    """``.../<batch_id>.summary.json`` beside the run report ``.../<batch_id>.json``."""
    return f"{report_uri.removesuffix('.json')}.summary.json"


def refusal_cause(refused: Sequence[Outcome], report_uri: str = "") -> str:
    """First line: the first refused object and why; then the others, a line each, up to
    ``CAUSE_LINES`` lines and ``CAUSE_CHARS`` characters (the report lists them all)."""
    lines = [f"{o.object}: {o.reason}" for o in refused]
    if len(refused) > 1:
        lines.insert(1, f"{len(refused)} objects refused (bad_records=fail); the others:")
    kept: list[str] = []
    for line in lines[:CAUSE_LINES]:
        if kept and sum(len(k) + 1 for k in kept) + len(line) > CAUSE_CHARS:
            break
        kept.append(line[:CAUSE_CHARS])
    left = len(lines) - len(kept)
    if left:
        where = f" (every one is in {report_uri})" if report_uri else ""
        kept.append(f"... and {left} more{where}")
    return "\n".join(kept)


def _check_run_arguments(output_path: str, bad_records: str, quarantine_path: str) -> None:
    if not output_path:
        raise JobInputError("--output_path is required (the table's s3:// prefix)")
    if bad_records not in BAD_RECORDS_MODES:
        raise JobInputError(
            f"--bad_records must be one of {', '.join(BAD_RECORDS_MODES)}, got {bad_records!r}"
        )
    if bad_records == "quarantine" and not quarantine_path:
        raise JobInputError("--bad_records quarantine needs --quarantine_path (an s3:// prefix)")


def _start_report(
    storage: Storage, report_uri: str, batch_id: str, ingested_at: Optional[datetime]
) -> RunReport:
    """A re-run of the same input keeps the first run's partition and timestamp, so its
    output lands in the same place and replaces the earlier attempt's."""
    earlier = storage.read_text(report_uri)
    if earlier:
        data = json.loads(earlier)
        return RunReport(batch_id, data["ingestion_date"], data["ingested_at"])
    moment = ingested_at or datetime.now(timezone.utc).replace(tzinfo=None)
    return RunReport(batch_id, moment.strftime("%Y-%m-%d"), moment.isoformat(sep=" "))


def _project(
    spark: SparkSession, group: Group, table: TableSchema, landing: set[str], report: RunReport
) -> DataFrame:
    """The group's landing rows in the table's columns and types, with the metadata (and
    ``_row_id``, to spread the rows over the writers)."""
    from pyspark.sql import functions as F  # noqa: N812

    paths = spark.createDataFrame(
        [(group.stats[p.uri].path, p.uri) for p in group.probes if p.uri in landing],
        f"{_PATH} string, _source_object string",
    )
    selected = [
        cast_to(F.col(_quoted(name)), group.columns[name], type_name).alias(name)
        if name in group.columns
        else F.lit(None).cast(type_name).alias(name)
        for name, type_name in table.columns.items()
    ]
    frame = group.frame.join(F.broadcast(paths), _PATH)
    return frame.select(
        *selected,
        F.col("_source_object"),
        F.lit(report.ingested_at).cast("timestamp").alias("_ingested_at"),
        F.col(_ROW_ID),
    )


# Spark's exceptions for a value it cannot write or convert: the object's data, not the run.
_DATA_ERRORS = (
    "SparkUpgradeException",
    "SparkArithmeticException",
    "SparkDateTimeException",
    "SparkNumberFormatException",
    "java.lang.ArithmeticException",
    "java.time.DateTimeException",
    "java.lang.NumberFormatException",
)


def _java_causes(error: BaseException) -> list[Any]:
    """The Java exception behind a PySpark error and its causes, outermost first."""
    found = getattr(error, "java_exception", None) or getattr(error, "_origin", None)
    causes: list[Any] = []
    while found is not None and len(causes) < 20:
        causes.append(found)
        found = found.getCause()
    return causes


def data_error_message(error: BaseException) -> Optional[str]:
    """The one-line message of the data problem that failed a write, or None when the error
    is not about the data (the run then fails as it is, to be retried)."""
    for cause in reversed(_java_causes(error)):
        name = str(cause.getClass().getName())
        if any(name.endswith(kind.rsplit(".", 1)[-1]) for kind in _DATA_ERRORS):
            text = " ".join(str(cause.getMessage() or name).split())
            return text[:300]
    return None


def _write_parquet(frame: DataFrame, files: int, target: str) -> None:
    """``files`` Parquet files: the rows spread by a shuffle when there are more partitions
    (so reading, casting and encoding keep the parallelism the data has)."""
    from pyspark.sql import functions as F  # noqa: N812

    if frame.rdd.getNumPartitions() > files:
        frame = frame.repartition(files, F.col(_ROW_ID))
    frame.drop(_ROW_ID).write.mode("overwrite").parquet(target)


def _write_staging(
    spark: SparkSession,
    storage: Storage,
    *,
    groups: list[Group],
    table: TableSchema,
    landing: set[str],
    staging: str,
    report: RunReport,
    sizes: dict[str, int],
) -> tuple[dict[str, str], list[str]]:
    """Write the landing objects' rows under ``staging``; when Spark cannot write some rows,
    write object by object so only the objects at fault are left out. Returns those objects
    with why, and the files written."""
    from pyspark.sql import functions as F  # noqa: N812

    storage.delete(staging)
    frames = [
        _project(spark, g, table, landing, report)
        for g in groups
        if any(p.uri in landing for p in g.probes)
    ]
    if not frames:
        return {}, []
    combined = frames[0]
    for frame in frames[1:]:
        combined = combined.unionByName(frame)
    files = max(1, math.ceil(sum(sizes[u] for u in landing) / _TARGET_FILE_BYTES))
    try:
        _write_parquet(combined, files, staging)
        return {}, storage.list_parts(staging)
    except Exception as error:
        if data_error_message(error) is None:
            raise
    storage.delete(staging)
    failed: dict[str, str] = {}
    for index, uri in enumerate(sorted(landing)):
        target = f"{staging}object-{index:06d}/"
        try:
            own = combined.where(F.col("_source_object") == uri)
            _write_parquet(own, max(1, math.ceil(sizes[uri] / _TARGET_FILE_BYTES)), target)
        except Exception as error:
            message = data_error_message(error)
            if message is None:
                raise
            failed[uri] = f"its rows cannot be written as Parquet: {message}"
            storage.delete(target)
    return failed, storage.list_parts(staging)


def _publish(
    storage: Storage, staged: list[str], staging: str, output: str, report: RunReport
) -> list[str]:
    """Replace this batch's earlier files with the staged ones.

    Files are named ``<batch_id>-<n>.parquet`` in the run's ``ingestion_date`` partition: a
    re-run of the same input removes its earlier files before its own appear.
    """
    partition = f"{output}ingestion_date={report.ingestion_date}/"
    for old in storage.list_files(partition):
        if old.rsplit("/", 1)[-1].startswith(f"{report.batch_id}-"):
            storage.delete(old)
    written: list[str] = []
    for index, part in enumerate(staged):
        target = f"{partition}{report.batch_id}-{index:05d}.snappy.parquet"
        storage.rename(part, target)
        written.append(target)
    storage.delete(staging)
    return written


def _refuse(
    storage: Storage,
    uri: str,
    reason: str,
    *,
    bad_records: str,
    quarantine_path: str,
    batch_id: str,
) -> Outcome:
    if bad_records != "quarantine":
        return Outcome(uri, "refused", reason)
    base = quarantine_path if quarantine_path.endswith("/") else f"{quarantine_path}/"
    copy = f"{base}{batch_id}/{uri.split('://', 1)[-1]}"
    storage.copy(uri, copy)
    storage.write_text(
        f"{copy}.reason.json", json.dumps({"object": uri, "reason": reason, "batch_id": batch_id})
    )
    return Outcome(uri, "quarantined", reason, copy=copy)


def _jvm(spark: SparkSession) -> Any:
    """Spark's JVM gateway: Hadoop's FileSystem and Parquet's footer reader live there."""
    jvm = spark.sparkContext._jvm
    if jvm is None:  # pragma: no cover - only on a stopped session
        raise RuntimeError("the Spark session has no JVM gateway (was it stopped?)")
    return jvm


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def configure(spark: SparkSession) -> None:
    """Session settings the data contract relies on (``run`` also sets them for its run)."""
    for key, value in SESSION_SETTINGS.items():
        spark.conf.set(key, value)


def main(argv: Optional[Sequence[str]] = None) -> RunReport:
    """Entry point on Glue (and under the offline harness): parse arguments, run, report."""
    from pyspark.sql import SparkSession

    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.appName("event-driven-etl").getOrCreate()
    configure(spark)
    uris = object_uris(spark, args)
    report = run(
        spark,
        uris,
        args.get("output_path", ""),
        batch_id=batch_id_of(args, uris),
        bad_records=args.get("bad_records", "fail") or "fail",
        quarantine_path=args.get("quarantine_path", ""),
        catalog=CatalogTable.from_args(args),
    )
    summary = report.summary()
    print(json.dumps({"message": "etl finished", **{k: summary[k] for k in ("rows", "landed")}}))
    return report


if __name__ == "__main__":
    main()

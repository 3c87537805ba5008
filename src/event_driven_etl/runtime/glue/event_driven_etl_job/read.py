"""Stage 3, read: one ``spark.read`` per group of objects of one format and layout (two for
CSV when some large objects are proven to have no quoted line break: those are read line by
line, in splits), with column names normalised, Parquet's nanosecond timestamps converted,
and each row's file and position kept (``_path``, ``_block_start``, ``_row_id``) for the
stages after."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import reduce
from typing import Any, Optional
from urllib.parse import unquote

from pyspark import StorageLevel
from pyspark.sql import DataFrame, DataFrameReader, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.types import DataType

from .names import compression_of, hadoop_path, normalise_column_names, quoted
from .probe import SPLITTABLE_CSV_BYTES, Probe

CORRUPT = "_corrupt_record"
PATH = "_path"
BLOCK = "_block_start"
"""The byte offset of the split of the file a row was read from (0: the whole file)."""
ROW_ID = "_row_id"
"""Increasing and consecutive within one split of one file (``monotonically_increasing_id``)."""


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


def nanos_expression(ref: str, data_type: DataType, shape: NanosShape, depth: int = 0) -> str:
    """SQL turning the epoch nanoseconds in ``ref`` (Spark reads them as longs) into
    timestamps (to the microsecond, rounded down), keeping every other value as it is."""
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
                f"{ref}.{quoted(item.name)}", item.dataType, shape[1].get(item.name), depth
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
    """column -> whether values are present, non-zero if so (a text null token is missing;
    a count for columns of types not inferred, 1 for the others)."""
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
    first = probes[0]
    paths = [hadoop_path(p.uri) for p in probes]
    reader = _reader(spark)
    if first.fmt == "csv":
        frame = _csv_frame(spark, probes)
    elif first.fmt == "json":
        frame = reader.option("multiLine", first.json_layout == "array").json(paths)
        if CORRUPT not in frame.columns:
            frame = frame.withColumn(CORRUPT, F.lit(None).cast("string"))
        # Spark sorts inferred JSON fields by name: the corrupt-record column may be anywhere.
        data = [c for c in frame.columns if c != CORRUPT]
        frame = frame.select(*[quoted(c) for c in data], CORRUPT)
        frame = frame.toDF(*normalise_column_names(data), CORRUPT)
    else:
        frame = reader.parquet(*paths)
        shapes = {n.name: nanos_shape(n) for n in parse_parquet_schema(first.parquet_schema)}
        converted = [
            F.expr(nanos_expression(quoted(f.name), f.dataType, shapes.get(f.name))).alias(f.name)
            if shapes.get(f.name)
            else F.col(quoted(f.name))
            for f in frame.schema.fields
        ]
        frame = frame.select(*converted)
        frame = frame.toDF(*normalise_column_names(frame.columns)).withColumn(
            CORRUPT, F.lit(None).cast("string")
        )
    if first.fmt != "csv":
        frame = _with_file_columns(frame)
    frame = frame.withColumn(ROW_ID, F.monotonically_increasing_id())
    frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    columns = {
        f.name: f.dataType
        for f in frame.schema.fields
        if f.name not in (CORRUPT, PATH, BLOCK, ROW_ID)
    }
    return Group(probes=probes, frame=frame, columns=columns)


def _reader(spark: SparkSession) -> DataFrameReader:
    return spark.read.option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT)


def _with_file_columns(frame: DataFrame) -> DataFrame:
    """``_path`` and ``_block_start``: the file and the split of it each row was read from."""
    return frame.withColumn(PATH, F.input_file_name()).withColumn(
        BLOCK, F.expr("input_file_block_start()")
    )


def _csv_frame(spark: SparkSession, probes: list[Probe]) -> DataFrame:
    """The group's CSV rows: large uncompressed objects that Spark would cut into several
    splits and that are proven to hold no quoted line break are read line by line (in
    several tasks each), the others whole (``multiLine``: one task per object), in one frame
    with the same columns."""
    first = probes[0]
    large = [p for p in probes if p.size >= SPLITTABLE_CSV_BYTES and compression_of(p.uri) is None]
    # Only objects Spark would cut into several splits are worth the proof's pass.
    split = split_bytes(spark, [p.size for p in large])
    worth = [p for p in large if p.size > split]
    proven = set(objects_without_quoted_line_breaks(spark, worth, first.sep))
    whole = [p for p in probes if p.uri not in proven]
    by_line = [p for p in probes if p.uri in proven]
    parts = [
        _with_file_columns(_csv_read(spark, members, first, by_line=mode))
        for members, mode in ((whole, False), (by_line, True))
        if members
    ]
    frame = reduce(DataFrame.union, parts)
    return frame.toDF(*normalise_column_names(first.header), CORRUPT, PATH, BLOCK)


def _csv_read(
    spark: SparkSession, probes: list[Probe], first: Probe, *, by_line: bool
) -> DataFrame:
    """The objects' rows as text in the header's columns (``c0``, ``c1`` ...) and a malformed
    row's text; ``by_line``: line by line, so Spark splits the objects (else whole)."""
    raw = [f"c{i}" for i in range(len(first.header))]
    schema = T.StructType(
        [T.StructField(n, T.StringType()) for n in raw] + [T.StructField(CORRUPT, T.StringType())]
    )
    return (
        _reader(spark)
        .schema(schema)
        .option("header", True)  # Spark drops the first line of the split at offset 0 only
        # RFC 4180: quoted fields may hold newlines, unless proven not to (then splittable).
        .option("multiLine", not by_line)
        .option("escape", '"')  # RFC 4180: a quote inside quotes is doubled
        .option("sep", first.sep)
        .csv([hadoop_path(p.uri) for p in probes])
    )


def split_bytes(spark: SparkSession, sizes: list[int]) -> int:
    """The size of the splits Spark cuts files of ``sizes`` into when it reads them together:
    ``spark.sql.files.maxPartitionBytes``, less when there are more cores than 128 MB pieces
    (Spark's ``FilePartition.maxSplitBytes``: the bytes, each file counted with the cost of
    opening it, shared by the cores, at least that cost)."""
    session = spark._jsparkSession  # the session's settings as Spark resolves them
    conf = session.sessionState().conf()
    open_cost = int(conf.filesOpenCostInBytes())
    minimum = conf.filesMinPartitionNum()
    cores = int(minimum.get()) if minimum.isDefined() else int(session.leafNodeDefaultParallelism())
    total = sum(size + open_cost for size in sizes)
    return min(int(conf.filesMaxPartitionBytes()), max(open_cost, total // max(1, cores)))


def quoted_fields_pattern(sep: str) -> str:
    """A Java regular expression for a complete RFC 4180 quoted field at the start of a line
    or after ``sep`` (group 1), ending before ``sep`` or the line's end."""
    s = f"[{sep}]"  # a character class: the separators (, ; | tab) taken literally
    return f'(^|{s})"[^"]*(?:""[^"]*)*+"(?={s}|$)'


def objects_without_quoted_line_breaks(
    spark: SparkSession, probes: list[Probe], sep: str
) -> list[str]:
    r"""The objects (URIs) whose every line is a complete CSV record and ends as the first
    line does: read line by line, they give exactly the rows a ``multiLine`` read gives.
    One splittable pass over them all (one per kind of line break).

    The proof. A ``multiLine`` read takes the first line's break (``\n`` or ``\r\n``; the
    probe saw it) as the object's line break; the line-by-line read (Hadoop's
    ``LineRecordReader``) breaks lines at ``\n``, ``\r\n`` and ``\r`` alike. So every line
    must end with the first line's break (the last may end the object without one; the
    object's last bytes tell), and no ``\r`` may stand elsewhere: then both reads see the
    same lines. Call a line *complete* when it is a sequence of fields joined by ``sep``,
    each field either free of ``"`` or a quoted field ``"..."`` whose inner quotes are
    doubled (``""``); equivalently, removing every quoted field that begins at the line's
    start or after ``sep`` and ends before ``sep`` or the line's end
    (:func:`quoted_fields_pattern`) leaves no ``"``. An RFC 4180 parser (quote ``"``, escape
    ``"``) that starts a complete line outside quotes ends it outside quotes, having read
    the same fields the line alone gives: a quote opens only at a field's start, inside
    quotes ``""`` is one quote and a lone ``"`` closes the field, exactly the shape the
    pattern matches (it prefers a pair to a close, as the parser does; closing on the first
    quote of a pair would need a separator after it, not a quote). The parser starts the
    object outside quotes; by induction on the lines it starts every line outside quotes,
    so no record spans a line break, and the records are the lines, parsed alike.

    A line that is not complete (a quote inside an unquoted field, a quoted field that goes
    on past the line, a BOM before a quoted first field) keeps the object on ``multiLine``:
    the proof is conservative. So does a line of only white space (the line-by-line read
    skips it as empty), and mixed line breaks. The quote count's parity would not do: in
    ``a,b"c,"d`` the first quote is text, the second opens a field that goes on past the
    line, yet the count is even.
    """
    candidates = {p.uri: p for p in probes if p.line_end in ("\n", "\r\n")}
    refused: set[str] = set()
    for line_end in ("\n", "\r\n"):
        members = {uri: p for uri, p in candidates.items() if p.line_end == line_end}
        if members:
            refused |= _refused_objects(spark, members, sep, crlf_objects=line_end == "\r\n")
    return [uri for uri in candidates if uri not in refused]


def _refused_objects(
    spark: SparkSession, probes: dict[str, Probe], sep: str, *, crlf_objects: bool
) -> set[str]:
    """The objects (all of whose first line ends with ``\\r\\n`` if ``crlf_objects``, else
    ``\\n``) that hold a line that is not complete, or that ends otherwise."""
    # Lines broken at \n only, so that every \r stays in sight.
    lines = spark.read.option("lineSep", "\n").text([hadoop_path(u) for u in probes])
    value = F.col("value")
    crlf = value.endswith("\r")
    line = F.when(crlf, F.expr("substring(value, 1, length(value) - 1)")).otherwise(value)
    # A line without a quote needs no pattern (Spark's AND skips its right side when false).
    left = F.regexp_replace(line, quoted_fields_pattern(sep), "$1")
    incomplete = (F.instr(line, '"') > 0) & (F.instr(left, '"') > 0)
    # White space as Java's String.trim sees it: the line-by-line read skips such lines.
    blank = (F.substring(line, 1, 1) <= " ") & line.rlike("^[\\x00-\\x20]+$")
    bad = incomplete | blank | (F.instr(line, "\r") > 0)
    other_end = ~crlf if crlf_objects else crlf
    # Only the lines that break a rule (few or none) are grouped by object: a cheap pass.
    found = (
        lines.where(bad | other_end)
        .groupBy(F.input_file_name().alias(PATH))
        .agg(F.sum(bad.cast("int")).alias("bad"), F.count(F.lit(1)).alias("other"))
        .collect()
    )
    counts = {object_uri(row[PATH], set(probes)): (row["bad"], row["other"]) for row in found}
    refused = set()
    for uri, probe in probes.items():
        bad_lines, other_lines = counts.get(uri, (0, 0))
        if bad_lines or not _same_line_breaks(probe, int(other_lines)):
            refused.add(uri)
    return refused


def _same_line_breaks(probe: Probe, other_lines: int) -> bool:
    """Whether every line of the object ends as its first line does, given how many lines
    (broken at ``\\n``) end otherwise; the last line may end the object without a line
    break (its last bytes tell)."""
    if probe.line_end == "\n":
        return other_lines == 0
    if probe.tail.endswith(b"\r\n"):
        return other_lines == 0
    if probe.tail.endswith((b"\n", b"\r")):
        return False  # the last line ends with another line break
    return other_lines == 1  # the last line, without a line break


def object_uri(path: str, uris: set[str]) -> str:
    """The object a file path Spark read belongs to (Spark percent-encodes the path it read;
    decoding gives the object's URI back), also where a file system maps ``s3://`` onto
    another scheme (the offline harness mounts buckets on local folders)."""
    decoded = unquote(path)
    if decoded in uris:
        return decoded
    for uri in sorted(uris, key=len, reverse=True):  # the longest match is the object
        if decoded.endswith("/" + uri.split("://", 1)[-1]):
            return uri
    raise RuntimeError(f"Spark read a file that no object of the run names: {path}")

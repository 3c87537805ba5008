"""Stage 3, read: one ``spark.read`` per group of objects of one format and layout, with
column names normalised, Parquet's nanosecond timestamps converted, and each row's file and
position kept (``_path``, ``_row_id``) for the stages after."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.types import DataType

from .names import hadoop_path, normalise_column_names, quoted
from .probe import Probe

CORRUPT = "_corrupt_record"
PATH = "_path"
ROW_ID = "_row_id"


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
    reader = spark.read.option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT)
    if first.fmt == "csv":
        raw = [f"c{i}" for i in range(len(first.header))]
        schema = T.StructType(
            [T.StructField(n, T.StringType()) for n in raw]
            + [T.StructField(CORRUPT, T.StringType())]
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
        frame = frame.toDF(*names, CORRUPT)
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
    frame = frame.withColumn(PATH, F.input_file_name()).withColumn(
        ROW_ID, F.monotonically_increasing_id()
    )
    frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    columns = {
        f.name: f.dataType for f in frame.schema.fields if f.name not in (CORRUPT, PATH, ROW_ID)
    }
    return Group(probes=probes, frame=frame, columns=columns)

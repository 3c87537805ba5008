"""Stage 1, probe: what each object's size and first bytes (and a Parquet footer) say about
it, before Spark reads it: its format and layout, or why it is refused or skipped.

Also the whole-object UTF-8 check the profile stage asks for when Spark's decoder marked a
row with U+FFFD.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import io
import json
import re
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Optional

from pyspark.sql import SparkSession

from .errors import JobInputError
from .names import (
    CSV_SUFFIXES,
    PARQUET_SUFFIXES,
    SUFFIX_OF,
    compression_of,
    first_line,
    object_format,
    strip_compression,
)
from .storage import bucket_of, hadoop_conf, jvm

_PEEK_BYTES = 64 * 1024
SPLITTABLE_CSV_BYTES = 8 * 1024 * 1024
"""The smallest CSV object worth proving splittable (the read stage): twice Spark's default
cost of opening a file (``spark.sql.files.openCostInBytes``, 4 MB), under which Spark never
makes two splits of one file, so a line-by-line read could not spread it over more tasks."""
_BZ2_PEEK_BYTES = 1024 * 1024  # a bzip2 block is up to 900 kB: peek far enough to see rows


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
    line_end: str = ""
    """CSV: how the first line ends (``\\n``, ``\\r\\n``, ``\\r``; empty: the peek holds one
    line), the line break a whole-object read expects throughout."""
    tail: bytes = b""
    """The object's last bytes (up to 4; Parquet and CSV)."""

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
    probe = Probe(uri=uri, size=size, tail=tail)
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
    if compression is None and kind in SUFFIX_OF:
        return f"content is {kind}-compressed but the key does not end in {SUFFIX_OF[kind]}"
    if compression is not None and kind != compression:
        return f"the key ends in {SUFFIX_OF[compression]} but the content is not {compression}"
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
    line_end = re.search(r"\r\n|\r|\n", text)
    probe.line_end = line_end.group() if line_end else ""
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
    gateway, conf = jvm(spark), hadoop_conf(spark)
    file_systems: dict[str, Any] = {}  # one per bucket: getFileSystem is a round trip

    def probe(uri: str) -> Probe:
        path = gateway.org.apache.hadoop.fs.Path(uri)
        bucket = bucket_of(uri) or ""
        fs = file_systems.get(bucket) or file_systems.setdefault(bucket, path.getFileSystem(conf))
        parquet = strip_compression(uri.lower()).endswith(PARQUET_SUFFIXES)
        # A large CSV object's last bytes say whether its last line ends with a line break.
        csv_text = uri.lower().endswith(CSV_SUFFIXES)
        peek = _BZ2_PEEK_BYTES if uri.lower().endswith(".bz2") else _PEEK_BYTES
        try:
            size, head, tail = _read_ends(fs, path, peek, parquet, csv_text)
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


def _read_ends(
    fs: Any, path: Any, peek: int, parquet: bool, csv_text: bool
) -> tuple[int, bytes, bytes]:
    """The object's size, its first ``peek`` bytes and (Parquet, a large CSV) its last 4."""
    stream = fs.open(path)
    try:
        head = bytes(stream.readNBytes(peek))
        # Shorter than the peek: that is the whole object, no size look-up needed.
        size = len(head) if len(head) < peek else int(fs.getFileStatus(path).getLen())
        tail = head[-4:]
        ends = parquet or (csv_text and size >= SPLITTABLE_CSV_BYTES)
        if ends and size > len(head):
            stream.seek(size - 4)
            tail = bytes(stream.readNBytes(4))
        return size, head, tail
    finally:
        stream.close()


def _read_parquet_footer(spark: SparkSession, path: Any, probe: Probe) -> None:
    gateway, conf = jvm(spark), hadoop_conf(spark)
    try:
        reader = gateway.org.apache.parquet.hadoop.ParquetFileReader.open(
            gateway.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(path, conf)
        )
        try:
            schema = str(reader.getFooter().getFileMetaData().getSchema().toString())
            rows = int(reader.getRecordCount())
        finally:
            reader.close()
    except Exception as error:
        probe.problem = f"unreadable Parquet footer: {first_line(str(error))}"
        return
    probe.parquet_schema = schema
    if rows == 0:
        probe.skip = "no rows (a Parquet file with 0 rows)"


_UTF8_CHUNK = 4 * 1024 * 1024


def utf8_problem(chunks: Iterable[bytes], compression: Optional[str]) -> Optional[str]:
    """Why a whole object is not UTF-8 text (the first bad byte's offset), else None."""
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
    path = jvm(spark).org.apache.hadoop.fs.Path(uri)
    stream = path.getFileSystem(hadoop_conf(spark)).open(path)

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

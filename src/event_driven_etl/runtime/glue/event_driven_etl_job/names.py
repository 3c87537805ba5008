"""Names: an object's format and compression from its key, column names as the table
spells them, paths as Hadoop reads them (pure functions, no Spark)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Optional

from .errors import JobInputError

CSV_SUFFIXES = (".csv", ".tsv")
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
COMPRESSION_SUFFIXES = (".gz", ".bz2")
CODECS = {".gz": "gzip", ".bz2": "bz2"}
SUFFIX_OF = {codec: suffix for suffix, codec in CODECS.items()}
METADATA_COLUMNS = ("_source_object", "_ingested_at", "ingestion_date")

_HADOOP_GLOB = re.compile(r"([\\*?\[\]{}])")
_NOT_WORD = re.compile(r"[\W]+", re.UNICODE)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


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
    return next((CODECS[s] for s in COMPRESSION_SUFFIXES if lowered.endswith(s)), None)


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


def quoted(name: str) -> str:
    """A column name as a Spark SQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"

"""Stage 4, profile: one aggregation pass per group gives each object's rows, malformed
rows, values present per column and the types they all fit; objects with malformed rows or
bytes that are not UTF-8 are refused, objects without rows skipped."""

from __future__ import annotations

import csv
import io
import operator
from collections.abc import Sequence
from functools import reduce
from typing import Any, Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .column_types import profiled_value, value_mask
from .names import count, quoted
from .outcomes import Verdicts
from .probe import Probe, check_utf8
from .read import BLOCK, CORRUPT, PATH, ROW_ID, FileStats, Group, object_uri


def _corrupt_texts(group: Group, row_ids: list[int]) -> dict[int, str]:
    """The raw text of the given malformed rows (a second look, only when there are any)."""
    if not row_ids:
        return {}
    # Spark refuses a query on raw CSV/JSON that reads only the corrupt-record column: one
    # data column goes along (a file with none at all is reported without its text).
    data = [quoted(name) for name in list(group.columns)[:1]]
    if not data:
        return {}
    found = group.frame.where(F.col(ROW_ID).isin(row_ids)).select(ROW_ID, CORRUPT, *data).collect()
    return {int(r[ROW_ID]): str(r[CORRUPT]) for r in found}


def _has_replacement_char(group: Group) -> str:
    """SQL: whether a row holds U+FFFD anywhere (text columns, nested values, a malformed
    row): one search of the row's texts joined (joining valid text makes no new character)."""
    texts = [CORRUPT]
    for name, data_type in group.columns.items():
        if isinstance(data_type, (T.StructType, T.ArrayType, T.MapType)):
            texts.append(f"to_json({quoted(name)})")
        elif isinstance(data_type, T.StringType):
            texts.append(quoted(name))
    return f"instr(concat_ws('', {', '.join(texts)}), '\ufffd') > 0"


STACKED_FROM_TEXT_COLUMNS = 48
"""From this many text columns on, their values are classified stacked as rows (one value
per row, :func:`_stacked_text_masks`) instead of side by side: the per-row projection and
aggregation grow with the columns, and Spark plans, compiles and runs a projection of
hundreds of ``CASE``/``RLIKE`` expressions far slower than one expression over more rows
(200 text columns x 2,000 rows: about a third of the CPU time). Below it, the one pass side
by side is cheaper than a second aggregation."""


def _classified(
    group: Group, text_format: bool, stacked: frozenset[int]
) -> tuple[DataFrame, list[str], list[int]]:
    """Per row, the flags the aggregation sums or meets: malformed (``_bad``), U+FFFD
    (``_fffd``), per column ``m<i>`` (the types its value fits, null when missing) or, for a
    column of a type not inferred, ``n<i>`` (a value present); with the flag names and the
    indexes of the columns that have a mask. The ``stacked`` columns are left out (their
    masks come from :func:`_stacked_text_masks`)."""
    # Each text value is trimmed and checked against the null tokens once, in a projection
    # of its own, and then tested (Spark keeps a projection apart when its expensive values
    # are used more than once), not once per test. The expressions are SQL text: one call
    # to Spark for all of a wide file's columns. A mask is null for a missing value, so its
    # meet says whether any value is present too: one aggregate per column.
    names = ["_bad", *(["_fffd"] if text_format else [])]
    staged = [PATH, BLOCK, ROW_ID, f"CAST({CORRUPT} IS NOT NULL AS INT) AS _bad"]
    if text_format:
        staged.append(f"CAST(({_has_replacement_char(group)}) AS INT) AS _fffd")
    flags = [PATH, BLOCK, ROW_ID, *names]
    masked: list[int] = []
    for index, (name, data_type) in enumerate(group.columns.items()):
        if index in stacked:
            continue
        staged.append(f"{profiled_value(quoted(name), data_type)} AS v{index}")
        mask = value_mask(f"v{index}", data_type, text_format)
        if mask is None:
            flags.append(f"CAST(v{index} IS NOT NULL AS INT) AS n{index}")
            names.append(f"n{index}")
        else:
            flags.append(f"{mask} AS m{index}")
            names.append(f"m{index}")
            masked.append(index)
    return group.frame.selectExpr(*staged).selectExpr(*flags), names, masked


def _text_column_indexes(group: Group) -> list[int]:
    return [i for i, t in enumerate(group.columns.values()) if isinstance(t, T.StringType)]


def _stacked_text_masks(
    group: Group, indexes: Sequence[int], text_format: bool
) -> dict[tuple[str, int], Optional[int]]:
    """(file path, column index) -> the meet of the masks of that column's values in that
    file (None: no value present; a file without rows is not in it): the values of the text
    columns ``indexes`` stacked as rows (path, column, value), each classified by one
    expression, then one aggregation per file and column. The same rule as the side by
    side pass (:func:`value_mask` of :func:`profiled_value`), so the same masks."""
    columns = list(group.columns)
    pairs = ", ".join(f"{index}, {quoted(columns[index])}" for index in indexes)
    values = group.frame.selectExpr(PATH, f"stack({len(indexes)}, {pairs}) AS (c, t)")
    text = T.StringType()
    masks = values.selectExpr(PATH, "c", f"{profiled_value('t', text)} AS v").selectExpr(
        PATH, "c", f"{value_mask('v', text, text_format)} AS m"
    )
    found = masks.groupBy(PATH, "c").agg(F.expr("bit_and(m) AS m")).collect()
    return {(str(r[PATH]), int(r["c"])): r["m"] for r in found}


def collect_stats(spark: SparkSession, group: Group) -> None:
    """One aggregation pass: rows, malformed rows and, per column, the values present and the
    types they all fit, for every object of the group (a second one for the text columns of
    a wide file: :data:`STACKED_FROM_TEXT_COLUMNS`)."""
    # Per row: a 0/1 flag or a type mask per column, each text value classified once; then one
    # aggregation per split of an object, combined per object here (a few rows per object).
    # Only numbers are aggregated, so Spark keeps a hash aggregation.
    text_format = group.probes[0].fmt != "parquet"
    texts = _text_column_indexes(group)
    stacked = frozenset(texts if len(texts) >= STACKED_FROM_TEXT_COLUMNS else ())
    projected, flags, masked_indexes = _classified(group, text_format, stacked)
    columns = list(group.columns)
    masked = [(index, columns[index]) for index in masked_indexes]
    aggregates = [
        "count(1) AS rows",
        f"min({ROW_ID}) AS first_id",
        f"min(CASE WHEN _bad = 1 THEN {ROW_ID} END) AS corrupt_id",
        *[f"{'bit_and' if name.startswith('m') else 'sum'}({name}) AS {name}" for name in flags],
    ]
    blocks = projected.groupBy(PATH, BLOCK).agg(*[F.expr(a) for a in aggregates]).collect()
    rows = _per_object([b.asDict() for b in blocks], flags)
    stacked_masks = _stacked_text_masks(group, sorted(stacked), text_format) if stacked else {}
    corrupt_text = _corrupt_texts(group, [r["corrupt_id"] for r in rows if r["_bad"]])
    uris = {p.uri for p in group.probes}
    for row in rows:
        uri = object_uri(row[PATH], uris)
        stats = FileStats(path=row[PATH], rows=int(row["rows"]), corrupt=int(row["_bad"] or 0))
        if text_format:
            stats.replacement_chars = int(row["_fffd"] or 0)
        if stats.corrupt:
            stats.first_corrupt_row = row["corrupt_row"]
            stats.first_corrupt_text = corrupt_text.get(int(row["corrupt_id"]))
        for index, name in enumerate(group.columns):
            if f"n{index}" in flags:
                stats.non_null[name] = int(row[f"n{index}"] or 0)
        masks = {index: row[f"m{index}"] for index, _ in masked}
        masks.update({index: stacked_masks.get((row[PATH], index)) for index in stacked})
        for index, mask in sorted(masks.items()):
            name = columns[index]
            stats.non_null[name] = int(mask is not None)
            if mask is not None:
                stats.masks[name] = int(mask)
        group.stats[uri] = stats


def _per_object(blocks: list[dict[str, Any]], flags: Sequence[str]) -> list[dict[str, Any]]:
    """The figures of each object's splits combined: sums added, type masks met, and the
    first malformed row's number counted from the object's start (``corrupt_row``).

    Row ids are consecutive within a split, but Spark orders an object's splits by size, not
    by offset, so the first malformed row is found split by split in offset order."""
    objects: dict[str, list[dict[str, Any]]] = {}
    for block in sorted(blocks, key=lambda b: (b[PATH], b[BLOCK])):
        objects.setdefault(block[PATH], []).append(block)
    combined = []
    for path, splits in objects.items():
        row: dict[str, Any] = {PATH: path, "rows": sum(int(b["rows"]) for b in splits)}
        for name in flags:
            values = [b[name] for b in splits if b[name] is not None]
            meet = name.startswith("m")
            row[name] = (reduce(operator.and_, values) if meet else sum(values)) if values else None
        row["corrupt_id"], row["corrupt_row"] = _first_corrupt(splits)
        combined.append(row)
    return combined


def _first_corrupt(splits: list[dict[str, Any]]) -> tuple[Optional[int], Optional[int]]:
    """The first malformed row of an object (splits in offset order): its id and number."""
    before = 0
    for split in splits:
        if split["corrupt_id"] is not None:
            number = before + int(split["corrupt_id"]) - int(split["first_id"]) + 1
            return int(split["corrupt_id"]), number
        before += int(split["rows"])
    return None, None


def bad_row_reason(probe: Probe, stats: FileStats) -> str:
    """Why rows of an object were malformed, with the first one's row number and text."""
    text = (stats.first_corrupt_text or "").rstrip("\r\n")
    where = f"data row {stats.first_corrupt_row}" if stats.first_corrupt_row else "a row"
    if probe.fmt == "csv":
        fields = len(next(csv.reader(io.StringIO(text, newline=""), delimiter=probe.sep), []))
        detail = f"{where} has {count(fields, 'field')}, the header has {len(probe.header)}"
    elif probe.fmt == "json":
        where = where.replace("data row", "record")
        detail = f"{where} is not a JSON object"
    else:
        detail = f"{where} is unreadable"
    more = f" ({stats.corrupt} malformed rows in all)" if stats.corrupt > 1 else ""
    return f"{detail}{more}: {text[:120]!r}"


def profile_groups(spark: SparkSession, groups: Sequence[Group]) -> Verdicts:
    """Profile every group (one aggregation pass each); objects with malformed rows or bytes
    that are not UTF-8 are refused, objects without rows are skipped."""
    refused: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for group in groups:
        collect_stats(spark, group)
        odd_name = any("\ufffd" in name for name in group.columns)
        for probe in group.probes:
            stats = group.stats.get(probe.uri, FileStats())
            problem = None
            if probe.fmt != "parquet" and (stats.replacement_chars or odd_name):
                problem = check_utf8(spark, probe.uri)
            if problem:
                refused[probe.uri] = problem
            elif stats.corrupt:
                refused[probe.uri] = bad_row_reason(probe, stats)
            elif stats.rows == 0:
                skipped[probe.uri] = "no data rows" + (" (header only)" if probe.header else "")
    return Verdicts(refused, skipped)

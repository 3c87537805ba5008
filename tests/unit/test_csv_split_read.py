"""Large CSV objects without a quoted line break are read line by line, in splits (several
tasks per object), and give exactly the rows the whole-object (``multiLine``) read gives."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F  # noqa: N812

from event_driven_etl.runtime.glue.event_driven_etl_job import read
from event_driven_etl.runtime.glue.event_driven_etl_job.errors import JobInputError
from event_driven_etl.runtime.glue.event_driven_etl_job.job import run
from event_driven_etl.runtime.glue.event_driven_etl_job.probe import probe_objects
from event_driven_etl.runtime.glue.event_driven_etl_job.read import (
    BLOCK,
    CORRUPT,
    PATH,
    ROW_ID,
    objects_without_quoted_line_breaks,
    read_group,
)
from event_driven_etl.runtime.glue.event_driven_etl_job.session import session_settings

pytestmark = pytest.mark.spark

SPLIT_BYTES = 64
"""``spark.sql.files.maxPartitionBytes`` in these tests: every few lines a new split."""


@contextmanager
def small_splits(spark: Any) -> Iterator[None]:
    """Every CSV object is worth proving, and Spark splits files every ``SPLIT_BYTES``."""
    before = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(SPLIT_BYTES))
    try:
        with mock.patch.object(read, "SPLITTABLE_CSV_BYTES", 0), session_settings(spark):
            yield
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", before)


def job_rows(spark: Any, uri: str, *others: str) -> tuple[list[tuple[Any, ...]], int]:
    """The rows of ``uri`` in the job's read of a group of objects, in file order, and the
    group's partitions."""
    group = read_group(spark, probe_objects(spark, [uri, *others]))
    try:
        data = [c for c in group.frame.columns if c not in (PATH, BLOCK, ROW_ID)]
        mine = F.col(PATH).endswith("/" + uri.rsplit("/", 1)[-1])
        ordered = group.frame.where(mine).orderBy(BLOCK, ROW_ID).select(*data).collect()
        return [tuple(r) for r in ordered], int(group.frame.rdd.getNumPartitions())
    finally:
        group.frame.unpersist()


def multiline_rows(spark: Any, uri: str, columns: int, sep: str = ",") -> list[tuple[Any, ...]]:
    """The rows of the whole-object read (one task: file order)."""
    schema = ", ".join([*(f"c{i} string" for i in range(columns)), f"{CORRUPT} string"])
    frame = (
        spark.read.schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .option("header", True)
        .option("multiLine", True)
        .option("escape", '"')
        .option("sep", sep)
        .csv(uri)
    )
    return [tuple(r) for r in frame.collect()]


def encode(value: str) -> str:
    """A field as RFC 4180 writes it (quoted when it must be, or at random by a leading #)."""
    if value.startswith("#") or any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


field_values = st.lists(
    st.sampled_from(["a", "b", " ", ",", '"', '""', "\n", "\r\n", "\r", "#", "7"]), max_size=5
).map("".join)


@st.composite
def csv_objects(draw: Any) -> tuple[str, int, bool]:
    """A CSV object's text, its columns, and whether it must be read whole: a field holds a
    line break, a line is only white space, or lines end in different ways."""
    columns = draw(st.integers(1, 3))
    header = [f"h{i}" for i in range(columns)]
    rows = draw(
        st.lists(
            st.lists(field_values, min_size=columns, max_size=columns + 1),  # some ragged
            min_size=1,
            max_size=12,
        )
    )
    lines = [",".join(header), *(",".join(encode(v) for v in row) for row in rows)]
    if draw(st.booleans()):
        lines.append(",".join(header))  # a data row that repeats the header, in a later split
    line_break = st.sampled_from(["\n", "\r\n"])
    first = draw(line_break)
    mixed = draw(st.integers(0, 4)) == 0
    breaks = [draw(line_break) if mixed else first for _ in lines]
    if draw(st.booleans()):
        breaks[-1] = ""  # the last line ends the object without a line break
    text = "".join(line + end for line, end in zip(lines, breaks))
    bom = "\ufeff" if draw(st.booleans()) else ""
    blank = any(len(row) == 1 and row[0].isspace() for row in rows)  # skipped line by line
    broken = any("\n" in v or "\r" in v for row in rows for v in row)
    return bom + text, columns, blank or broken or len(set(breaks) - {""}) > 1


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(csv_objects())
def test_the_jobs_read_gives_the_rows_of_the_whole_object_read(
    spark: Any, tmp_path_factory: Any, sample: tuple[str, int, bool]
) -> None:
    text, columns, whole = sample
    path = Path(tmp_path_factory.mktemp("split")) / "object.csv"
    path.write_bytes(text.encode())
    uri = path.as_uri()
    with small_splits(spark):
        [probe] = probe_objects(spark, [uri])
        proven = objects_without_quoted_line_breaks(spark, [probe], ",")
        rows, _ = job_rows(spark, uri)
        expected = multiline_rows(spark, uri, columns)
    assert proven == ([] if whole else [uri])
    assert rows == expected


def test_a_quoted_line_break_late_in_a_large_object_keeps_it_whole(
    spark: Any, tmp_path: Path
) -> None:
    body = "".join(f"{i},plain text {i}\n" for i in range(2000))
    path, proven = tmp_path / "late.csv", tmp_path / "proven.csv"
    path.write_text(f'id,note\n{body}2000,"two\nlines"\n2001,last\n')
    proven.write_text(f"id,note\n{body}")
    uris = [path.as_uri(), proven.as_uri()]
    with small_splits(spark):
        probes = probe_objects(spark, uris)
        assert objects_without_quoted_line_breaks(spark, probes, ",") == [proven.as_uri()]
        rows, partitions = job_rows(spark, *uris)  # one group: a whole read and a split one
        other, _ = job_rows(spark, *reversed(uris))
    assert partitions > 2  # the whole object in one task, the proven one in several
    assert len(rows) == 2002
    assert rows[-2:] == [("2000", "two\nlines", None), ("2001", "last", None)]
    assert other == [(str(i), f"plain text {i}", None) for i in range(2000)]


def test_a_proven_object_is_read_in_several_tasks(spark: Any, tmp_path: Path) -> None:
    body = "".join(f'{i},"quoted, with ""quotes""",x\r\n' for i in range(200))
    path = tmp_path / "proven.csv"
    path.write_text(f"id,note,tag\r\n{body}id,note,tag\r\n")
    with small_splits(spark):
        rows, partitions = job_rows(spark, path.as_uri())
    assert partitions > 10
    assert len(rows) == 201
    assert rows[0] == ("0", 'quoted, with "quotes"', "x", None)
    assert rows[-1] == ("id", "note", "tag", None)  # a data row equal to the header is kept


def test_fails_a_malformed_row_in_a_later_split_named_by_its_row_number(
    spark: Any, tmp_path: Path
) -> None:
    rows = [f"{i},{i * 2}" for i in range(1, 400)]
    rows[299] = "300,600,extra"
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n" + "\n".join(rows) + "\n")
    with small_splits(spark), pytest.raises(JobInputError) as raised:
        run(spark, [path.as_uri()], (tmp_path / "out").as_uri() + "/", batch_id="ragged")
    assert str(raised.value).splitlines()[0] == (
        f"{path.as_uri()}: data row 300 has 3 fields, the header has 2: '300,600,extra'"
    )

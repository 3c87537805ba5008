"""The profile of a wide file's text columns, stacked as rows, says what the side-by-side
pass says: the same rows, values present and type masks per object and column, whatever the
values (a property test over the tokens the typing rule distinguishes)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from event_driven_etl.runtime.glue.event_driven_etl_job import profile
from event_driven_etl.runtime.glue.event_driven_etl_job.probe import probe_objects
from event_driven_etl.runtime.glue.event_driven_etl_job.read import FileStats, read_group
from event_driven_etl.runtime.glue.event_driven_etl_job.session import session_settings

pytestmark = pytest.mark.spark

TOKENS = [
    "1", "181.0", "-7", "007", "3.5", "1e3", ".5", "true", "FALSE", "2026-11-25", "2026-02-30",
    "2026-11-25T10:00:00Z", "2026-11-25 10:00", "NA", "", " ", "null", "None", "none", "word",
    " 42 ", "NaN", "Tabaré", "99999999999999999999",
]  # fmt: skip
"""Values each test of the typing rule tells apart: integers, zero-padded codes, decimals,
booleans, real and impossible dates, timestamps, the null tokens, words, padding."""

tables = st.integers(min_value=1, max_value=4).flatmap(
    lambda columns: st.tuples(
        st.just(columns),
        st.lists(
            st.lists(
                st.lists(st.sampled_from(TOKENS), min_size=columns, max_size=columns),
                min_size=0,
                max_size=6,
            ),
            min_size=1,
            max_size=3,
        ),
    )
)
"""1 to 3 files of the same 1 to 4 columns, 0 to 6 rows each."""


def _write_csv(path: Path, rows: list[list[str]], columns: int) -> None:
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([f"col {i}" for i in range(columns)])
    writer.writerows(rows)
    path.write_text(text.getvalue(), encoding="utf-8")


def _stats(spark: Any, uris: list[str], *, stacked_from: int) -> dict[str, FileStats]:
    with session_settings(spark):
        group = read_group(spark, probe_objects(spark, uris))
        try:
            original = profile.STACKED_FROM_TEXT_COLUMNS
            profile.STACKED_FROM_TEXT_COLUMNS = stacked_from
            try:
                profile.collect_stats(spark, group)
            finally:
                profile.STACKED_FROM_TEXT_COLUMNS = original
            return dict(group.stats)
        finally:
            group.frame.unpersist()


def _both_ways(spark: Any, uris: list[str]) -> tuple[dict[str, FileStats], dict[str, FileStats]]:
    return _stats(spark, uris, stacked_from=10**6), _stats(spark, uris, stacked_from=1)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(table=tables)
def test_stacked_text_masks_equal_side_by_side_csv(
    spark: Any, table: tuple[int, list[list[list[str]]]]
) -> None:
    columns, files = table
    work = Path(tempfile.mkdtemp(prefix="stacked-"))
    try:
        uris = []
        for index, rows in enumerate(files):
            path = work / f"part-{index}.csv"
            _write_csv(path, rows, columns)
            uris.append(path.as_uri())
        side_by_side, stacked = _both_ways(spark, uris)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert stacked == side_by_side
    assert sum(s.rows for s in stacked.values()) == sum(len(rows) for rows in files)


def test_stacked_json_text_columns_beside_typed_ones(spark: Any, tmp_path: Path) -> None:
    """JSON lines: the text fields are stacked, the numbers and booleans Spark typed keep the
    side-by-side masks, and each object's figures are its own."""
    records = [
        {"id": 1, "ratio": 181.0, "ok": True, "code": "007", "day": "2026-11-25", "note": "NA"},
        {"id": 2, "ratio": 2.5, "ok": False, "code": "12", "day": "2026-02-30", "note": "x"},
    ]
    uris = []
    for index, chunk in enumerate((records, records[:1])):
        path = tmp_path / f"part-{index}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in chunk))
        uris.append(path.as_uri())
    side_by_side, stacked = _both_ways(spark, uris)
    assert stacked == side_by_side
    second = stacked[uris[1]]
    assert second.rows == 1
    assert second.non_null["note"] == 0  # "NA" is missing in every column
    assert second.non_null["code"] == 1 and second.masks["code"] != second.masks["id"]


def test_a_wide_file_is_profiled_stacked_and_types_every_column(spark: Any, tmp_path: Path) -> None:
    """A 60-column CSV (past the threshold): each column's figures are its own values'."""
    assert profile.STACKED_FROM_TEXT_COLUMNS <= 60
    kinds = ["12", "3.5", "true", "2026-11-25", "word", "NA"]
    path = tmp_path / "wide.csv"
    _write_csv(path, [[kinds[c % 6] for c in range(60)] for _ in range(3)], 60)
    threshold = profile.STACKED_FROM_TEXT_COLUMNS
    [stats] = _stats(spark, [path.as_uri()], stacked_from=threshold).values()
    assert stats.rows == 3
    present = [stats.non_null[f"col_{c}"] for c in range(60)]
    assert present == [0 if c % 6 == 5 else 1 for c in range(60)]
    by_kind = {stats.masks[f"col_{c}"] for c in range(0, 60, 6)}
    assert len(by_kind) == 1  # every integer column has the one integer mask
    assert len({stats.masks[f"col_{c}"] for c in range(5)}) == 5  # five kinds, five masks

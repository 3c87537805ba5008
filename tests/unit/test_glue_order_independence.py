"""The same files land as the same table whatever their order and grouping (per object, in
waves, one batch): a property test over real files and their pandas-written variants.

Each example runs the built-in script once per group on local Spark (1 to 5 runs), so the
suite runs ``ORDER_EXAMPLES`` random examples (default 3) plus the three named groupings and
the one-batch reference (7 examples took 8 minutes on this shared 2-core machine under
heavy load); run more with ``ETL_ORDER_EXAMPLES=50 .venv/bin/python -m pytest -m spark
tests/unit/test_glue_order_independence.py``.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from event_driven_etl.runtime.glue.event_driven_etl_job.job import run
from event_driven_etl.runtime.glue.event_driven_etl_job.schema import TableSchema
from event_driven_etl.testing._output import read_table_rows

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
ORDER_EXAMPLES = int(os.environ.get("ETL_ORDER_EXAMPLES", "3"))


@functools.cache
def corpus_variants() -> dict[str, bytes]:
    """Real files as a user's uploads would come: penguins.csv split by year, one year as
    pandas writes JSON lines (integers with gaps as 181.0, gaps as null), one as pandas
    writes CSV (181.0, gaps empty), the two unmeasured penguins alone (every measure NA),
    and nightingale.csv (dates, other columns) as it is."""
    raw = pd.read_csv(CORPUS / "penguins.csv", keep_default_na=False, dtype=str)
    unmeasured = raw["bill_length_mm"] == "NA"
    typed = pd.read_csv(CORPUS / "penguins.csv")
    files = {
        "penguins_2007.csv": raw[(raw["year"] == "2007") & ~unmeasured].to_csv(index=False),
        "penguins_2008.jsonl": typed[typed["year"] == 2008].to_json(orient="records", lines=True),
        "penguins_2009.csv": typed[(typed["year"] == 2009) & ~unmeasured].to_csv(index=False),
        "penguins_unmeasured.csv": raw[unmeasured].to_csv(index=False),
    }
    data = {name: str(text).encode() for name, text in files.items()}
    data["nightingale.csv"] = (CORPUS / "nightingale.csv").read_bytes()
    return data


NAMES = sorted(corpus_variants())


def land(spark: Any, groups: list[list[str]]) -> tuple[dict[str, str], list[tuple[Any, ...]]]:
    """Run the script once per group, in order; the table's schema and its rows."""
    work = Path(tempfile.mkdtemp(prefix="order-"))
    try:
        for name, data in corpus_variants().items():
            (work / "in" / name).parent.mkdir(parents=True, exist_ok=True)
            (work / "in" / name).write_bytes(data)
        out = work / "out"
        for index, group in enumerate(groups):
            uris = [(work / "in" / name).as_uri() for name in group]
            run(spark, uris, out.as_uri() + "/", batch_id=f"g{index}")
        schema = TableSchema.from_json((out / "_schema.json").read_text()).columns
        prefix = (work / "in").as_uri() + "/"
        rows = sorted(
            tuple(
                [r["_source_object"].removeprefix(prefix)]
                + [str(r.get(column)) for column in sorted(schema)]
            )
            for r in read_table_rows(out)
        )
        return schema, rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


@functools.cache
def one_batch(spark: Any) -> tuple[dict[str, str], list[tuple[Any, ...]]]:
    return land(spark, [NAMES])


def _groups(order: list[str], cuts: list[bool]) -> list[list[str]]:
    """``order`` cut into consecutive groups where ``cuts`` says (one flag per gap)."""
    groups = [[order[0]]]
    for name, cut in zip(order[1:], cuts):
        if cut:
            groups.append([name])
        else:
            groups[-1].append(name)
    return groups


@pytest.mark.spark
@settings(
    max_examples=ORDER_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    order=st.permutations(NAMES),
    cuts=st.lists(st.booleans(), min_size=len(NAMES) - 1, max_size=len(NAMES) - 1),
)
@example(order=list(reversed(NAMES)), cuts=[True] * (len(NAMES) - 1))  # per object
@example(order=NAMES[2:] + NAMES[:2], cuts=[False, True, False, True])  # in waves
@example(order=list(reversed(NAMES)), cuts=[False] * (len(NAMES) - 1))  # one batch
def test_the_same_files_land_as_the_same_table_whatever_the_order_and_grouping(
    spark: Any, order: list[str], cuts: list[bool]
) -> None:
    expected_schema, expected_rows = one_batch(spark)
    schema, rows = land(spark, _groups(list(order), cuts))
    assert schema == expected_schema
    assert rows == expected_rows


@pytest.mark.spark
def test_the_variants_type_as_a_careful_reader_expects(spark: Any) -> None:
    schema, rows = one_batch(spark)
    assert schema["flipper_length_mm"] == "bigint"  # 181, 181.0 and NA agree
    assert schema["bill_length_mm"] == "double" and schema["sex"] == "string"
    assert schema["date"] == "date" and schema["army"] == "bigint"
    penguins = pd.read_csv(CORPUS / "penguins.csv")
    assert sum(1 for r in rows if r[0].startswith("penguins")) == len(penguins)

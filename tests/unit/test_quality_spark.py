"""The quality gate in the built-in job on local Spark: every rule on small batches with
hand-checked outcomes (NULLs included) agreeing with the pure-Python evaluator, the
row-level quarantine and fail paths, and the dataset-level block."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from event_driven_etl.runtime.glue.event_driven_etl_job.errors import JobInputError
from event_driven_etl.runtime.glue.event_driven_etl_job.job import run
from event_driven_etl.runtime.glue.event_driven_etl_job.quality import evaluate, parse_ruleset
from event_driven_etl.testing._output import read_table_rows

pytestmark = pytest.mark.spark

# id,name,amount,code: a NULL name and amount, a duplicated id, a negative amount.
ORDERS = "id,name,amount,code\n1,Ann,10,AB\n2,,,CD\n2,Bob,-5,ABC\n3,Cy,20.5,XY\n"
ORDER_ROWS: list[dict[str, Any]] = [
    {"id": 1, "name": "Ann", "amount": 10.0, "code": "AB"},
    {"id": 2, "name": None, "amount": None, "code": "CD"},
    {"id": 2, "name": "Bob", "amount": -5.0, "code": "ABC"},
    {"id": 3, "name": "Cy", "amount": 20.5, "code": "XY"},
]

# rule -> (outcome, observed), checked by hand against ORDERS.
EXPECTED = {
    "RowCount = 4": ("passed", 4),
    "RowCount > 4": ("failed", 4),
    'Completeness "name" = 0.75': ("passed", 0.75),
    'Completeness "name" > 0.8': ("failed", 0.75),
    'IsUnique "code"': ("passed", 1),
    'IsUnique "id"': ("failed", 0.75),  # 3 distinct ids over 4 rows
    'Uniqueness "id" = 0.5': ("passed", 0.5),  # ids 1 and 3 occur once
    'DistinctValuesCount "id" = 3': ("passed", 3),
    'DistinctValuesCount "name" = 3': ("passed", 3),  # NULL is not a value
    'Mean "amount" = 8.5': ("passed", 8.5),  # (10 - 5 + 20.5) / 3: NULL ignored
    'Sum "amount" between 25 and 26': ("passed", 25.5),
    'StandardDeviation "amount" < 10.5': ("passed", 10.46),  # population SD: sqrt(328.5 / 3)
    'ColumnExists "code"': ("passed", None),
    'ColumnExists "nope"': ("failed", None),
    'ColumnValues "amount" >= 0 with threshold >= 0.5': ("passed", 0.5),  # NULL fails
    'ColumnLength "code" = 2 with threshold > 0.8': ("failed", 0.75),
    'ColumnValues "name" in ["Ann", "Bob", "Cy", NULL] with threshold = 1': ("passed", 1),
    'ColumnValues "name" != "Ann" with threshold = 0.75': ("passed", 0.75),  # != lets NULL pass
    'ColumnValues "code" matches "[A-Z]{2}" with threshold = 0.75': ("passed", 0.75),  # whole
    'ColumnValues "code" in ["AB", EMPTY, WHITESPACES_ONLY] with threshold = 0.25': (
        "passed",
        0.25,
    ),
    'ColumnValues "amount" not between 0 and 15 with threshold = 0.5': ("passed", 0.5),
    'ColumnValues "name" = NULL with threshold = 0.25': ("passed", 0.25),
    'ColumnValues "amount" not in [10, 20.5] with threshold = 0.5': ("passed", 0.5),  # NULL in
    'ColumnLength "name" <= 2 with threshold = 0.5': ("passed", 0.5),  # NULL: length 0
}


def _write(folder: Path, name: str, text: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path.as_uri()


def _rules(*rules: str) -> str:
    return json.dumps({"*": "Rules = [ " + ", ".join(rules) + " ]"})


def _report(out: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((out / "_runs" / "b1.json").read_text())
    return report


def test_every_rule_gives_the_hand_checked_outcome_in_spark_and_in_python(
    spark: Any, tmp_path: Path
) -> None:
    """Dataset rules only (they block, they never mark rows): one run, every result."""
    data = _write(tmp_path / "in", "orders.csv", ORDERS)
    out = tmp_path / "out"
    with pytest.raises(JobInputError) as failed:
        run(spark, [data], out.as_uri() + "/", batch_id="b1", quality_rules=_rules(*EXPECTED))
    assert "RowCount > 4" in str(failed.value).splitlines()[0]
    results = {r["rule"]: r for r in _report(out)["quality"]}
    for rule, (outcome, observed) in EXPECTED.items():
        result = results[rule]
        assert result["outcome"] == outcome, rule
        if observed is not None:
            assert result["observed"] == pytest.approx(observed, abs=0.01), rule
    python = evaluate(parse_ruleset("Rules = [ " + ", ".join(EXPECTED) + " ]"), ORDER_ROWS)
    assert {r.rule: r.outcome for r in python} == {r: o for r, (o, _) in EXPECTED.items()}
    assert read_table_rows(out) == []  # the batch was held back: readers see nothing


def test_row_rules_quarantine_the_failing_rows_and_the_rest_lands(
    spark: Any, tmp_path: Path
) -> None:
    data = _write(tmp_path / "in", "orders.csv", ORDERS)
    out, quarantine = tmp_path / "out", tmp_path / "quarantine"
    report = run(
        spark,
        [data],
        out.as_uri() + "/",
        batch_id="b1",
        bad_records="quarantine",
        quarantine_path=quarantine.as_uri() + "/",
        quality_rules=_rules('IsComplete "name"', 'ColumnValues "amount" >= 0', "RowCount > 0"),
    )
    assert report.status == "SUCCEEDED"
    assert sorted(r["id"] for r in read_table_rows(out)) == [1, 3]
    assert report.rows == 2
    bad = read_table_rows(quarantine / "b1" / "_quality" / "out")
    # The NULL name and amount fails both rules; the negative amount one.
    assert {r["code"]: list(r["_failed_rules"]) for r in bad} == {
        "CD": ['IsComplete "name"', 'ColumnValues "amount" >= 0'],
        "ABC": ['ColumnValues "amount" >= 0'],
    }
    assert {r["_source_object"] for r in bad} == {data}
    results = {r["rule"]: (r["outcome"], r["observed"]) for r in report.summary()["quality"]}
    assert results == {
        'IsComplete "name"': ("failed", 1),
        'ColumnValues "amount" >= 0': ("failed", 2),
        "RowCount > 0": ("passed", 2),  # judged on the rows that land
    }


def test_row_rules_with_fail_refuse_the_object_naming_rule_and_examples(
    spark: Any, tmp_path: Path
) -> None:
    bad = _write(tmp_path / "in", "orders.csv", ORDERS)
    good = _write(tmp_path / "in", "more.csv", "id,name,amount,code\n7,Dee,1,QQ\n")
    out = tmp_path / "out"
    with pytest.raises(JobInputError) as failed:
        run(
            spark,
            [bad, good],
            out.as_uri() + "/",
            batch_id="b1",
            quality_rules=_rules('ColumnValues "amount" >= 0'),
        )
    first = str(failed.value).splitlines()[0]
    assert first.startswith(bad) and 'ColumnValues "amount" >= 0' in first
    assert "2 row(s)" in first
    assert '"amount":-5.0' in first and '{"id":2,"code":"CD"}' in first  # NULLs left out
    assert [r["id"] for r in read_table_rows(out)] == [7]  # the other object lands
    results = {r["rule"]: (r["outcome"], r["observed"]) for r in _report(out)["quality"]}
    assert results == {'ColumnValues "amount" >= 0': ("failed", 2)}  # the refused rows count


def test_a_batch_with_no_rows_fails_row_count_and_the_run(spark: Any, tmp_path: Path) -> None:
    header_only = _write(tmp_path / "in", "empty.csv", "id,name\n")
    out = tmp_path / "out"
    with pytest.raises(JobInputError, match=r"quality rule RowCount > 0 failed .* observed 0"):
        run(
            spark,
            [header_only],
            out.as_uri() + "/",
            batch_id="b1",
            quality_rules=_rules("RowCount > 0"),
        )
    report = _report(out)
    assert report["status"] == "FAILED" and report["skipped"][0]["reason"].startswith(
        "no data rows"
    )


def test_rules_are_judged_when_spark_cannot_write_one_object_and_it_lands_alone(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write that fails over to object by object has no observation: the figures come
    from an aggregation of the rows written (the object Spark refused left out)."""
    import pandas as pd

    from event_driven_etl.runtime.glue.event_driven_etl_job import session

    settings = dict(session.SESSION_SETTINGS)
    settings["spark.sql.parquet.datetimeRebaseModeInWrite"] = "EXCEPTION"
    monkeypatch.setattr(session, "SESSION_SETTINGS", settings)
    corpus = Path(__file__).resolve().parents[1] / "data" / "corpus"
    old = _write(tmp_path / "in", "old.csv", "when,bill_length_mm\n1854-04-01 00:00:00,40.1\n")
    penguins = _write(tmp_path / "in", "penguins.csv", (corpus / "penguins.csv").read_text())
    out, quarantine = tmp_path / "out", tmp_path / "q"
    report = run(
        spark,
        [old, penguins],
        out.as_uri() + "/",
        batch_id="b1",
        bad_records="quarantine",
        quarantine_path=quarantine.as_uri() + "/",
        quality_rules=_rules('IsComplete "bill_length_mm"', "RowCount > 0"),
    )
    expected = pd.read_csv(corpus / "penguins.csv")
    missing = int(expected["bill_length_mm"].isna().sum())
    assert [o.status for o in report.outcomes] == ["quarantined", "landed"]
    assert len(read_table_rows(out)) == len(expected) - missing
    results = {r["rule"]: (r["outcome"], r["observed"]) for r in report.summary()["quality"]}
    assert results == {
        'IsComplete "bill_length_mm"': ("failed", missing),
        "RowCount > 0": ("passed", len(expected) - missing),
    }

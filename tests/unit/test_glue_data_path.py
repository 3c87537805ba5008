"""The built-in Glue script on real files nobody tuned it for: never garbled, types at any
depth, one object's failure stays its own, typing that does not depend on order, empty and
missing values, and how to read the table (issue 17's findings, one test or more each).

Real files: ``tests/data/corpus/penguins.csv`` (palmerpenguins), ``nightingale.csv``
(HistData via pydataset), ``sf_temps_nanos.parquet`` and ``election_features_nested.jsonl``
(see ``tests/data/README.md``); the variants below are derived from them in the test.
"""

from __future__ import annotations

import io
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from event_driven_etl.runtime.glue.event_driven_etl_job import session
from event_driven_etl.runtime.glue.event_driven_etl_job.errors import JobInputError
from event_driven_etl.runtime.glue.event_driven_etl_job.job import run
from event_driven_etl.runtime.glue.event_driven_etl_job.names import normalise_column_names
from event_driven_etl.runtime.glue.event_driven_etl_job.probe import utf8_problem
from event_driven_etl.runtime.glue.event_driven_etl_job.read import (
    nanos_shape,
    parse_parquet_schema,
)
from event_driven_etl.testing._output import read_table_rows

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
PENGUINS = CORPUS / "penguins.csv"
NIGHTINGALE = CORPUS / "nightingale.csv"

pytestmark = pytest.mark.spark


def _put(folder: Path, name: str, data: bytes | str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return f"file://{path}"


def _schema(out: Path) -> dict[str, str]:
    columns = json.loads((out / "_schema.json").read_text())["columns"]
    return {c["name"]: c["type"] for c in columns}


def _no_replacement_char(rows: list[dict[str, Any]]) -> bool:
    return all("\ufffd" not in json.dumps(r, default=str) for r in rows)


# ---------------------------------------------------------------- 1. UTF-8, the whole object

LATIN1_REPRO = ("id,name\n" + "".join(f"{i},Adelie\n" for i in range(20_000))).encode() + (
    "9,Tabaré\n".encode("latin-1")
)


def test_fails_latin1_bytes_after_the_first_64_kb_naming_the_byte(
    spark: Any, tmp_path: Path
) -> None:
    bad = _put(tmp_path / "in", "latin1.csv", LATIN1_REPRO)
    good = _put(tmp_path / "in", "penguins.csv", PENGUINS.read_bytes())
    out = tmp_path / "out"
    with pytest.raises(JobInputError) as raised:
        run(spark, [bad, good], out.as_uri() + "/", batch_id="b")
    offset = LATIN1_REPRO.index(b"\xe9")
    assert offset > 64 * 1024
    assert str(raised.value).splitlines()[0] == (
        f"{bad}: content is not UTF-8 text (byte {offset}: 0xe9)"
    )
    rows = read_table_rows(out)
    assert {r["_source_object"] for r in rows} == {good}
    assert _no_replacement_char(rows)


def test_quarantine_latin1_bytes_after_the_first_64_kb(spark: Any, tmp_path: Path) -> None:
    as_json = b"".join(
        json.dumps({"id": i, "name": "Adelie"}).encode() + b"\n" for i in range(5_000)
    ) + '{"id": 9, "name": "Tabaré"}\n'.encode("latin-1")
    bad_csv = _put(tmp_path / "in", "latin1.csv", LATIN1_REPRO)
    bad_json = _put(tmp_path / "in", "latin1.jsonl", as_json)
    out = tmp_path / "out"
    report = run(
        spark,
        [bad_csv, bad_json],
        out.as_uri() + "/",
        batch_id="q",
        bad_records="quarantine",
        quarantine_path=(tmp_path / "q").as_uri() + "/",
    )
    assert report.status == "SUCCEEDED"
    reasons = {o.object: o.reason for o in report.by_status("quarantined")}
    assert set(reasons) == {bad_csv, bad_json}
    offset = LATIN1_REPRO.index(b"\xe9")
    assert reasons[bad_csv] == f"content is not UTF-8 text (byte {offset}: 0xe9)"
    assert read_table_rows(out) == []


def test_a_replacement_character_that_is_in_the_text_lands(spark: Any, tmp_path: Path) -> None:
    """U+FFFD written as valid UTF-8 is data: the strict check reads the bytes and lets it be."""
    text = "id,name\n" + "".join(f"{i},Adelie\n" for i in range(20_000)) + "20000,Tabar\ufffd\n"
    uri = _put(tmp_path / "in", "marked.csv", text)
    out = tmp_path / "out"
    run(spark, [uri], out.as_uri() + "/", batch_id="b")
    names = {r["id"]: r["name"] for r in read_table_rows(out)}
    assert names[9] == "Adelie" and names[20_000] == "Tabar\ufffd"


def test_the_utf8_check_reads_compressed_objects_through() -> None:
    import gzip

    bad = gzip.compress(LATIN1_REPRO, mtime=0)
    chunks = [bad[i : i + 1000] for i in range(0, len(bad), 1000)]
    offset = LATIN1_REPRO.index(b"\xe9")
    assert utf8_problem(chunks, "gzip") == (f"content is not UTF-8 text (byte {offset}: 0xe9)")
    good = "é".encode()
    assert utf8_problem([good[:1], good[1:]], None) is None  # split inside a char


# ---------------------------------------------------------------- 2. nanoseconds at any depth


def _nested_nanos(tmp_path: Path) -> tuple[Path, pa.Table]:
    """sf_temps_nanos.parquet's first 48 readings as a struct, a list and a map."""
    source = pq.read_table(CORPUS / "sf_temps_nanos.parquet").slice(0, 48)
    moments = source.column("date").to_pylist()
    temps = source.column("temp").to_pylist()
    ns = pa.timestamp("ns")
    table = pa.table(
        {
            "reading": pa.array(
                [{"at": m, "temp": t} for m, t in zip(moments, temps)],
                pa.struct([("at", ns), ("temp", pa.float64())]),
            ),
            "day": pa.array([moments[i : i + 3] for i in range(48)], pa.list_(ns)),
            "by_name": pa.array([[("first", m)] for m in moments], pa.map_(pa.string(), ns)),
            "plain": pa.array(moments, ns),
        }
    )
    path = tmp_path / "in" / "nested.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path, table


def test_nanosecond_timestamps_inside_structs_lists_and_maps_land_as_timestamps(
    spark: Any, tmp_path: Path
) -> None:
    path, source = _nested_nanos(tmp_path)
    out = tmp_path / "out"
    run(spark, [path.as_uri()], out.as_uri() + "/", batch_id="n")
    assert _schema(out) == {
        "reading": "struct<at:timestamp,temp:double>",
        "day": "array<timestamp>",
        "by_name": "map<string,timestamp>",
        "plain": "timestamp",
    }
    [written] = list(out.glob("ingestion_date=*/*.parquet"))
    types = {f.name: str(f.type) for f in pq.read_schema(written)}
    assert "int64" not in json.dumps(types)
    rows = sorted(read_table_rows(out), key=lambda r: r["plain"])
    expected = source.to_pylist()
    assert [r["reading"]["at"].replace(tzinfo=None) for r in rows] == [
        e["reading"]["at"] for e in expected
    ]
    assert [[t.replace(tzinfo=None) for t in r["day"]] for r in rows] == [
        e["day"] for e in expected
    ]
    assert [dict(r["by_name"])["first"].replace(tzinfo=None) for r in rows] == [
        e["plain"] for e in expected
    ]


def test_the_parquet_schema_parser_finds_nanos_at_any_depth() -> None:
    text = """message schema {
  optional group s {
    optional int64 t (TIMESTAMP(NANOS,false));
    optional double x;
  }
  optional group l (LIST) {
    repeated group list {
      optional int64 element (TIMESTAMP(NANOS,true));
    }
  }
  optional group m (MAP) {
    repeated group key_value {
      required binary key (STRING);
      optional int64 value (TIMESTAMP(NANOS,false));
    }
  }
  optional int64 micros (TIMESTAMP(MICROS,true));
}
"""
    shapes = {n.name: nanos_shape(n) for n in parse_parquet_schema(text)}
    assert shapes == {
        "s": ("struct", {"t": "nanos", "x": None}),
        "l": ("list", "nanos"),
        "m": ("map", None, "nanos"),
        "micros": None,
    }


# ---------------------------------------------------------------- 3. one object's failure


def _nightingale_timestamps(years_back: int = 0) -> str:
    """nightingale.csv with its dates as midnight timestamps (1854-1856: before 1900)."""
    frame = pd.read_csv(NIGHTINGALE)
    frame["Date"] = [
        f"{int(d[:4]) - years_back:04d}{d[4:]} 00:00:00" for d in frame["Date"].astype(str)
    ]
    return str(frame.to_csv(index=False))


def test_dates_before_1582_and_timestamps_before_1900_land_as_they_are(
    spark: Any, tmp_path: Path
) -> None:
    timestamps = _put(tmp_path / "in", "nightingale_times.csv", _nightingale_timestamps())
    frame = pd.read_csv(NIGHTINGALE)
    frame["Date"] = [f"{int(d[:4]) - 300:04d}{d[4:]}" for d in frame["Date"].astype(str)]
    ancient = _put(tmp_path / "in", "nightingale_1554.csv", frame.to_csv(index=False))
    out = tmp_path / "out"
    run(spark, [timestamps], out.as_uri() + "/", batch_id="t")
    run(spark, [ancient], (tmp_path / "out2").as_uri() + "/", batch_id="d")
    times = sorted(r["date"] for r in read_table_rows(out))
    dates = sorted(r["date"] for r in read_table_rows(tmp_path / "out2"))
    source = sorted(pd.read_csv(NIGHTINGALE)["Date"])
    assert [t.replace(tzinfo=None) for t in times] == [datetime.fromisoformat(d) for d in source]
    assert dates == [date.fromisoformat(f"{int(d[:4]) - 300:04d}{d[4:]}") for d in source]


@pytest.mark.parametrize("bad_records", ["fail", "quarantine"])
def test_fails_only_the_object_spark_cannot_write_and_the_rest_lands(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad_records: str
) -> None:
    """Spark's own default (EXCEPTION) stands in for any value Spark refuses at write time."""
    settings = dict(session.SESSION_SETTINGS)
    settings["spark.sql.parquet.datetimeRebaseModeInWrite"] = "EXCEPTION"
    monkeypatch.setattr(session, "SESSION_SETTINGS", settings)
    old = _put(tmp_path / "in", "nightingale_times.csv", _nightingale_timestamps())
    good = _put(tmp_path / "in", "penguins.csv", PENGUINS.read_bytes())
    out = tmp_path / "out"
    options: dict[str, Any] = {"bad_records": bad_records}
    if bad_records == "quarantine":
        options["quarantine_path"] = (tmp_path / "q").as_uri() + "/"
        report = run(spark, [old, good], out.as_uri() + "/", batch_id="w", **options)
        [outcome] = report.by_status("quarantined")
        reason = str(outcome.reason)
    else:
        with pytest.raises(JobInputError) as raised:
            run(spark, [old, good], out.as_uri() + "/", batch_id="w", **options)
        first, *_ = str(raised.value).splitlines()
        assert first.startswith(f"{old}: ")
        reason = first.removeprefix(f"{old}: ")
    assert reason.startswith("its rows cannot be written as Parquet: ")
    assert "WRITE_ANCIENT_DATETIME" in reason
    assert "\tat " not in reason and "Traceback" not in reason and len(reason) <= 350
    rows = read_table_rows(out)
    assert len(rows) == len(pd.read_csv(PENGUINS))
    assert {r["_source_object"] for r in rows} == {good}
    # The table changed only for what landed: none of Nightingale's own columns.
    assert set(_schema(out)) == set(normalise_column_names(pd.read_csv(PENGUINS).columns))


def test_json_keys_that_differ_only_in_case_become_name_and_name_2(
    spark: Any, tmp_path: Path
) -> None:
    penguins = pd.read_csv(PENGUINS).head(20)
    lines = "".join(
        json.dumps({"Species": s, "species": s.lower(), "year": int(y)}) + "\n"
        for s, y in zip(penguins["species"], penguins["year"])
    )
    uri = _put(tmp_path / "in", "cased.jsonl", lines)
    out = tmp_path / "out"
    run(spark, [uri], out.as_uri() + "/", batch_id="c")
    rows = read_table_rows(out)
    assert len(rows) == 20
    # Spark orders inferred JSON fields by name: "Species" sorts before "species".
    assert {(r["species"], r["species_2"]) for r in rows} == {
        (s, s.lower()) for s in penguins["species"]
    }


# ---------------------------------------------------------------- 4. typing, order-independent


def _penguins_jsonl(frame: pd.DataFrame) -> str:
    """What pandas writes: integer columns with gaps as floats (181.0), gaps as null."""
    return str(frame.to_json(orient="records", lines=True))


def test_a_column_of_null_tokens_stays_untyped_until_a_value_arrives(
    spark: Any, tmp_path: Path
) -> None:
    frame = pd.read_csv(PENGUINS, keep_default_na=False)
    gaps = frame[frame["bill_length_mm"] == "NA"]  # the two penguins that were not measured
    assert len(gaps) == 2
    out = tmp_path / "out"
    first = _put(tmp_path / "in", "unmeasured.csv", gaps.to_csv(index=False))
    run(spark, [first], out.as_uri() + "/", batch_id="1")
    assert "bill_length_mm" not in _schema(out) and "sex" not in _schema(out)
    rest = _put(tmp_path / "in", "measured.csv", frame.drop(gaps.index).to_csv(index=False))
    run(spark, [rest], out.as_uri() + "/", batch_id="2")
    schema = _schema(out)
    assert schema["bill_length_mm"] == "double" and schema["flipper_length_mm"] == "bigint"
    assert schema["sex"] == "string"
    rows = read_table_rows(out)
    assert len(rows) == len(frame)
    assert sum(r["sex"] is None for r in rows) == int((frame["sex"] == "NA").sum())


@pytest.mark.parametrize("csv_first", [True, False])
def test_181_0_fits_a_bigint_column_in_either_order(
    spark: Any, tmp_path: Path, csv_first: bool
) -> None:
    frame = pd.read_csv(PENGUINS)
    as_csv = _put(tmp_path / "in", "2007.csv", PENGUINS.read_text())
    as_json = _put(tmp_path / "in", "pandas.jsonl", _penguins_jsonl(frame))
    assert '"flipper_length_mm":181.0' in Path(as_json.removeprefix("file://")).read_text()
    out = tmp_path / "out"
    for n, uri in enumerate([as_csv, as_json] if csv_first else [as_json, as_csv]):
        run(spark, [uri], out.as_uri() + "/", batch_id=str(n))
    schema = _schema(out)
    assert schema["flipper_length_mm"] == "bigint" and schema["body_mass_g"] == "bigint"
    assert schema["bill_length_mm"] == "double" and schema["year"] == "bigint"
    rows = read_table_rows(out)
    by_file: dict[str, list[Any]] = {}
    for r in rows:
        by_file.setdefault(r["_source_object"], []).append(r["flipper_length_mm"])
    assert sorted(by_file[as_csv], key=str) == sorted(by_file[as_json], key=str)


def test_an_iso_date_fits_a_date_column_and_a_whole_number_text_fits_bigint(
    spark: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run(
        spark,
        [_put(tmp_path / "in", "n.csv", NIGHTINGALE.read_text())],
        out.as_uri() + "/",
        batch_id="1",
    )
    assert _schema(out)["date"] == "date" and _schema(out)["army"] == "bigint"
    later = pd.read_csv(NIGHTINGALE).head(3)
    later["Army"] = later["Army"].astype(float)  # 8571.0
    lines = later.to_json(orient="records", lines=True, date_format="iso")
    run(spark, [_put(tmp_path / "in", "n.jsonl", str(lines))], out.as_uri() + "/", batch_id="2")
    rows = [r for r in read_table_rows(out) if r["_source_object"].endswith(".jsonl")]
    assert sorted(r["army"] for r in rows) == sorted(int(a) for a in later["Army"])
    assert {type(r["date"]) for r in rows} == {date}


# ---------------------------------------------------------------- 5. long first lines


def test_json_lines_whose_first_line_is_longer_than_64_kb_land(spark: Any, tmp_path: Path) -> None:
    features = (CORPUS / "election_features_nested.jsonl").read_text().splitlines()
    summary = json.dumps({"id": "all", "note": " ".join(features)})  # about 100 KB
    assert len(summary) > 64 * 1024
    uri = _put(tmp_path / "in", "long.jsonl", summary + "\n" + "\n".join(features) + "\n")
    out = tmp_path / "out"
    report = run(spark, [uri], out.as_uri() + "/", batch_id="l")
    assert report.rows == len(features) + 1


# ---------------------------------------------------------------- 6. empty and missing values


def test_empty_and_missing_values_per_format(spark: Any, tmp_path: Path) -> None:
    """CSV: an empty field, a quoted "" and a null token are all missing (CSV cannot tell
    them apart); JSON: null, an absent key, "" and a null token are missing; Parquet: null
    is missing and text is read as text is, so "" and "NA" are missing there too; any
    other text, spaces around it included, lands verbatim in a string column."""
    folder = tmp_path / "in"
    csv_text = 'key,value\ncsv-empty,\ncsv-quoted,""\ncsv-na,NA\ncsv-text, NA x \n'
    json_text = (
        '{"key": "json-null", "value": null}\n{"key": "json-absent"}\n'
        '{"key": "json-empty", "value": ""}\n{"key": "json-na", "value": "n/a"}\n'
        '{"key": "json-text", "value": " NA x "}\n'
    )
    parquet = folder / "values.parquet"
    folder.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "key": ["pq-null", "pq-empty", "pq-na", "pq-text"],
                "value": [None, "", "NA", " NA x "],
            }
        ),
        parquet,
    )
    uris = [_put(folder, "values.csv", csv_text), _put(folder, "values.jsonl", json_text)]
    out = tmp_path / "out"
    run(spark, [*uris, parquet.as_uri()], out.as_uri() + "/", batch_id="v")
    values = {r["key"]: r["value"] for r in read_table_rows(out)}
    assert values == {
        "csv-empty": None,
        "csv-quoted": None,
        "csv-na": None,
        "csv-text": " NA x ",
        "json-null": None,
        "json-absent": None,
        "json-empty": None,
        "json-na": None,
        "json-text": " NA x ",
        "pq-null": None,
        "pq-empty": None,
        "pq-na": None,
        "pq-text": " NA x ",
    }


# ---------------------------------------------------------------- 7. reading the table


def _two_runs_adding_a_column(spark: Any, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    frame = pd.read_csv(PENGUINS)
    first = frame.drop(columns=["sex"]).head(100)
    run(
        spark,
        [_put(tmp_path / "in", "a.csv", first.to_csv(index=False))],
        out.as_uri() + "/",
        batch_id="a",
        ingested_at=datetime(2026, 1, 1),
    )
    run(
        spark,
        [_put(tmp_path / "in", "b.csv", frame.tail(100).to_csv(index=False))],
        out.as_uri() + "/",
        batch_id="b",
        ingested_at=datetime(2026, 1, 2),
    )
    return out


def test_the_documented_pyarrow_reading_sees_every_column(spark: Any, tmp_path: Path) -> None:
    out = _two_runs_adding_a_column(spark, tmp_path)
    plain = ds.dataset(str(out), format="parquet", partitioning="hive", ignore_prefixes=["_"])
    # Files written before a column was added do not hold it: a plain reader that takes the
    # first file's schema can miss it (the README says so and shows the reading below).
    first_file_schema = pq.read_schema(sorted(plain.files)[0])
    assert "sex" not in first_file_schema.names

    # The README's reading: the schemas of every file unified.
    files = ds.dataset(str(out), format="parquet", ignore_prefixes=["_"]).files
    schema = pa.unify_schemas([pq.read_schema(f) for f in files])
    table = ds.dataset(
        str(out), schema=schema, format="parquet", partitioning="hive", ignore_prefixes=["_"]
    ).to_table()
    assert "sex" in table.column_names and table.num_rows == 200
    assert table.column("sex").null_count == 100 + int(
        pd.read_csv(PENGUINS).tail(100)["sex"].isna().sum()
    )


def test_spark_with_merge_schema_sees_every_column(spark: Any, tmp_path: Path) -> None:
    out = _two_runs_adding_a_column(spark, tmp_path)
    frame = spark.read.option("mergeSchema", "true").parquet(str(out))
    assert {"sex", "flipper_length_mm", "ingestion_date"} <= set(frame.columns)
    assert frame.count() == 200


def test_parquet_written_by_spark_is_read_back_by_pandas(spark: Any, tmp_path: Path) -> None:
    out = _two_runs_adding_a_column(spark, tmp_path)
    [second] = list(out.glob("ingestion_date=2026-01-02/*.parquet"))
    frame = pd.read_parquet(io.BytesIO(second.read_bytes()))
    assert list(frame["flipper_length_mm"].dropna().astype(int)) == [
        int(v) for v in pd.read_csv(PENGUINS).tail(100)["flipper_length_mm"].dropna()
    ]

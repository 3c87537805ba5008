"""Real public data files through the offline pipeline: every object ends as documented.

The corpus and where each file comes from: ``tests/data/README.md``. Row counts are
checked against independent readers (pandas, pyarrow, ``csv``, ``json``), never against
numbers written here.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aws_cdk import App, Stack

from event_driven_etl import Batching, EventDrivenEtlPipeline, TableFormat
from event_driven_etl.testing import LocalPipeline

from .offline import TABLE_FORMATS

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus"


def _csv_rows(name: str, **options: Any) -> int:
    return len(pd.read_csv(CORPUS / name, **options))


def _json_array_rows(name: str) -> int:
    return len(json.loads((CORPUS / name).read_text()))


def _json_lines_rows(name: str) -> int:
    return sum(1 for line in (CORPUS / name).read_text().splitlines() if line.strip())


def _quoted_newline_rows(name: str) -> int:
    with (CORPUS / name).open(newline="") as handle:
        return len(list(csv.reader(handle))) - 1  # minus the header


LANDED: dict[str, Callable[[], int]] = {
    "airports.csv": lambda: _csv_rows("airports.csv"),
    "danish_data_bom.csv": lambda: _csv_rows("danish_data_bom.csv", encoding="utf-8-sig"),
    "scotland_metadata_quoted_newlines.csv": lambda: _quoted_newline_rows(
        "scotland_metadata_quoted_newlines.csv"
    ),
    "iowa_electricity.csv": lambda: _csv_rows("iowa_electricity.csv"),
    "modechoice_semicolon.csv": lambda: _csv_rows("modechoice_semicolon.csv", sep=";"),
    "anes96.tsv": lambda: _csv_rows("anes96.tsv", sep="\t"),
    "gapminder.csv.gz": lambda: _csv_rows("gapminder.csv.gz"),
    "statecrime.csv.bz2": lambda: len(
        pd.read_csv(io.BytesIO(bz2.decompress((CORPUS / "statecrime.csv.bz2").read_bytes())))
    ),
    "cancer_cr_only.csv": lambda: len(
        pd.read_csv(io.StringIO((CORPUS / "cancer_cr_only.csv").read_text().replace("\r", "\n")))
    ),
    "cars_array.json": lambda: _json_array_rows("cars_array.json"),
    "election_features_nested.jsonl": lambda: _json_lines_rows("election_features_nested.jsonl"),
    "sf_temps_nanos.parquet": lambda: pq.read_metadata(CORPUS / "sf_temps_nanos.parquet").num_rows,
    "statecrime_german_header.csv": lambda: _csv_rows("statecrime_german_header.csv"),
    "penguins.csv": lambda: _csv_rows("penguins.csv"),
    "nightingale.csv": lambda: _csv_rows("nightingale.csv"),
}
SKIPPED = {
    "empty.csv": "empty object (0 bytes)",
    "statecrime_header_only.csv": "no data rows (header only)",
}
REFUSED = {
    "scotland_population_report.csv": "data row 11 has 1 field, the header has 2",
    "digits_headerless.csv.gz": "the first row looks like data, not a header",
    "election_features_truncated.jsonl": "is not a JSON object",
    "election_geojson.json.gz": "not JSON lines (one object per line) nor a JSON array",
    "sf_temps_parquet_named.csv": "content is Parquet but the key does not end in .parquet",
    "tips_gzip_named.csv": "content is gzip-compressed but the key does not end in .gz",
    "wine_data_ragged.csv": "data row 1 has 14 fields, the header has 5",
}


def test_the_corpus_is_complete() -> None:
    on_disk = {p.name for p in CORPUS.iterdir() if not p.name.startswith(".")}
    assert on_disk == set(LANDED) | set(SKIPPED) | set(REFUSED)


def _pipeline(tmp_path: Path, **props: Any) -> Stack:
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "RealFiles")
    EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        key_prefix="incoming/",
        batching=Batching(max_batch_size=100),
        **props,
    )
    return stack


@pytest.mark.spark
@pytest.mark.parametrize("table_format", TABLE_FORMATS)
def test_every_real_file_ends_as_documented(tmp_path: Path, table_format: TableFormat) -> None:
    stack = _pipeline(tmp_path, bad_records="quarantine", table_format=table_format)
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        for path in sorted(CORPUS.iterdir()):
            if not path.name.startswith("."):
                local.put_object(f"incoming/{path.name}", path.read_bytes())
        [run] = local.wait_for_runs(timeout=600)
        assert run.status == "SUCCEEDED", run.cause
        [note] = local.notifications
        uri = f"s3://{local.source_bucket}/incoming/"

        skipped = {e["object"].removeprefix(uri): e["reason"] for e in note["skipped"]}
        assert skipped == SKIPPED
        quarantined = {e["object"].removeprefix(uri): e["reason"] for e in note["quarantined"]}
        assert set(quarantined) == set(REFUSED)
        for name, reason in REFUSED.items():
            assert reason in quarantined[name], (name, quarantined[name])

        rows = local.read_output_rows()
        landed = Counter(r["_source_object"].removeprefix(uri) for r in rows)
        assert landed == {name: count() for name, count in LANDED.items()}
        assert note["rows"] == len(rows)
        assert note["landed"] == len(LANDED)
        keys = local.output_keys()
        for name in REFUSED:
            copy = f"quarantine/{run.name}/{local.source_bucket}/incoming/{name}"
            assert copy in keys and f"{copy}.reason.json" in keys


@pytest.mark.spark
def test_real_values_land_exactly_and_typed(tmp_path: Path) -> None:
    names = [
        "airports.csv",
        "danish_data_bom.csv",
        "scotland_metadata_quoted_newlines.csv",
        "iowa_electricity.csv",
        "sf_temps_nanos.parquet",
        "statecrime_german_header.csv",
    ]
    with LocalPipeline.from_stack(_pipeline(tmp_path), "Pipeline") as local:
        for name in names:
            local.put_object(f"incoming/{name}", (CORPUS / name).read_bytes())
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED", run.cause
        rows = local.read_output_rows()

    airports = {r["iata"]: r for r in rows if r.get("iata")}
    expected = pd.read_csv(CORPUS / "airports.csv", keep_default_na=False).set_index("iata")
    assert airports["DBN"]["name"] == expected.loc["DBN", "name"] == 'W. H. "Bud" Barron'
    assert airports["DBN"]["latitude"] == pytest.approx(expected.loc["DBN", "latitude"])
    assert isinstance(airports["DBN"]["latitude"], float)

    danish = [r for r in rows if r.get("period")]
    assert sorted(r["period"] for r in danish) == sorted(
        pd.read_csv(CORPUS / "danish_data_bom.csv", encoding="utf-8-sig")["period"]
    )

    with (CORPUS / "scotland_metadata_quoted_newlines.csv").open(newline="") as handle:
        _header, *records = list(csv.reader(handle))
    metadata = {r["dataset_name"]: r["rt331601"] for r in rows if r.get("dataset_name")}
    assert metadata == dict(records)  # the quoted blank lines are kept inside the value

    electricity = [r for r in rows if r.get("net_generation") is not None]
    assert {type(r["year"]).__name__ for r in electricity} == {"date"}

    temperatures = pq.read_table(CORPUS / "sf_temps_nanos.parquet").to_pylist()
    landed_times = sorted(r["date"].replace(tzinfo=None) for r in rows if r.get("temp") is not None)
    assert landed_times == sorted(t["date"].to_pydatetime() for t in _as_pandas(temperatures))

    german = [r for r in rows if r.get("bundesstaat")]
    assert len(german) == _csv_rows("statecrime_german_header.csv")
    assert {"weisse", "städtisch_strasse"} <= set(german[0])


def _as_pandas(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"date": pd.Timestamp(r["date"])} for r in records]


@pytest.mark.spark
def test_same_data_as_csv_and_json_lines_is_one_table(tmp_path: Path) -> None:
    cars = json.loads((CORPUS / "cars_array.json").read_text())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(cars[0]))
    writer.writeheader()
    writer.writerows(cars)
    as_jsonl = "".join(json.dumps(c) + "\n" for c in cars)
    with LocalPipeline.from_stack(_pipeline(tmp_path), "Pipeline") as local:
        local.put_object("incoming/cars.csv", buffer.getvalue().encode())
        local.wait_for_runs(timeout=300)
        local.put_object("incoming/cars.jsonl", as_jsonl.encode())
        runs = local.wait_for_runs(timeout=300)
        assert [r.status for r in runs] == ["SUCCEEDED", "SUCCEEDED"]
        rows = local.read_output_rows()  # pyarrow: raises if two files disagree on a type
        s3 = boto3.client("s3")
        types = {
            key: {
                f.name: str(f.type)
                for f in pq.read_schema(
                    io.BytesIO(s3.get_object(Bucket=local.output_bucket, Key=key)["Body"].read())
                )
            }
            for key in local.output_keys()
            if key.endswith(".parquet") and "/_" not in key
        }
    assert len(types) == 2
    first, second = types.values()
    assert first == second
    assert first["horsepower"] == "int64" and first["miles_per_gallon"] == "double"
    assert first["year"] == "date32[day]"
    assert len(rows) == 2 * len(cars)
    assert pa.Table.from_pylist(rows).num_rows == 2 * len(cars)


def test_corpus_files_are_what_the_readme_says() -> None:
    assert (CORPUS / "danish_data_bom.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert b"\n" not in (CORPUS / "cancer_cr_only.csv").read_bytes()
    assert gzip.decompress((CORPUS / "tips_gzip_named.csv").read_bytes()).startswith(b"total_bill")
    assert (CORPUS / "sf_temps_parquet_named.csv").read_bytes()[:4] == b"PAR1"
    schema = pq.read_schema(CORPUS / "sf_temps_nanos.parquet")
    assert str(schema.field("date").type) == "timestamp[ns]"
    assert (CORPUS / "empty.csv").stat().st_size == 0

"""The built-in Glue script: plain functions, and the transform on local PySpark 3.5."""

from __future__ import annotations

import bz2
import gzip
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from event_driven_etl.runtime.glue import etl_job
from event_driven_etl.runtime.glue.event_driven_etl_job import job
from event_driven_etl.runtime.glue.event_driven_etl_job.arguments import (
    CatalogTable,
    batch_id_of,
    object_uris,
    parse_args,
    parse_manifest_lines,
)
from event_driven_etl.runtime.glue.event_driven_etl_job.column_types import (
    FITS_MASK,
    TYPE_ORDER,
    fits,
    join_types,
    mask_type,
)
from event_driven_etl.runtime.glue.event_driven_etl_job.errors import JobInputError
from event_driven_etl.runtime.glue.event_driven_etl_job.job import run
from event_driven_etl.runtime.glue.event_driven_etl_job.names import (
    hadoop_path,
    normalise_column_names,
    object_format,
)
from event_driven_etl.runtime.glue.event_driven_etl_job.outcomes import Outcome
from event_driven_etl.runtime.glue.event_driven_etl_job.probe import Probe, sniff
from event_driven_etl.runtime.glue.event_driven_etl_job.read import FileStats, Group
from event_driven_etl.runtime.glue.event_driven_etl_job.report import refusal_cause
from event_driven_etl.runtime.glue.event_driven_etl_job.schema import (
    CatalogSchemaStore,
    SchemaConflictError,
    TableSchema,
    settle_schema,
)
from event_driven_etl.testing._output import read_table_rows


def test_parse_args_reads_glue_style_arguments() -> None:
    argv = [
        "--JOB_ID",
        "j1",
        "--objects",
        '["s3://b/k"]',
        "--manifest",
        "",
        "--output_path=s3://o/p/",
    ]
    args = parse_args(argv)
    assert args["objects"] == '["s3://b/k"]'
    assert args["output_path"] == "s3://o/p/"
    assert args["JOB_ID"] == "j1"


def test_empty_argument_value_is_kept_empty() -> None:
    assert parse_args(["--manifest", "--objects", "[]"]) == {
        "manifest": "",
        "objects": "[]",
    }


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["Order ID", "customerName", "total (EUR)"], ["order_id", "customer_name", "total_eur"]),
        (["a", "A", "a "], ["a", "a_2", "a_3"]),
        (["", "1st"], ["column_1", "_1st"]),
        (["_source_object"], ["source_object"]),
        (["ingestion_date"], ["ingestion_date_2"]),
    ],
)
def test_column_names_are_normalised_and_unique(names: list[str], expected: list[str]) -> None:
    assert normalise_column_names(names) == expected


@pytest.mark.parametrize(
    ("uri", "fmt"),
    [
        ("s3://b/a.csv", "csv"),
        ("s3://b/a.CSV.gz", "csv"),
        ("s3://b/a.jsonl", "json"),
        ("s3://b/x.parquet", "parquet"),
    ],
)
def test_object_format_follows_the_extension(uri: str, fmt: str) -> None:
    assert object_format(uri) == fmt


def test_fails_unsupported_format_names_the_object_and_the_allowed_ones() -> None:
    with pytest.raises(
        JobInputError,
        match=r"unsupported object format for 's3://b/a.xlsx': expected one of .csv",
    ):
        object_format("s3://b/a.xlsx")


def test_manifest_lines_accept_json_strings_and_bare_uris() -> None:
    assert parse_manifest_lines(['"s3://b/a b.csv"', "s3://b/c.csv", ""]) == [
        "s3://b/a b.csv",
        "s3://b/c.csv",
    ]


def test_hadoop_glob_characters_are_escaped() -> None:
    assert hadoop_path("s3://b/x[1]*.csv") == "s3://b/x\\[1\\]\\*.csv"


def test_fails_without_objects(spark: Any) -> None:
    with pytest.raises(JobInputError, match="no objects to process"):
        object_uris(spark, {"objects": "[]", "manifest": ""})


def test_fails_objects_that_are_not_a_json_list(spark: Any) -> None:
    with pytest.raises(JobInputError, match="--objects must be a JSON list"):
        object_uris(spark, {"objects": "s3://b/k.csv"})


# ---------------------------------------------------------------- content checks (no Spark)


@pytest.mark.parametrize(
    ("uri", "head", "problem"),
    [
        (
            "s3://b/a.csv",
            gzip.compress(b"a,b\n1,2\n", mtime=0),
            "content is gzip-compressed but the key does not end in .gz",
        ),
        (
            "s3://b/a.csv",
            bz2.compress(b"a,b\n1,2\n"),
            "content is bz2-compressed but the key does not end in .bz2",
        ),
        (
            "s3://b/a.csv",
            b"PAR1\x15\x04",
            "content is Parquet but the key does not end in .parquet",
        ),
        ("s3://b/a.csv.gz", b"a,b\n1,2\n", "the key ends in .gz but the content is not gzip"),
        ("s3://b/a.parquet", b"a,b\n1,2\n", "content is not Parquet"),
        ("s3://b/a.csv", b"PK\x03\x04rest", "archive or office document"),
        (
            "s3://b/a.csv",
            "Stra\xdfe,x\n1,2\n".encode("latin-1"),
            "content is not UTF-8 text (byte 4: 0xdf)",
        ),
        ("s3://b/a.csv", b"1,2,3\n4,5,6\n", "the first row looks like data, not a header"),
        (
            "s3://b/a.json",
            b'{\n  "type": "FeatureCollection"\n}',
            "not JSON lines (one object per line) nor a JSON array",
        ),
        ("s3://b/a.xlsx", b"x", "unsupported object format: expected one of .csv"),
    ],
)
def test_fails_content_that_does_not_match_its_name(uri: str, head: bytes, problem: str) -> None:
    probe = sniff(uri, len(head), head, head[-4:])
    assert probe.problem is not None and problem in probe.problem


@pytest.mark.parametrize(
    ("uri", "head", "check"),
    [
        (
            "s3://b/a.csv",
            b"\xef\xbb\xbfid;name\r\n1;x\r\n",
            lambda p: p.sep == ";" and p.header == ("id", "name"),
        ),
        ("s3://b/a.tsv", b"a,b\tc\n", lambda p: p.sep == "\t" and p.header == ("a,b", "c")),
        ("s3://b/a.csv", b"a|b\r1|2\r", lambda p: p.sep == "|" and p.header == ("a", "b")),
        (
            "s3://b/a.csv.gz",
            gzip.compress(b"x,y\n1,2\n", mtime=0),
            lambda p: p.header == ("x", "y"),
        ),
        ("s3://b/a.json", b'  [{"a": 1}]', lambda p: p.json_layout == "array"),
        ("s3://b/a.ndjson", b'{"a": 1}\n{"a": 2}\n', lambda p: p.json_layout == "lines"),
    ],
)
def test_real_dialects_are_recognised(uri: str, head: bytes, check: Any) -> None:
    probe = sniff(uri, len(head), head)
    assert probe.problem is None and probe.skip is None
    assert check(probe)


def test_an_empty_object_is_skipped_with_a_reason() -> None:
    assert sniff("s3://b/a.csv", 0, b"").skip == "empty object (0 bytes)"
    assert sniff("s3://b/a.jsonl", 3, b" \n\n").skip == "no data (only whitespace)"


M = FITS_MASK


@pytest.mark.parametrize(
    ("masks", "expected"),
    [
        ([M["bigint"], M["bigint"]], "bigint"),
        ([M["bigint"], M["double"]], "double"),
        ([M["boolean"]], "boolean"),
        ([M["date"], M["timestamp"]], "timestamp"),
        ([M["bigint"], M["boolean"]], "string"),
        ([M["date"], 0], "string"),
    ],
)
def test_a_column_takes_the_least_type_every_value_fits(masks: list[int], expected: str) -> None:
    meet = masks[0]
    for mask in masks[1:]:
        meet &= mask
    assert mask_type(meet) == expected


def test_types_join_by_widening_or_fall_back_to_string() -> None:
    assert join_types("bigint", "double") == "double"
    assert join_types("date", "timestamp") == "timestamp"
    assert join_types("bigint", "timestamp") == "string"
    assert join_types("decimal(10,2)", "bigint") == "string"
    assert fits("bigint", "double", M["bigint"])
    assert not fits("double", "bigint", M["double"])
    assert fits("double", "bigint", M["bigint"])  # 181.0 is the integer 181
    assert fits("string", "bigint", M["bigint"])
    assert not fits("string", "bigint", 0)


TYPES = st.sampled_from((*TYPE_ORDER, "string"))


@given(st.lists(TYPES, min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_the_join_of_types_does_not_depend_on_their_order(types: list[str], rng: Any) -> None:
    """Associative and commutative, and consistent with fits: the typing rule's core."""
    shuffled = list(types)
    rng.shuffle(shuffled)
    left, right = types[0], shuffled[0]
    for name in types[1:]:
        left = join_types(left, name)
    for name in shuffled[1:]:
        right = join_types(right, name)
    assert left == right
    for name in types:  # every value fits the joined type, as if it had come first
        mask = FITS_MASK.get(name)
        assert fits(name, left, mask)


def test_non_ascii_names_stay_readable() -> None:
    assert normalise_column_names(["Straße", "Größe (cm)", "名前", "\ufeffid"]) == [
        "strasse",
        "grösse_cm",  # case folding spells ß as ss
        "名前",
        "id",
    ]


def test_batch_id_is_the_input_identity() -> None:
    a = batch_id_of({}, ["s3://b/2.csv", "s3://b/1.csv"])
    assert a == batch_id_of({}, ["s3://b/1.csv", "s3://b/2.csv"])
    assert a != batch_id_of({}, ["s3://b/1.csv"])
    assert batch_id_of({"batch_id": "exec-1"}, []) == "exec-1"
    odd = batch_id_of({"batch_id": "a/b"}, [])
    assert "/" not in odd and odd != batch_id_of({"batch_id": "a:b"}, [])


def test_the_refusal_cause_names_the_first_object_on_its_first_line() -> None:
    refused = [
        Outcome("s3://b/x.csv", "refused", "data row 3 has 4 fields, the header has 2"),
        Outcome("s3://b/y.csv", "refused", "content is not UTF-8 text"),
    ]
    lines = refusal_cause(refused).splitlines()
    assert lines[0] == "s3://b/x.csv: data row 3 has 4 fields, the header has 2"
    assert lines[-1] == "s3://b/y.csv: content is not UTF-8 text"


def test_glue_style_argv_with_job_ids_and_defaults_is_parsed() -> None:
    argv = [
        "--JOB_ID",
        "j_1",
        "--JOB_RUN_ID",
        "jr_1",
        "--job-bookmark-option",
        "job-bookmark-disable",
        "--TempDir",
        "s3://t/",
        "--objects",
        '["s3://b/k"]',
        "--JOB_NAME",
        "etl",
        "--manifest",
        "--output_path",
        "s3://o/p/",
    ]
    args = parse_args(argv)
    assert args["JOB_RUN_ID"] == "jr_1" and args["JOB_NAME"] == "etl"
    assert args["manifest"] == "" and args["output_path"] == "s3://o/p/"


# ---------------------------------------------------------------- on local Spark


def _write(folder: Path, name: str, text: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return f"file://{path}"  # a raw key, as the workflow passes S3 URIs


def _table(out: Path) -> list[dict[str, Any]]:
    return read_table_rows(out)


@pytest.mark.spark
def test_run_lands_csv_and_json_typed_as_one_table(spark: Any, tmp_path: Path) -> None:
    csv = _write(
        tmp_path / "in", "orders file.csv", "Order ID,Customer Name,Paid\n1,Ann,true\n2,Bob,false\n"
    )
    jsonl = _write(
        tmp_path / "in",
        "more.jsonl",
        "\n".join(json.dumps({"Order ID": i, "extra": i}) for i in (3, 4)) + "\n",
    )
    out = tmp_path / "out"
    moment = datetime(2026, 1, 2, 3, 4, 5)
    report = run(spark, [csv, jsonl], out.as_uri() + "/", batch_id="b1", ingested_at=moment)
    assert report.rows == 4 and [o.status for o in report.outcomes] == ["landed", "landed"]
    written = sorted(_table(out), key=lambda r: r["order_id"])
    assert [r["order_id"] for r in written] == [1, 2, 3, 4]  # CSV and JSON agree: bigint
    assert written[0]["paid"] is True and written[2]["paid"] is None
    assert written[2]["extra"] == 3
    assert written[0]["_source_object"] == csv
    assert written[0]["ingestion_date"] == "2026-01-02"
    partition = out / "ingestion_date=2026-01-02"
    assert [p.name for p in partition.glob("*.parquet")] == ["b1-00000.snappy.parquet"]


@pytest.mark.spark
def test_one_spark_read_per_format_and_layout_not_per_object(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four CSVs of one header and two JSON-lines files: two reads (the data contract's "one
    Spark read per format per run"), however many objects each serves."""
    from pyspark.sql.readwriter import DataFrameReader

    reads: list[tuple[str, int]] = []
    for method in ("csv", "json", "parquet"):
        original = getattr(DataFrameReader, method)

        def counted(
            self: Any, *args: Any, _name: str = method, _orig: Any = original, **kwargs: Any
        ) -> Any:
            paths = args[0] if args and isinstance(args[0], list) else list(args)
            reads.append((_name, len(paths)))
            return _orig(self, *args, **kwargs)

        monkeypatch.setattr(DataFrameReader, method, counted)
    folder = tmp_path / "in"
    csvs = [_write(folder, f"part-{i}.csv", f"id,name\n{i},n{i}\n") for i in range(4)]
    jsons = [_write(folder, f"part-{i}.jsonl", json.dumps({"id": 10 + i}) + "\n") for i in range(2)]
    out = tmp_path / "out"
    report = run(spark, [*csvs, *jsons], out.as_uri() + "/", batch_id="b1")
    assert len(report.by_status("landed")) == 6 and report.rows == 6
    assert sorted(reads) == [("csv", 4), ("json", 2)]


@pytest.mark.spark
def test_running_the_same_input_twice_leaves_one_copy(spark: Any, tmp_path: Path) -> None:
    data = _write(tmp_path / "in", "a.csv", "x,y\n1,a\n2,b\n")
    out = tmp_path / "out"
    argv = ["--objects", json.dumps([data]), "--output_path", out.as_uri() + "/"]
    etl_job.main(argv)
    first = _table(out)
    etl_job.main(argv)  # a retry or redrive: the same input, the same identity
    assert sorted(map(str, _table(out))) == sorted(map(str, first))
    assert len(first) == 2


@pytest.mark.spark
def test_later_data_is_cast_to_the_tables_types_and_new_columns_are_added(
    spark: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = _write(tmp_path / "in", "one.csv", "id,price\n1,2.5\n")
    run(spark, [first], out.as_uri() + "/", batch_id="one")
    second = _write(tmp_path / "in", "two.jsonl", '{"id": 2, "price": 3, "colour": "red"}\n')
    run(spark, [second], out.as_uri() + "/", batch_id="two")
    rows = sorted(_table(out), key=lambda r: r["id"])
    assert [(r["id"], r["price"], r["colour"]) for r in rows] == [(1, 2.5, None), (2, 3.0, "red")]
    schema = json.loads((out / "_schema.json").read_text())["columns"]
    assert schema == [
        {"name": "id", "type": "bigint"},
        {"name": "price", "type": "double"},
        {"name": "colour", "type": "string"},
    ]


@pytest.mark.spark
def test_fails_a_value_that_does_not_fit_the_tables_type(spark: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(spark, [_write(tmp_path / "in", "one.csv", "id\n1\n")], out.as_uri() + "/", batch_id="one")
    bad = _write(tmp_path / "in", "two.csv", "id\nA-17\n")
    good = _write(tmp_path / "in", "three.csv", "id\n3\n")
    with pytest.raises(JobInputError) as raised:
        run(spark, [bad, good], out.as_uri() + "/", batch_id="two")
    first_line = str(raised.value).splitlines()[0]
    assert (
        first_line
        == f"{bad}: column 'id' holds text values that are not bigint (the table's type for it)"
    )
    assert sorted(r["id"] for r in _table(out)) == [1, 3]  # the good object of the batch landed
    report = json.loads((out / "_runs" / "two.summary.json").read_text())
    assert report["status"] == "FAILED" and report["cause"] == str(raised.value)


@pytest.mark.spark
def test_quarantine_copies_the_object_with_its_reason(spark: Any, tmp_path: Path) -> None:
    out, quarantine = tmp_path / "out", tmp_path / "quarantine"
    bad = _write(tmp_path / "in", "ragged.csv", "a,b\n1,2\n3,4,5\n")
    good = _write(tmp_path / "in", "ok.csv", "a,b\n1,2\n")
    report = run(
        spark,
        [bad, good],
        out.as_uri() + "/",
        batch_id="q",
        bad_records="quarantine",
        quarantine_path=quarantine.as_uri() + "/",
    )
    [entry] = report.summary()["quarantined"]
    assert entry["reason"] == "data row 2 has 3 fields, the header has 2: '3,4,5'"
    copy = Path(entry["copy"].removeprefix("file://"))
    assert copy.read_text() == "a,b\n1,2\n3,4,5\n"
    assert json.loads(Path(f"{copy}.reason.json").read_text())["reason"] == entry["reason"]
    assert len(_table(out)) == 1


@pytest.mark.spark
def test_main_reads_a_manifest(spark: Any, tmp_path: Path) -> None:
    data = _write(tmp_path, "a.csv", "x\n1\n")
    manifest = tmp_path / "batch.jsonl"
    manifest.write_text(json.dumps(data) + "\n")
    out = tmp_path / "out"
    report = etl_job.main(
        ["--objects", "[]", "--manifest", manifest.as_uri(), "--output_path", out.as_uri() + "/"]
    )
    assert report.rows == 1


def test_the_example_script_reads_glues_real_argv() -> None:
    import runpy

    example = Path(__file__).resolve().parents[2] / "examples/bring_your_own/glue/orders_job.py"
    job_arguments = runpy.run_path(str(example))["job_arguments"]
    argv = [
        "script_2026-11-25.py",
        "--JOB_ID",
        "j_0123",
        "--JOB_RUN_ID",
        "jr_0123",
        "--job-bookmark-option",
        "job-bookmark-disable",
        "--TempDir",
        "s3://aws-glue-assets-111111111111-eu-west-1/temporary/",
        "--enable-metrics",
        "true",
        "--objects",
        '["s3://raw/orders/a b.csv"]',
        "--manifest",
        "",
        "--output_path",
        "s3://out/processed/",
        "--batch_id",
        "batch2-orders",
        "--JOB_NAME",
        "orders-etl",
    ]
    assert job_arguments(argv) == {
        "objects": '["s3://raw/orders/a b.csv"]',
        "manifest": "",
        "output_path": "s3://out/processed/",
        "batch_id": "batch2-orders",
    }


@pytest.mark.spark
def test_a_manifest_of_100_000_uris_is_read(spark: Any, tmp_path: Path) -> None:
    uris = [f"s3://bucket/incoming/part {i:06d}.csv" for i in range(100_000)]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(u) + "\n" for u in uris))
    assert object_uris(spark, {"manifest": f"file://{manifest}"}) == uris


def test_concurrent_runs_agree_on_one_type_per_column() -> None:
    """Run B reads the table, run A creates it with ``x`` as text first: Glue refuses B's
    stale create, B plans again and lands ``x`` as text too (not as bigint)."""
    from typing import cast

    import boto3
    from moto import mock_aws
    from pyspark.sql import types as T  # noqa: N812

    from event_driven_etl.testing import _session

    _session.fix_moto()
    numbers = FileStats(rows=2, non_null={"x": 2}, masks={"x": FITS_MASK["bigint"]})
    group = Group(
        probes=[Probe(uri="s3://b/in/b.csv", fmt="csv")],
        frame=cast(Any, None),
        columns={"x": T.StringType()},
        stats={"s3://b/in/b.csv": numbers},
    )
    with mock_aws():
        boto3.client("glue", region_name="us-east-1").create_database(
            DatabaseInput={"Name": "lake"}
        )
        catalog = CatalogTable("lake", "orders", "us-east-1")
        run_a = CatalogSchemaStore(catalog, "s3://out/processed/")
        run_b = CatalogSchemaStore(catalog, "s3://out/processed/")
        first_load = run_b.load

        def load_then_lose_the_race() -> tuple[TableSchema, Any]:
            seen = first_load()
            if not run_a.load()[0].columns:
                run_a.commit(TableSchema({"x": "string"}), None)
            return seen

        run_b.load = load_then_lose_the_race  # type: ignore[method-assign]  # the race, planted
        table, bad = settle_schema(run_b, [group], {})
        assert table.columns == {"x": "string"} and bad == {}
        stored = boto3.client("glue", region_name="us-east-1").get_table(
            DatabaseName="lake", Name="orders"
        )["Table"]
        assert next(c["Type"] for c in stored["StorageDescriptor"]["Columns"]) == "string"

        # A stale update (the version another run already replaced) is refused the same way.
        _, version = run_a.load()
        run_a.commit(TableSchema({"x": "string", "y": "bigint"}), version)
        with pytest.raises(SchemaConflictError):
            run_b.commit(TableSchema({"x": "string", "z": "double"}), version)


@pytest.mark.spark
def test_a_retry_that_fails_another_way_leaves_no_stale_cause(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    bad = _write(tmp_path / "in", "ragged.csv", "a,b\n1,2,3\n")
    with pytest.raises(JobInputError):
        run(spark, [bad], out.as_uri() + "/", batch_id="b")
    summary = out / "_runs" / "b.summary.json"
    assert json.loads(summary.read_text())["cause"].startswith(bad)

    def crash(*_args: Any) -> Any:
        raise RuntimeError("the driver ran out of memory")

    monkeypatch.setattr(job, "probe_objects", crash)
    with pytest.raises(RuntimeError, match="out of memory"):
        run(spark, [bad], out.as_uri() + "/", batch_id="b")
    assert json.loads(summary.read_text())["status"] == "STARTED"
    assert json.loads(summary.read_text())["cause"] == ""


def test_the_refusal_cause_of_a_huge_batch_stays_small() -> None:
    refused = [
        Outcome(f"s3://b/in/{i:05d}-{'x' * 900}.csv", "refused", "content is binary")
        for i in range(10_000)
    ]
    cause = refusal_cause(refused, "s3://o/processed/_runs/b.json")
    assert len(cause) < 10_000
    assert cause.splitlines()[0] == refused[0].object + ": content is binary"
    assert cause.splitlines()[-1].endswith("more (every one is in s3://o/processed/_runs/b.json)")

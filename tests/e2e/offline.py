"""Shared by the offline tests that change a synthesized template before running it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack

from event_driven_etl import EventDrivenEtlPipeline, TableFormat
from event_driven_etl.testing import LocalPipeline
from event_driven_etl.testing._iceberg import iceberg_jar_names, iceberg_jars, jars_dir
from event_driven_etl.testing._template import StackTemplate, load_from_assembly

CSV = b"id,name\n1,Ann\n"


ICEBERG_OFFLINE = [
    pytest.mark.skipif(
        not iceberg_jars(),
        reason=f"run scripts/setup: {', '.join(iceberg_jar_names())} in {jars_dir()}",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("flask") is None,
        reason="moto's server needs the testing extra's moto[server]",
    ),
]
"""Marks of a test that runs TableFormat.ICEBERG offline (the jars and moto's server)."""

TABLE_FORMATS = [
    pytest.param(TableFormat.PARQUET, id="parquet"),
    pytest.param(TableFormat.ICEBERG, id="iceberg", marks=ICEBERG_OFFLINE),
]
"""Both table formats, for a data-contract test that holds for each."""


def no_spark(_script: Path, _arguments: dict[str, str]) -> None:
    """A Glue run that succeeds without Spark (the permission checks still run)."""


def synthesized(tmp_path: Path, **props: Any) -> StackTemplate:
    """The template of a stack ``E2E`` with one pipeline (``key_prefix="in/"``)."""
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "E2E")
    EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="in/", **props)
    return load_from_assembly(app.synth().directory, "E2E")


def iceberg_stack(tmp_path: Path, stack_name: str = "Lake", **props: Any) -> Stack:
    """A stack with one Iceberg pipeline (``key_prefix="in/"``, its table ``orders``)."""
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, stack_name)
    EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        key_prefix="in/",
        catalog_table_name="orders",
        table_format=TableFormat.ICEBERG,
        **props,
    )
    return stack


def offline(template: StackTemplate, **options: Any) -> LocalPipeline:
    """The pipeline of :func:`synthesized`, run without Spark unless told otherwise."""
    return LocalPipeline(template, "/E2E/Pipeline", **{"glue_runner": no_spark, **options})

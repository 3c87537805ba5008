"""Shared by the offline tests that change a synthesized template before running it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import App, Stack

from event_driven_etl import EventDrivenEtlPipeline
from event_driven_etl.testing import LocalPipeline
from event_driven_etl.testing._template import StackTemplate, load_from_assembly

CSV = b"id,name\n1,Ann\n"


def no_spark(_script: Path, _arguments: dict[str, str]) -> None:
    """A Glue run that succeeds without Spark (the permission checks still run)."""


def synthesized(tmp_path: Path, **props: Any) -> StackTemplate:
    """The template of a stack ``E2E`` with one pipeline (``key_prefix="in/"``)."""
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "E2E")
    EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="in/", **props)
    return load_from_assembly(app.synth().directory, "E2E")


def offline(template: StackTemplate, **options: Any) -> LocalPipeline:
    """The pipeline of :func:`synthesized`, run without Spark unless told otherwise."""
    return LocalPipeline(template, "/E2E/Pipeline", **{"glue_runner": no_spark, **options})

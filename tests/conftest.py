"""Shared fixtures: a fresh CDK app and stack per test, and template helpers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_DEPRECATED", "quiet")

from aws_cdk import App, Environment, Stack

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["event_driven_etl.testing.pytest_plugin"]


@pytest.fixture
def app(tmp_path: Path) -> App:
    return App(outdir=str(tmp_path / "cdk.out"))


@pytest.fixture
def stack(app: App) -> Stack:
    return Stack(app, "TestStack", env=Environment(account="111111111111", region="eu-west-1"))


@pytest.fixture
def spark() -> Any:
    from event_driven_etl.testing._spark import spark_session

    return spark_session()

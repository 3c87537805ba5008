"""Fixtures of the unit tests that talk to (moto's) S3 as the job's marks do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.claims_fakes import moto_output_bucket


@pytest.fixture
def s3() -> Iterator[Any]:
    """moto's S3 with the output bucket ``out``: its client."""
    yield from moto_output_bucket()


@pytest.fixture
def aws_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """The region a client made without one finds (Glue's runtime sets it)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

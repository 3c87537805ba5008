"""pytest fixtures for LocalPipeline. Enable them in your ``conftest.py``::

    pytest_plugins = ["event_driven_etl.testing.pytest_plugin"]

then::

    def test_lands_orders(local_pipeline):
        stack = build_my_stack(App())
        local = local_pipeline(stack, "Pipeline")
        local.put_object("incoming/orders.csv", b"id\\n1\\n")
        assert [r.status for r in local.wait_for_runs()] == ["SUCCEEDED"]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable

import pytest

from ._local import LocalPipeline

StartLocalPipeline = Callable[..., LocalPipeline]


@pytest.fixture
def local_pipeline() -> Iterator[StartLocalPipeline]:
    """Start a pipeline of a stack offline; every one started is stopped after the test.

    Call it as ``local_pipeline(stack, construct_id="Pipeline", **options)``, with the
    options of :class:`LocalPipeline` (``glue_runner``, ``glue_run_time``, ``run_glue_script``,
    ``work_dir``).
    """
    started: list[LocalPipeline] = []

    def start(stack: Any, construct_id: str = "Pipeline", **options: Any) -> LocalPipeline:
        pipeline = LocalPipeline.from_stack(stack, construct_id, **options)
        pipeline.start()
        started.append(pipeline)
        return pipeline

    yield start
    for pipeline in reversed(started):
        pipeline.stop()


@pytest.fixture
def no_spark() -> Callable[[Any, dict[str, str]], None]:
    """A ``glue_runner`` whose runs succeed without running the script (no Java needed)."""

    def run(_script: Any, _arguments: dict[str, str]) -> None:
        return None

    return run

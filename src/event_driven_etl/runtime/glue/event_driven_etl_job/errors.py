"""The job's one error for bad input."""

from __future__ import annotations

from typing import Any, Optional


class JobInputError(ValueError):
    """The job's arguments or its objects cannot be processed (a data error, not a bug)."""

    report: Optional[Any] = None
    """The run's ``report.RunReport`` when the run wrote it before failing (objects refused):
    a run over several tables gathers each table's outcomes from it."""

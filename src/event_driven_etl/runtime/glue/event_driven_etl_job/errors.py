"""The job's one error for bad input."""

from __future__ import annotations


class JobInputError(ValueError):
    """The job's arguments or its objects cannot be processed (a data error, not a bug)."""

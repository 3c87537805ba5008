"""The one exception this library raises for bad props."""

from __future__ import annotations

from collections.abc import Sequence

from ._docs import public

__all__ = ["ValidationError"]


@public
class ValidationError(ValueError, TypeError):
    """Props given to a construct (or to :class:`RetryPolicy` / :class:`Batching`) are invalid.

    Raised at construction, before any resource is created, with every problem found at once,
    wrong types and wrong values together. Each problem names the prop, shows the bad value
    and says what is allowed. A ``ValueError``, and a ``TypeError`` too, so one ``except``
    catches a prop of the wrong type as well.
    """

    problems: tuple[str, ...]
    """One line per problem, e.g. ``"key_prefix='/in/': must not start with '/'..."``."""

    def __init__(self, owner: str, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        heading = f"{owner}: {count} invalid prop{'s' if count != 1 else ''}"
        super().__init__("\n  - ".join([heading, *self.problems]))

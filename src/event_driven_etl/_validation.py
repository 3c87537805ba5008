"""Collect every prop problem first, then raise one ValidationError (token-aware)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Optional

from aws_cdk import Duration, Token

from .errors import ValidationError

_TOKEN_MARKER = "${Token["
_SMALLEST_PLAIN_NUMBER = -1e200  # CDK encodes number tokens as huge negative floats


_DURATIONS: dict[int, tuple[Duration, Optional[float]]] = {}


def _duration_millis(value: Duration) -> Optional[float]:
    """Milliseconds of a Duration, None for a token; remembered per Duration object, since
    each question costs a jsii round trip and defaults are the same objects every time."""
    cached = _DURATIONS.get(id(value))
    if cached is None or cached[0] is not value:
        millis = None if value.is_unresolved() else float(value.to_milliseconds())
        cached = (value, millis)
        if len(_DURATIONS) > 1024:  # a cache, not a registry: keep it small
            _DURATIONS.clear()
        _DURATIONS[id(value)] = cached
    return cached[1]


def is_unresolved(value: Any) -> bool:
    """True for CDK tokens, whose real value is only known at deploy time.

    Plain strings and numbers are recognised here without asking the jsii kernel, which
    costs a round trip per question.
    """
    if isinstance(value, Duration):
        return _duration_millis(value) is None
    if isinstance(value, str):
        return _TOKEN_MARKER in value and Token.is_unresolved(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value < _SMALLEST_PLAIN_NUMBER and Token.is_unresolved(value)
    return False


def show(value: Any) -> str:
    if isinstance(value, Duration):
        millis = _duration_millis(value)
        if millis is not None and millis % 1000:  # the human string would hide the fraction
            return f"Duration.millis({millis:g})"
        return value.to_human_string()
    return repr(value)


class Problems:
    """A list of prop problems for one construct; :meth:`raise_if_any` raises them together."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.items: list[str] = []
        self._names: dict[str, str] = {}

    @contextmanager
    def named(self, names: dict[str, str]) -> Iterator[Problems]:
        """Report a sub-construct's props under the names the user wrote (``timeout`` of the
        Glue job is the pipeline's ``job_timeout``)."""
        saved, self._names = self._names, names
        try:
            yield self
        finally:
            self._names = saved

    def add(self, prop: str, value: Any, allowed: str) -> None:
        self.items.append(f"{self._names.get(prop, prop)}={show(value)}: {allowed}")

    def require(self, ok: bool, prop: str, value: Any, allowed: str) -> None:
        """Record a problem unless ``ok``; values that are tokens are never judged."""
        if not ok and not is_unresolved(value):
            self.add(prop, value, allowed)

    def integer_in_range(self, prop: str, value: Any, low: int, high: int) -> None:
        if value is None or is_unresolved(value):
            return
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        self.require(ok, prop, value, f"must be a whole number from {low} to {high}")

    def seconds_in_range(
        self, prop: str, value: Duration | None, low: float, high: float, *, step: int = 1
    ) -> None:
        """A duration from ``low`` to ``high`` seconds, in whole ``step`` seconds (AWS takes
        whole seconds, Glue whole minutes, CloudWatch periods multiples of 60 s)."""
        millis = None if value is None else _duration_millis(value)
        if millis is None:
            return
        seconds = millis / 1000
        ok = low <= seconds <= high and millis % (step * 1000) == 0
        unit = "whole minutes" if step == 60 else "whole seconds"
        self.require(ok, prop, value, f"must be from {_human(low)} to {_human(high)}, in {unit}")

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationError(self.owner, self.items)


def _human(seconds: float) -> str:
    if seconds and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} hour(s)"
    if seconds and seconds % 60 == 0:
        return f"{int(seconds // 60)} minute(s)"
    return f"{seconds:g} second(s)"


def check_resource_types(**props: tuple[Any, str, str]) -> None:
    """Raise one TypeError for props that are not the resource they should be: each prop is
    ``(value, an attribute every such resource has, what to pass)``. jsii interfaces cannot
    be checked with ``isinstance``; a bucket *name* given where a bucket is meant can."""
    wrong = [
        f"{prop} must be {expected}, got {type(value).__name__} {value!r}"
        for prop, (value, attribute, expected) in props.items()
        if value is not None and (isinstance(value, (str, bytes)) or not hasattr(value, attribute))
    ]
    if wrong:
        raise TypeError("; ".join(wrong))


def key_filter_problems(problems: Problems, prop: str, value: str | None) -> None:
    """Prefix/suffix filters: literal text as stored in S3, no leading '/', no wildcards."""
    if value is None or is_unresolved(value):
        return
    if not isinstance(value, str) or not value:
        problems.add(prop, value, "must be a non-empty string, or None for no filter")
        return
    if prop.endswith("key_prefix") and value.startswith("/"):
        problems.add(prop, value, "must not start with '/': S3 keys have no leading slash")
    if len(value.encode("utf-8")) > 1024:
        problems.add(prop, value[:40] + "...", "must be at most 1,024 bytes (S3's key limit)")

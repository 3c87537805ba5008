"""Collect every prop problem first, then raise one ValidationError (token-aware).

The machinery: :class:`Problems`, how a value is shown, the type checks. What each construct
checks lives in ``_validation``.
"""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Callable, Optional

from aws_cdk import Duration, Token

from .errors import ValidationError

_TOKEN_MARKER = "${Token["
_SMALLEST_PLAIN_NUMBER = -1e200  # CDK encodes number tokens as huge negative floats


_DURATIONS: dict[int, tuple[Duration, Optional[float]]] = {}


def _duration_millis(value: Duration) -> Optional[float]:
    """Milliseconds of a Duration, None for a token (or for what is not a Duration, whose
    type is reported on its own); remembered per Duration object, since each question
    costs a jsii round trip and defaults are the same objects every time."""
    if not isinstance(value, Duration):
        return None
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


_SHOWN_LENGTH = 80


def show(value: Any) -> str:
    """A value as a user recognises it: a Duration as a duration, a construct by its path,
    an enum member as written in code, a token described (never ``${Token[...]}``), and
    never a Python repr like ``<aws_cdk.aws_sns.Topic object at 0x...>``."""
    if isinstance(value, Duration):
        millis = _duration_millis(value)
        if millis is None:
            return "a Duration token (known only at deploy time)"
        if millis % 1000:  # the human string would hide the fraction
            return f"Duration.millis({millis:g})"
        return value.to_human_string()
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, str):
        if type(value) is not str:  # a str subclass shows itself as written in code
            return repr(value)
        if is_unresolved(value):
            return "a token (known only at deploy time)"
        shown = value if len(value) <= _SHOWN_LENGTH else f"{value[:_SHOWN_LENGTH]}..."
        return repr(shown)
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    node = getattr(value, "node", None)
    path = getattr(node, "path", None)
    if isinstance(path, str):
        return f"{_kind(value)} at '{path or '<the app>'}'"
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        text = repr(value)
        return text if len(text) <= _SHOWN_LENGTH else f"{text[:_SHOWN_LENGTH]}...{text[-1]}"
    if getattr(type(value), "__repr__", None) is object.__repr__:  # <x.Y object at 0x...>
        return f"a {_kind(value)}"
    return repr(value)


def _kind(value: Any) -> str:
    """``sns.Topic`` for ``aws_cdk.aws_sns.Topic``: the name as users import it."""
    cls = type(value)
    module = cls.__module__.rsplit(".", 1)[-1].removeprefix("aws_")
    if cls.__module__.startswith("aws_cdk") and module not in ("aws_cdk", "_jsii"):
        return f"{module}.{cls.__name__.lstrip('_').removesuffix('Proxy')}"
    return cls.__name__.lstrip("_").removesuffix("Proxy")


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

    def check_types(self, props: Mapping[str, tuple[Any, TypeCheck]]) -> set[str]:
        """Check each prop's type (``{prop: (value, check)}``) before any value check or CDK
        sees it; return the props whose type is wrong (their values are not judged)."""
        wrong = set()
        for prop, (value, check) in props.items():
            if value is None:
                continue
            allowed = check(value)
            if allowed is not None:
                self.add(prop, value, allowed)
                wrong.add(prop)
        return wrong

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationError(self.owner, self.items)


def _human(seconds: float) -> str:
    if seconds and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} hour(s)"
    if seconds and seconds % 60 == 0:
        return f"{int(seconds // 60)} minute(s)"
    return f"{seconds:g} second(s)"


TypeCheck = Callable[[Any], Optional[str]]
"""A prop's type check: None when the value has the right type, else what is allowed."""


def resource(attribute: str, expected: str) -> TypeCheck:
    """A jsii interface (``s3.IBucket`` ...): jsii interfaces cannot be checked with
    ``isinstance``, so by an attribute every such resource has; a bucket *name* given where
    a bucket is meant is caught too."""

    def check(value: Any) -> Optional[str]:
        if isinstance(value, (str, bytes)) or not hasattr(value, attribute):
            return f"must be {expected}"
        return None

    return check


def instance(cls: type, expected: str) -> TypeCheck:
    """An instance of ``cls`` (a value class such as ``RetryPolicy``, or a CDK class)."""
    return lambda value: None if isinstance(value, cls) else f"must be {expected}"


def member_of(enum_type: type[enum.Enum], allowed: Optional[str] = None) -> TypeCheck:
    """A member of a (jsii) enum: ``glue.ExecutionClass.FLEX``, not the string ``"FLEX"``."""
    names = ", ".join(f"{enum_type.__name__}.{m.name}" for m in enum_type)

    def check(value: Any) -> Optional[str]:
        if isinstance(value, enum_type):
            return None
        return allowed or f"must be one of {names}"

    return check


def boolean(value: Any) -> Optional[str]:
    """True or False; a string such as ``"false"`` is not taken for a bool."""
    return None if isinstance(value, bool) else "must be True or False"


def duration(value: Any) -> Optional[str]:
    """An ``aws_cdk.Duration``; a bare number has no unit."""
    if isinstance(value, Duration):
        return None
    return "must be an aws_cdk.Duration (e.g. Duration.minutes(30)), not a bare number"


def string(value: Any) -> Optional[str]:
    return None if isinstance(value, str) else "must be a string"


def whole_number(value: Any) -> Optional[str]:
    ok = isinstance(value, int) and not isinstance(value, bool)
    return None if ok else "must be a whole number (int)"


def string_mapping(value: Any) -> Optional[str]:
    """A mapping of string names to string values (Glue job arguments)."""
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return None
    return "must be a mapping of '--name' strings to string values"


def usable(
    given: Mapping[str, Any], wrong: set[str], function: Callable[..., Any]
) -> dict[str, Any]:
    """``given`` with each prop of the wrong type replaced by its default in ``function``'s
    signature: the value checks then judge only values of the right type (a wrong type is
    reported once, by :meth:`Problems.check_types`)."""
    defaults = signature_defaults(function)
    return {prop: defaults.get(prop) if prop in wrong else value for prop, value in given.items()}


@functools.cache
def signature_defaults(function: Callable[..., Any]) -> Mapping[str, Any]:
    """The default of each keyword-only parameter of ``function`` (a construct's props)."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind is parameter.KEYWORD_ONLY and parameter.default is not parameter.empty
    }


def with_defaults(function: Callable[..., Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The props a construct would see: ``given`` over the defaults of ``function``."""
    return {**signature_defaults(function), **given}

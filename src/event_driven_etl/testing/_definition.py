"""Pure rewrites of a synthesized state machine for the emulation: its definition with
intrinsics and substitutions resolved, topics imported by ARN pointed at emulated ones, and
the event pattern of the rule that starts it. No emulated service is touched here."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ._layout import refers_to
from ._template import Resolver

TOPIC_ARN = re.compile(r"arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w.-]+")
"""An SNS topic ARN in any partition, region and account."""


def machine_definition(resources: Mapping[str, Any], resolver: Resolver, logical_id: str) -> str:
    """The state machine's definition as Step Functions receives it."""
    props = resources[logical_id]["Properties"]
    definition = str(resolver.resolve(props["DefinitionString"]))
    for name, value in resolver.resolve(props.get("DefinitionSubstitutions", {})).items():
        definition = definition.replace("${" + name + "}", str(value))
    return definition


_RESERVED_IN_LITERALS = "{}"
"""Characters an intrinsic function's string literal must escape with a backslash: Step
Functions reserves ``'``, ``{``, ``}`` and ``\\`` there ("Reserved characters",
https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html); an unescaped
quote or backslash already breaks moto's parser, the braces it accepts silently."""


def check_intrinsic_literals(definition: str) -> None:
    """Refuse, as ``CreateStateMachine`` does (``InvalidDefinition``), a definition whose
    intrinsic function has a string literal with an unescaped ``{`` or ``}`` (e.g.
    ``States.StringToJson('{}')``); ``{}`` stays allowed in ``States.Format``'s template,
    where it is the placeholder."""
    from botocore.exceptions import ClientError

    for path, text in _intrinsics(json.loads(definition), "$"):
        bad = _unescaped_braces(text)
        if bad:
            raise ClientError(
                {
                    "Error": {
                        "Code": "InvalidDefinition",
                        "Message": f"{path}: {text!r}: the string literal {bad!r} holds an "
                        "unescaped '{' or '}' (reserved in intrinsic functions: write "
                        "'\\{' and '\\}')",
                    }
                },
                "CreateStateMachine",
            )


def _intrinsics(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every ``"<field>.$": "States.…"`` of a definition, with where it is."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if key.endswith(".$") and isinstance(item, str) and item.startswith("States."):
                yield where, item
            else:
                yield from _intrinsics(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _intrinsics(item, f"{path}[{index}]")


def _unescaped_braces(expression: str) -> str:
    """The first string literal of ``expression`` with an unescaped brace ("" when none)."""
    start = -1
    escaped = False
    for index, char in enumerate(expression):
        if start < 0:
            if char == "'":
                start = index
            continue
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "'":
            literal = expression[start : index + 1]
            if _has_bare_brace(literal, expression[:start]):
                return literal
            start = -1
    return ""


def _has_bare_brace(literal: str, before: str) -> bool:
    """Whether ``literal`` (quotes included) has an unescaped brace that is not a
    ``States.Format`` template's ``{}`` placeholder."""
    is_template = before.rstrip().endswith("States.Format(")
    unescaped = re.sub(r"\\.", "", literal)  # drop every escaped character
    if is_template:
        unescaped = unescaped.replace("{}", "")
    return any(char in unescaped for char in _RESERVED_IN_LITERALS)


def point_at_emulated_topics(
    definition: str, known: Iterable[str], emulate: Callable[[str], str]
) -> str:
    """Each topic ARN in ``definition`` that is not ``known`` (imported by ARN, in any
    account or region) replaced by ``emulate(arn)``, the ARN of its emulated stand-in."""
    for arn in sorted(set(TOPIC_ARN.findall(definition)) - set(known)):
        definition = definition.replace(arn, emulate(arn))
    return definition


def pattern_of_rule_targeting(
    resources: Mapping[str, Any], resolver: Resolver, logical_id: str
) -> dict[str, Any]:
    """The event pattern of the template's rule whose target is ``logical_id``."""
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Events::Rule" and any(
            refers_to(t.get("Arn"), logical_id) for t in props.get("Targets", [])
        ):
            return dict(resolver.resolve(props["EventPattern"]))
    raise ValueError(f"no rule in the template targets {logical_id}")

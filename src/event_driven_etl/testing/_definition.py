"""Pure rewrites of a synthesized state machine for the emulation: its definition with
intrinsics and substitutions resolved, topics imported by ARN pointed at emulated ones, and
the event pattern of the rule that starts it. No emulated service is touched here."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
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

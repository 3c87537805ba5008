"""Stage 2, plan: which objects Spark reads, in groups that one ``spark.read`` each serves;
what the probe found wrong or empty becomes the first verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .outcomes import Verdicts
from .probe import Probe


@dataclass(frozen=True)
class ReadPlan:
    """The probe's verdicts, and the readable objects grouped by format and layout."""

    verdicts: Verdicts
    groups: tuple[tuple[Probe, ...], ...]
    sizes: dict[str, int]
    """Object URI -> bytes (to size the files the write makes)."""


def plan_reads(probes: Sequence[Probe]) -> ReadPlan:
    refused = {p.uri: p.problem for p in probes if p.problem}
    skipped = {p.uri: p.skip for p in probes if p.skip and not p.problem}
    groups: dict[tuple[Any, ...], list[Probe]] = {}
    for probe in probes:
        if probe.uri not in refused and probe.uri not in skipped:
            groups.setdefault(probe.group, []).append(probe)
    return ReadPlan(
        verdicts=Verdicts(refused, skipped),
        groups=tuple(tuple(members) for members in groups.values()),
        sizes={p.uri: p.size for p in probes},
    )

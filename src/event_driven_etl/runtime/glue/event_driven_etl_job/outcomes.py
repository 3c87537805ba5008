"""What happens to each object: the run's one outcome ledger.

Each stage returns :class:`Verdicts` about the objects it judged; the ledger records them,
and what no stage refused or skipped lands. An object ends in exactly one outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class Outcome:
    """What happened to one object."""

    object: str
    status: str
    """``landed``, ``skipped``, ``refused`` or ``quarantined``."""
    reason: Optional[str] = None
    rows: int = 0
    copy: Optional[str] = None

    def entry(self) -> dict[str, Any]:
        data: dict[str, Any] = {"object": self.object}
        if self.status == "landed":
            data["rows"] = self.rows
        else:
            data["reason"] = self.reason
        if self.copy:
            data["copy"] = self.copy
        return data


@dataclass(frozen=True)
class Verdicts:
    """What one stage decided: objects refused and objects skipped, each with why."""

    refused: Mapping[str, str] = field(default_factory=dict)
    skipped: Mapping[str, str] = field(default_factory=dict)


class Ledger:
    """Every object's outcome as the stages decide it; a refusal outranks a skip."""

    def __init__(self) -> None:
        self._decided: dict[str, Outcome] = {}

    def record(self, verdicts: Verdicts) -> None:
        for uri, reason in verdicts.skipped.items():
            self._decided.setdefault(uri, Outcome(uri, "skipped", reason))
        for uri, reason in verdicts.refused.items():
            self._decided[uri] = Outcome(uri, "refused", reason)

    def is_open(self, uri: str) -> bool:
        """Whether no stage refused or skipped ``uri`` (yet): its rows may land."""
        return uri not in self._decided

    @property
    def refused(self) -> dict[str, str]:
        """Refused objects -> why."""
        return {u: str(o.reason) for u, o in self._decided.items() if o.status == "refused"}

    def decided(self, uri: str) -> Optional[Outcome]:
        """The refusal or skip of ``uri``, or None (it lands)."""
        return self._decided.get(uri)

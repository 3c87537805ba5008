"""TableMaintenance: scheduled maintenance of the pipeline's Iceberg table (compaction of old
batches' small files, snapshot expiry, orphan file removal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from aws_cdk import Duration
from aws_cdk import aws_events as events

from ._docs import public
from ._problems import Problems, is_unresolved

__all__ = ["TableMaintenance"]

_DAY_SECONDS = 24 * 3600
_LONGEST_SECONDS = 3650 * _DAY_SECONDS


def _daily_at_three() -> events.Schedule:
    return events.Schedule.cron(minute="0", hour="3")


@public
@dataclass(frozen=True)
class TableMaintenance:
    """Scheduled maintenance of the pipeline's Iceberg table (prop ``table_maintenance``).

    A small Glue job of its own, started by a Glue scheduled trigger, runs Iceberg's Spark
    procedures on the table through the same ``glue_catalog`` the pipeline's job writes with:
    ``rewrite_data_files`` (compaction of the small files that per-object runs write) on rows
    ingested long enough ago that no retry or redrive of their batch can come any more (the
    workflow's timeout twice plus Step Functions' 14-day redrive window), so a re-run of a
    batch still replaces its own rows exactly once; ``expire_snapshots``; and
    ``remove_orphan_files`` in the table's ``data/`` and ``metadata/`` folders. A failed run
    is notified on the notification topic. See the README's "Iceberg tables".

    Validates itself on construction and raises :class:`ValidationError`.
    """

    schedule: Optional[events.Schedule] = None
    """When maintenance runs: an ``events.Schedule.cron(...)`` (UTC), which Glue's scheduled
    trigger takes as is; ``rate(...)`` is refused (Glue triggers take cron expressions only).
    Default: - daily at 03:00 UTC (``events.Schedule.cron(minute="0", hour="3")``)"""

    snapshot_retention: Duration = field(default_factory=lambda: Duration.days(7))
    """Snapshots older than this are expired (the current one always stays), with the data
    and metadata files only they referenced; time travel reaches back this far. At least
    1 day. Default: 7 days"""

    compact: bool = True
    """Compact the small data files of batches past their re-run window into larger ones
    (Iceberg's bin-packing ``rewrite_data_files``). Default: True"""

    remove_orphans_older_than: Optional[Duration] = field(default_factory=lambda: Duration.days(3))
    """Delete files in the table's ``data/`` and ``metadata/`` folders that no snapshot
    references (left by failed writes) once they are older than this: at least 1 day, so a
    write still in progress keeps its files (Iceberg's own floor). None: no orphan removal.
    Default: 3 days"""

    def __post_init__(self) -> None:
        problems = Problems("TableMaintenance")
        self._check_schedule(problems)
        self._check_days(problems, "snapshot_retention", self.snapshot_retention)
        problems.require(
            isinstance(self.compact, bool), "compact", self.compact, "must be True or False"
        )
        if self.remove_orphans_older_than is not None:
            self._check_days(problems, "remove_orphans_older_than", self.remove_orphans_older_than)
        problems.raise_if_any()

    def _cron_expression(self) -> str:
        """The schedule as Glue's trigger takes it: ``cron(...)``."""
        return (self.schedule or _daily_at_three()).expression_string

    def _check_schedule(self, problems: Problems) -> None:
        if self.schedule is None:
            return
        if not isinstance(self.schedule, events.Schedule):
            problems.add(
                "schedule",
                self.schedule,
                "must be an events.Schedule (e.g. events.Schedule.cron(minute='0', hour='3'))",
            )
            return
        expression = self.schedule.expression_string
        if not is_unresolved(expression) and not expression.startswith("cron("):
            problems.add(
                "schedule",
                expression,
                "must be events.Schedule.cron(...): a Glue scheduled trigger takes cron "
                "expressions only",
            )

    @staticmethod
    def _check_days(problems: Problems, prop: str, value: object) -> None:
        if not isinstance(value, Duration):
            problems.add(prop, value, "must be an aws_cdk.Duration (e.g. Duration.days(7))")
            return
        problems.seconds_in_range(prop, value, _DAY_SECONDS, _LONGEST_SECONDS)

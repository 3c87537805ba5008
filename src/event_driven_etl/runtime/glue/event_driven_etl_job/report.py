"""Stage 7, report: every object's outcome in the run report ``<output>_runs/<batch_id>.json``
and the short ``<batch_id>.summary.json`` the workflow reads. Refused objects are copied to
the quarantine (``bad_records=quarantine``) or fail the run after the good ones landed."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from .arguments import JobArgs
from .errors import JobInputError
from .outcomes import Ledger, Outcome
from .shared import contract
from .storage import Storage

if TYPE_CHECKING:  # the report imports no pyspark; the gate is only read here
    from .quality_gate import QualityGate

REPORT_LIST_LIMIT = 20
"""Entries per list in the summary the workflow reads (Step Functions payloads are small)."""


@dataclass
class RunReport:
    """What one run did, object by object (``_runs/<batch_id>.json``)."""

    batch_id: str
    ingestion_date: str
    ingested_at: str
    status: str = "STARTED"
    outcomes: list[Outcome] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    cause: str = ""
    tables: Optional[dict[str, dict[str, int]]] = None
    """With table routing: each table's ``rows`` and ``landed`` objects (None: one table)."""
    held: set[str] = field(default_factory=set)
    """Objects held back because a dataset-level quality rule failed (never quarantined)."""
    quality: list[dict[str, Any]] = field(default_factory=list)
    """Each quality rule's result: ``table``, ``rule``, ``outcome``, ``observed`` (the run
    report adds ``failed_rows`` and ``reason``)."""
    quality_quarantine: str = ""
    """Where rows failing a row-level rule were written (``bad_records=quarantine``)."""

    def by_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def rows(self) -> int:
        return sum(o.rows for o in self.by_status("landed"))

    def full(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "batch_id": self.batch_id,
            "status": self.status,
            "ingestion_date": self.ingestion_date,
            "ingested_at": self.ingested_at,
            "rows": self.rows,
            "files": self.files,
            "cause": self.cause,
        }
        for status in ("landed", "skipped", "quarantined", "refused"):
            data[status] = [o.entry() for o in self.by_status(status)]
        if self.tables is not None:
            data[contract.SUMMARY_TABLES_FIELD] = self.tables
        data["quality"] = self.quality
        if self.quality_quarantine:
            data["quality_quarantine"] = self.quality_quarantine
        return data

    def summary(self) -> dict[str, Any]:
        """The short form the workflow reads: every key always present, lists capped."""
        data: dict[str, Any] = {
            "batch_id": self.batch_id,
            "status": self.status,
            "rows": self.rows,
            "landed": len(self.by_status("landed")),
            "cause": self.cause,
        }
        for status in ("skipped", "quarantined", "refused"):
            entries = [o.entry() for o in self.by_status(status)]
            for entry in entries:
                entry["reason"] = str(entry.get("reason", ""))[:300]
            data[status] = entries[:REPORT_LIST_LIMIT]
            data[f"{status}_count"] = len(entries)
        if self.tables is not None:
            # Capped like the lists: a Step Functions payload over 256 KiB fails the
            # execution with States.DataLimitExceeded, which nothing catches; the run report
            # keeps every table.
            shown = sorted(self.tables)[:REPORT_LIST_LIMIT]
            data[contract.SUMMARY_TABLES_FIELD] = {table: self.tables[table] for table in shown}
            data[f"{contract.SUMMARY_TABLES_FIELD}_count"] = len(self.tables)
        data["quality"] = [{key: entry[key] for key in QUALITY_FIELDS} for entry in self.quality][
            :REPORT_LIST_LIMIT
        ]
        return data


QUALITY_FIELDS = ("table", "rule", "outcome", "observed")
"""The fields of each quality result in the summary (and so in the notification)."""

CAUSE_LINES = 20
CAUSE_CHARS = 8_000
"""A failure's cause stays well inside Step Functions' 32,768 characters and SNS's 256 KB."""


def summary_uri_of(report_uri: str) -> str:
    """``.../<batch_id>.summary.json`` beside the run report ``.../<batch_id>.json``."""
    return f"{report_uri.removesuffix('.json')}{contract.RUN_SUMMARY_SUFFIX}"


def refusal_cause(refused: Sequence[Outcome], report_uri: str = "") -> str:
    """First line: the first refused object and why; then the others, a line each, up to
    ``CAUSE_LINES`` lines and ``CAUSE_CHARS`` characters (the report lists them all)."""
    lines = [f"{o.object}: {o.reason}" for o in refused]
    if len(refused) > 1:
        lines.insert(1, f"{len(refused)} objects refused (bad_records=fail); the others:")
    kept: list[str] = []
    for line in lines[:CAUSE_LINES]:
        if kept and sum(len(k) + 1 for k in kept) + len(line) > CAUSE_CHARS:
            break
        kept.append(line[:CAUSE_CHARS])
    left = len(lines) - len(kept)
    if left:
        where = f" (every one is in {report_uri})" if report_uri else ""
        kept.append(f"... and {left} more{where}")
    return "\n".join(kept)


def start_report(storage: Storage, job: JobArgs) -> RunReport:
    """The run's report, written as STARTED (the report and its summary both rewritten now:
    a retry that fails another way must not be notified with the cause an earlier attempt
    left behind).

    A re-run of the same input keeps the first run's partition and timestamp, so its output
    lands in the same place and replaces the earlier attempt's."""
    earlier = storage.read_text(job.report_uri)
    if earlier:
        data = json.loads(earlier)
        report = RunReport(job.batch_id, data["ingestion_date"], data["ingested_at"])
    else:
        moment = job.ingested_at or datetime.now(timezone.utc).replace(tzinfo=None)
        report = RunReport(job.batch_id, moment.strftime("%Y-%m-%d"), moment.isoformat(sep=" "))
    write_report(storage, job, report)
    return report


def write_report(storage: Storage, job: JobArgs, report: RunReport) -> None:
    storage.write_text(job.report_uri, json.dumps(report.full()))
    # Only the name's own ending: a bucket or prefix may hold ".json" too (logs.json.example).
    storage.write_text(summary_uri_of(job.report_uri), json.dumps(report.summary()))


def finish_report(
    storage: Storage,
    job: JobArgs,
    report: RunReport,
    ledger: Ledger,
    rows: Mapping[str, int],
    *,
    gate: Optional[QualityGate] = None,
    failed: str = "",
) -> RunReport:
    """Every object's outcome, in the order the run was given them: refused (or quarantined),
    skipped, or landed with its ``rows``; the quality rules' results. Raises
    :class:`JobInputError` (after writing the report) when an object was refused or held
    back by a quality rule, or the run ``failed`` (why: after landing its objects)."""
    if gate is not None:
        report.quality = gate.entries(full=True)
        report.quality_quarantine = gate.quarantine_location
    for uri in job.uris:
        decided = ledger.decided(uri)
        if decided is None:
            report.outcomes.append(Outcome(uri, "landed", rows=rows[uri]))
        elif (
            decided.status == "refused"
            and job.bad_records == "quarantine"
            and uri not in report.held
        ):
            report.outcomes.append(quarantine(storage, job, uri, str(decided.reason)))
        else:
            report.outcomes.append(decided)
    blocked = gate.blocked if gate is not None and gate.blocked else failed
    return conclude(storage, job, report, blocked=blocked)


def conclude(storage: Storage, job: JobArgs, report: RunReport, *, blocked: str = "") -> RunReport:
    """Set the report's status and cause from its refused objects (or ``blocked``: why a
    quality rule held the batch back) and write it; raise :class:`JobInputError`, carrying
    the report, when the run failed."""
    refused = report.by_status("refused")
    report.status = "FAILED" if refused or blocked else "SUCCEEDED"
    if refused:
        report.cause = refusal_cause(refused, job.report_uri)
    elif blocked:  # held back with no object left to name (every one skipped or refused)
        report.cause = blocked
    write_report(storage, job, report)
    if report.status == "FAILED":
        error = JobInputError(report.cause)
        error.report = report
        raise error
    return report


def quarantine(storage: Storage, job: JobArgs, uri: str, reason: str) -> Outcome:
    """Copy a refused object under the quarantine path, with a ``.reason.json`` beside it."""
    copy = job.quarantine_copy(uri)
    storage.copy(uri, copy)
    storage.write_text(
        f"{copy}.reason.json",
        json.dumps({"object": uri, "reason": reason, "batch_id": job.batch_id}),
    )
    return Outcome(uri, "quarantined", reason, copy=copy)

"""The quality gate: a table's DQDL rules (``--quality_rules``) judged on the batch's typed
rows inside the write stage, before anything is committed.

The rules see the rows as the table types them (the projection the write stage makes of the
persisted frames). Their figures come from the write itself: Spark's ``observe`` counts each
row rule's failing rows and computes the dataset metrics as the rows stream to the staging
folder, so the rules add no pass over the data. Only figures that need distinct values
(``IsUnique``, ``DistinctValuesCount``: one aggregation; ``Uniqueness``: a grouping each)
take a look of their own, at their columns in the staged Parquet files, and only failing
rows take more (the quarantine write, or the re-write without the refused objects). Then:

* row rules (IsComplete, ColumnValues, ColumnLength) mark failing rows, which are never
  staged: with ``bad_records=quarantine`` they are written under the quarantine path
  (``<quarantine>/<batch_id>/_quality/<table>/``, Parquet, with ``_failed_rules``) and the
  rest land; with ``fail`` each object holding such a row is refused, naming the rule, the
  rows that failed and example rows, and the other objects are written again and land;
* dataset rules are judged on the rows that land; one that fails raises
  :class:`QualityBlockedError`: the caller deletes the staged files, the table's batch is
  neither published nor its schema committed.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F

from .arguments import JobArgs
from .names import normalise_column_name, quoted
from .outcomes import Ledger, Verdicts
from .quality import (
    FAILED,
    PASSED,
    Rule,
    RuleResult,
    Ruleset,
    judged,
    metric_sql,
    row_check_sql,
    rules_for_table,
)
from .shared import contract

NUMERIC_TYPES = ("bigint", "double", "int", "smallint", "tinyint", "float")
"""Table types Mean, Sum and StandardDeviation accept (DQDL: numeric columns only)."""
EXAMPLE_ROWS = 3
"""Example rows named in the error of a row rule that fails with ``bad_records=fail``."""
_EXAMPLE_CHARS = 300
_OK = "_qok"


class QualityBlockedError(Exception):
    """A dataset-level rule failed: the table's batch is not committed."""


def quality_gate(job: JobArgs) -> Optional[QualityGate]:
    """The gate of the job's table, or None when no rules apply to it."""
    rulesets = job.quality_rulesets()
    ruleset = rules_for_table(rulesets, job.table_name) if rulesets else None
    return QualityGate(job.table_name, ruleset, job) if ruleset else None


def hold_batch(job: JobArgs, ledger: Ledger, cause: str) -> set[str]:
    """Refuse every object still landing (a dataset rule failed); returns them: they are
    held back, never quarantined, and the run fails with ``cause``."""
    held = {uri for uri in job.uris if ledger.is_open(uri)}
    ledger.record(Verdicts(refused=dict.fromkeys(held, f"held back: {cause}")))
    return held


def landed_rows(rows: Mapping[str, int], gate: Optional[QualityGate]) -> dict[str, int]:
    """Object URI -> rows landed: the rows read, less those the gate quarantined."""
    quarantined = gate.quarantined_rows if gate is not None else {}
    return {uri: n - quarantined.get(uri, 0) for uri, n in rows.items()}


@dataclass
class QualityGate:
    """One table's rules and, after :meth:`check`, their results for this batch."""

    table: str
    ruleset: Ruleset
    job: JobArgs
    results: list[RuleResult] = field(default_factory=list)
    quarantined_rows: dict[str, int] = field(default_factory=dict)
    """Object URI -> its rows written to the quality quarantine (``bad_records=quarantine``)."""
    quarantine_location: str = ""
    blocked: str = ""
    """Why the batch was held back (a dataset rule failed), else empty."""
    _refused_rows: dict[str, int] = field(default_factory=dict)
    """Row rule -> rows of the objects refused for failing it (``fail`` mode): the results
    of the write of the others still count them."""

    @property
    def failures(self) -> list[RuleResult]:
        return [r for r in self.results if not r.passed]

    def entries(self, *, full: bool = False) -> list[dict[str, Any]]:
        """The results as the notification lists them (the run report adds the details)."""
        listed = []
        for result in self.results:
            entry: dict[str, Any] = {
                "table": self.table,
                "rule": result.rule,
                "outcome": result.outcome,
                "observed": result.observed,
            }
            if full:
                entry.update(failed_rows=result.failed_rows, reason=result.reason)
            listed.append(entry)
        return listed

    def blocked_cause(self) -> str:
        """Why the table's batch was held back: each failing dataset rule and its figure."""
        lines = [
            f"quality rule {r.rule} failed on table {self.table!r}: observed "
            f"{_shown(r.observed)}{f' ({r.reason})' if r.reason else ''}"
            for r in self.failures
            if r.failed_rows == 0 or r.reason
        ]
        return "; ".join(lines) + " (the batch was not committed: readers do not see it)"

    def prepare(self, frame: DataFrame, columns: Mapping[str, str]) -> DataFrame:
        """The rows to write to staging: ``frame`` (the batch's typed rows; ``columns``: the
        table's column -> type) without those failing a row rule, observed on the way, so
        the write itself gives the rules' figures (Spark's ``observe``: no extra pass)."""
        self._columns = dict(columns)
        self._resolved = {rule: _resolve(rule, columns) for rule in self.ruleset.rules}
        self._row_rules = [
            r for r in self.ruleset.rules if r.row_level and self._resolved[r] is not None
        ]
        checks = [
            f"{row_check_sql(rule, quoted(str(self._resolved[rule])))} AS _q{index}"
            for index, rule in enumerate(self._row_rules)
        ]
        ok = " AND ".join(f"_q{i}" for i in range(len(self._row_rules))) or "true"
        self._checked = frame.selectExpr("*", *checks).withColumn(_OK, F.expr(ok))
        self._observations = (Observation(), Observation())
        row_figures = _aliased(_row_expressions(self._row_rules))
        landing_figures = _aliased(self._landing_expressions())
        observed = (
            self._checked.observe(self._observations[0], *row_figures)
            .where(F.col(_OK))
            .observe(self._observations[1], *landing_figures)
        )
        return self._without_checks(observed)

    def landing(self) -> DataFrame:
        """The rows to write, not observed (for writes object by object)."""
        return self._without_checks(self._checked.where(F.col(_OK)))

    def judge(self, *, observed: bool, unwritten: Collection[str] = ()) -> dict[str, str]:
        """After the write: every rule's result. Returns the objects to refuse (``fail``
        mode, rows failing a row rule: write the others again); writes the failing rows to
        the quarantine (``quarantine`` mode); raises :class:`QualityBlockedError` when a
        dataset rule fails. ``observed``: the write of :meth:`prepare`'s rows succeeded in
        one go (else the figures come from an aggregation of the rows, less ``unwritten``)."""
        checked = self._checked
        if unwritten:
            checked = checked.where(~F.col("_source_object").isin(sorted(unwritten)))
        figures = self._observed() if observed else self._aggregated(checked)
        failing = any(figures[f"f{rule}"] for rule in self._row_rules)
        for key, rows in self._refused_rows.items():  # rows of objects refused before
            figures[key] = int(figures.get(key) or 0) + rows
        rules, resolved, columns = self.ruleset.rules, self._resolved, self._columns
        if failing and self.job.bad_records != "quarantine":
            self.results = _results(rules, self._row_rules, resolved, columns, figures)
            self._refused_rows = {f"f{r}": int(figures[f"f{r}"] or 0) for r in self._row_rules}
            return _refusals(checked, self._row_rules, figures, list(self._columns))
        figures.update(self._distinct_figures(checked, observed, int(figures["rows"] or 0)))
        self.results = _results(rules, self._row_rules, resolved, columns, figures)
        if any(not r.passed and (r.failed_rows == 0 or r.reason) for r in self.results):
            self.blocked = self.blocked_cause()
            raise QualityBlockedError(self.blocked)
        if failing:
            self._quarantine_rows(checked.where(~F.col(_OK)), self._row_rules)
        return {}

    def _without_checks(self, frame: DataFrame) -> DataFrame:
        return frame.drop(_OK, *[f"_q{i}" for i in range(len(self._row_rules))])

    def _landing_expressions(self) -> dict[str, str]:
        """SQL of each figure judged on the rows that land but the distinct-based ones."""
        expressions = {"rows": "count(1)"}
        for rule in self.ruleset.rules:
            column = self._resolved[rule]
            if rule.row_level or rule.kind in ("ColumnExists", *_DISTINCT_RULES):
                continue
            if rule.kind == "RowCount":
                expressions[f"m{rule}"] = "count(1)"
            elif column is None or not _judgeable(rule, self._columns[column]):
                continue
            elif rule.threshold is not None:
                passes = row_check_sql(rule, quoted(column))
                expressions[f"m{rule}"] = f"avg(CASE WHEN {passes} THEN 1.0D ELSE 0.0D END)"
            else:
                expressions[f"m{rule}"] = metric_sql(rule.kind, quoted(column))
        return expressions

    def _observed(self) -> dict[str, Any]:
        rows = _named(_row_expressions(self._row_rules), self._observations[0].get)
        return {**rows, **_named(self._landing_expressions(), self._observations[1].get)}

    def _aggregated(self, checked: DataFrame) -> dict[str, Any]:
        """The figures by aggregation (when the observed write did not happen in one go)."""
        rows = _collected(checked, _row_expressions(self._row_rules))
        landing = _collected(checked.where(F.col(_OK)), self._landing_expressions())
        return {**rows, **landing}

    def _distinct_figures(self, checked: DataFrame, observed: bool, rows: int) -> dict[str, Any]:
        """IsUnique, DistinctValuesCount (one aggregation) and Uniqueness (a grouping each):
        figures no observation can give (only for rules of these types). After the observed
        write they read their columns back from the staged Parquet files (the landing rows,
        columnar and few files: far cheaper than the batch's frames again)."""
        if not any(rule.kind in _DISTINCT_RULES for rule in self.ruleset.rules):
            return {}
        landing = (
            checked.sparkSession.read.parquet(self.job.staging)
            if observed
            else checked.where(F.col(_OK))
        )
        expressions = {}
        for rule in self.ruleset.rules:
            column = self._resolved[rule]
            if rule.kind in ("IsUnique", "DistinctValuesCount") and column is not None:
                expressions[f"m{rule}"] = metric_sql(rule.kind, quoted(column))
        figures = _collected(landing, expressions) if expressions else {}
        for rule in self.ruleset.rules:
            column = self._resolved[rule]
            if rule.kind == "Uniqueness" and column is not None:
                figures[f"m{rule}"] = _uniqueness(landing, column, rows)
        return figures

    def check_empty(self, columns: Mapping[str, str]) -> None:
        """Judge the rules on a batch with no rows to land (RowCount > 0 fails here)."""
        self.results = [_empty_result(rule, _resolve(rule, columns)) for rule in self.ruleset.rules]
        if self.failures:
            self.blocked = self.blocked_cause()
            raise QualityBlockedError(self.blocked)

    def _quarantine_rows(self, failing: DataFrame, row_rules: Sequence[Rule]) -> None:
        """Write the failing rows, each with the rules it failed, under the quarantine path.

        Their values are kept as text: a failing row is there to be read by a person, and
        text is never a value Spark refuses to write (a timestamp before 1900 may be)."""
        names = ", ".join(
            f"IF(_q{i}, NULL, {_sql_text(str(rule))})" for i, rule in enumerate(row_rules)
        )
        marked = failing.selectExpr(
            *[f"CAST({quoted(name)} AS STRING) AS {quoted(name)}" for name in self._columns],
            "_source_object",
            f"filter(array({names}), x -> x IS NOT NULL) AS _failed_rules",
        )
        base = self.job.quarantine_path
        base = base if base.endswith("/") else f"{base}/"
        self.quarantine_location = f"{base}{self.job.batch_id}/_quality/{self.table}/"
        marked.write.mode("overwrite").parquet(self.quarantine_location)
        counts = marked.groupBy("_source_object").count().collect()
        self.quarantined_rows = {str(r["_source_object"]): int(r["count"]) for r in counts}


def _sql_text(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _shown(observed: Any) -> str:
    return "nothing (no values)" if observed is None else json.dumps(observed)


def _resolve(rule: Rule, columns: Mapping[str, str]) -> Optional[str]:
    """The table column a rule names: as written, or as the job normalises header names."""
    if rule.column is None:
        return None
    if rule.column in columns:
        return rule.column
    normalised = normalise_column_name(rule.column, 0)
    return normalised if normalised in columns else None


_DISTINCT_RULES = ("IsUnique", "DistinctValuesCount", "Uniqueness")
"""Rules whose figure needs distinct values: computed apart, on the rows that land."""


def _row_expressions(row_rules: Sequence[Rule]) -> dict[str, str]:
    """SQL of each row rule's failing rows, over every row of the batch."""
    expressions = {"total": "count(1)"}
    for index, rule in enumerate(row_rules):
        expressions[f"f{rule}"] = f"count(CASE WHEN NOT _q{index} THEN 1 END)"
    return expressions


def _aliased(expressions: Mapping[str, str]) -> list[Column]:
    return [F.expr(sql).alias(f"a{i}") for i, sql in enumerate(expressions.values())]


def _named(expressions: Mapping[str, str], values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: values.get(f"a{i}") for i, name in enumerate(expressions)}


def _collected(frame: DataFrame, expressions: Mapping[str, str]) -> dict[str, Any]:
    row = frame.select(*_aliased(expressions)).collect()[0]
    return _named(expressions, row.asDict())


def _uniqueness(landing: DataFrame, column: str, rows: int) -> float:
    """Values occurring exactly once / rows (Deequ's Uniqueness, NULL never unique)."""
    if rows == 0:
        return 1.0
    ref = quoted(column)
    once = landing.where(f"{ref} IS NOT NULL").groupBy(ref).count().where("count = 1").count()
    return once / rows


def _judgeable(rule: Rule, type_name: str) -> bool:
    if rule.kind in ("Mean", "Sum", "StandardDeviation"):
        return type_name in NUMERIC_TYPES or type_name.startswith("decimal")
    return True


def _results(
    rules: Sequence[Rule],
    row_rules: Sequence[Rule],
    resolved: Mapping[Rule, Optional[str]],
    columns: Mapping[str, str],
    figures: Mapping[str, Any],
) -> list[RuleResult]:
    results = []
    for rule in rules:
        column = resolved[rule]
        if rule.kind == "ColumnExists":
            outcome = PASSED if column is not None else FAILED
            results.append(RuleResult(str(rule), outcome, None))
        elif rule.kind != "RowCount" and column is None:
            results.append(RuleResult(str(rule), FAILED, None, reason=f"no column {rule.column!r}"))
        elif rule in row_rules:
            failing = int(figures[f"f{rule}"] or 0)
            results.append(
                RuleResult(str(rule), FAILED if failing else PASSED, failing, failed_rows=failing)
            )
        elif column is not None and not _judgeable(rule, columns[column]):
            reason = f"column {column!r} is {columns[str(column)]}, not numeric"
            results.append(RuleResult(str(rule), FAILED, None, reason=reason))
        else:
            metric = figures[f"m{rule}"]
            results.append(judged(rule, None if metric is None else float(metric)))
    return results


def _empty_result(rule: Rule, column: Optional[str]) -> RuleResult:
    if rule.kind == "ColumnExists":
        return RuleResult(str(rule), PASSED if column is not None else FAILED, None)
    if rule.kind == "RowCount" or rule.threshold is not None:
        return judged(rule, 0.0 if rule.kind == "RowCount" else 1.0)
    if rule.row_level:
        return RuleResult(str(rule), PASSED, 0)
    empty = {"Completeness": 1.0, "IsUnique": 1.0, "Uniqueness": 1.0}
    empty.update(DistinctValuesCount=0.0, Sum=0.0)
    return judged(rule, empty.get(rule.kind))


def _refusals(
    checked: DataFrame,
    row_rules: Sequence[Rule],
    figures: Mapping[str, Any],
    columns: Sequence[str],
) -> dict[str, str]:
    """Each object holding a row that fails a row rule -> the first such rule, the rows of
    the object that fail it and example rows (a second look, only when rows fail)."""
    refused: dict[str, str] = {}
    for index, rule in enumerate(row_rules):
        if not figures[f"f{rule}"]:
            continue
        failing = checked.where(f"NOT _q{index}")
        per_object = failing.groupBy("_source_object").agg(
            F.count(F.lit(1)).alias("n"),
            F.expr(_examples_sql(columns)).alias("examples"),
        )
        for row in per_object.collect():
            uri = str(row["_source_object"])
            if uri in refused:
                continue
            # to_json leaves NULLs out: a column missing from an example row is NULL there.
            examples = "; ".join(str(e)[:_EXAMPLE_CHARS] for e in row["examples"])
            refused[uri] = (
                f"quality rule {rule} failed on {row['n']} row(s) (bad_records=fail); "
                f"example rows: {examples}"
            )
    return refused


def _examples_sql(columns: Sequence[str]) -> str:
    fields = ", ".join(f"{_sql_text(name)}, {quoted(name)}" for name in columns)
    rows = f"collect_list(to_json(named_struct({fields})))"
    return f"slice({rows}, 1, {EXAMPLE_ROWS})"


_METRIC_BATCH = 1000
"""PutMetricData takes at most 1,000 metrics per call."""


def quality_metrics(job: JobArgs, gate: QualityGate) -> list[dict[str, Any]]:
    """The run's quality metrics: per rule 1/0 passed and failed, and the run's totals."""
    c = contract
    job_dimension = {"Name": c.QUALITY_JOB_DIMENSION, "Value": job.job_name or "local"}
    data: list[dict[str, Any]] = []
    for result in gate.results:
        dimensions = [
            job_dimension,
            {"Name": c.QUALITY_TABLE_DIMENSION, "Value": gate.table[:1024]},
            {"Name": c.QUALITY_RULE_DIMENSION, "Value": result.rule[:1024]},
        ]
        for name, value in (
            (c.QUALITY_RULE_PASSED_METRIC, int(result.passed)),
            (c.QUALITY_RULE_FAILED_METRIC, int(not result.passed)),
        ):
            data.append(
                {"MetricName": name, "Dimensions": dimensions, "Value": value, "Unit": "Count"}
            )
    failed = len(gate.failures)
    for name, value in (
        (c.QUALITY_RULES_PASSED_METRIC, len(gate.results) - failed),
        (c.QUALITY_RULES_FAILED_METRIC, failed),
    ):
        data.append(
            {"MetricName": name, "Dimensions": [job_dimension], "Value": value, "Unit": "Count"}
        )
    return data


def publish_quality_metrics(job: JobArgs, gate: Optional[QualityGate]) -> None:
    """Publish the run's quality metrics to CloudWatch; a metric that cannot be published
    never fails the run (the report and the notification carry the results too)."""
    if gate is None or not gate.results:
        return
    try:
        import boto3  # in Glue's runtime (and the offline harness's); only with rules

        region = job.catalog.region if job.catalog is not None else None
        client = boto3.client("cloudwatch", region_name=region)
        data = quality_metrics(job, gate)
        for start in range(0, len(data), _METRIC_BATCH):
            client.put_metric_data(
                Namespace=contract.QUALITY_METRICS_NAMESPACE,
                MetricData=data[start : start + _METRIC_BATCH],
            )
    except Exception as error:  # best effort: the report and notification carry the results
        print(json.dumps({"message": "quality metrics not published", "error": str(error)}))

"""The ``quality_rules`` prop: its type, its rulesets parsed at synth (with the job's own
parser, which imports no Spark), and the ``--quality_rules`` job argument it becomes."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any, Optional, Union

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam

from ._contract import (
    QUALITY_EVERY_TABLE,
    QUALITY_JOB_DIMENSION,
    QUALITY_METRICS_NAMESPACE,
    QUALITY_RULE_DIMENSION,
    QUALITY_RULE_FAILED_METRIC,
    QUALITY_RULES_ARGUMENT,
    QUALITY_RULES_FAILED_METRIC,
    QUALITY_RULES_PASSED_METRIC,
    QUALITY_TABLE_DIMENSION,
)
from ._operations import ALARM_PERIOD, AlarmSpec
from ._problems import Problems, is_unresolved
from .runtime.glue.event_driven_etl_job.quality import RulesetError, parse_ruleset

QualityRules = Union[str, Mapping[str, str]]
"""A DQDL ruleset (every table), or table name -> ruleset (``"*"``: every table)."""


def quality_rules_type(value: Any) -> Optional[str]:
    """The prop's type check: a string, or a mapping of strings to strings."""
    if isinstance(value, str):
        return None
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return None
    return (
        "must be a DQDL ruleset string ('Rules = [ RowCount > 0 ]') or a mapping of table "
        "name to ruleset"
    )


def rulesets_of(value: QualityRules) -> dict[str, str]:
    """The prop as the job argument's mapping: a single ruleset applies to every table."""
    if isinstance(value, str):
        return {QUALITY_EVERY_TABLE: value}
    return dict(value)


def quality_rules_problems(
    problems: Problems, value: Optional[QualityRules], tables: Optional[Collection[str]]
) -> None:
    """Record each ruleset that does not parse (naming the rule and the position) and each
    mapping key that names no table of the pipeline (``tables``: its tables, when known at
    synth; None when the job names them at run time, as with ``Tables.by_folder()``)."""
    if value is None or quality_rules_type(value) is not None:
        return  # a wrong type is reported on its own
    known = tables is not None and not any(is_unresolved(t) for t in tables)
    allowed = sorted(tables or ())
    for key, text in rulesets_of(value).items():
        if is_unresolved(text):
            continue
        where = "" if isinstance(value, str) else f"[{key!r}]"
        try:
            parse_ruleset(text)
        except RulesetError as error:
            problems.add(f"quality_rules{where}", text, f"is not valid DQDL: {error}")
        if known and not is_unresolved(key) and key not in (QUALITY_EVERY_TABLE, *allowed):
            names = allowed[0] if len(allowed) == 1 else ", ".join(map(repr, allowed))
            which = f"{names!r} (its table)" if len(allowed) == 1 else f"one of {names}"
            problems.add(
                "quality_rules",
                key,
                f"names no table of the pipeline: use {which} or "
                f"{QUALITY_EVERY_TABLE!r} (every table)",
            )


def quality_rules_argument(value: Optional[QualityRules]) -> dict[str, str]:
    """``--quality_rules`` for the job (nothing without rules)."""
    if value is None:
        return {}
    return {QUALITY_RULES_ARGUMENT: json.dumps(rulesets_of(value), sort_keys=True)}


# ------------------------------------------------------------------ operations


def allow_quality_metrics(role: iam.IRole) -> None:
    """The job's role may publish the quality metrics (their namespace only)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="PublishQualityMetrics",
            actions=["cloudwatch:PutMetricData"],
            # PutMetricData has no resource-level permissions; the condition keeps it to
            # the quality namespace (https://docs.aws.amazon.com/AmazonCloudWatch/latest/
            # monitoring/iam-cw-condition-keys-namespace.html).
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": QUALITY_METRICS_NAMESPACE}},
        )
    )


def rules_failed_metric(job_name: str, period: Optional[Duration] = None) -> cloudwatch.Metric:
    """Quality rules that failed in the job's runs (Sum over 5 minutes)."""
    return _rules_metric(QUALITY_RULES_FAILED_METRIC, job_name, period, "quality rules failed")


def _rules_metric(
    name: str, job_name: str, period: Optional[Duration], label: str
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=QUALITY_METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={QUALITY_JOB_DIMENSION: job_name},
        statistic="Sum",
        period=period or ALARM_PERIOD,
        label=label,
    )


def quality_alarm_spec(job_name: str) -> AlarmSpec:
    return AlarmSpec(
        "QualityRulesFailedAlarm",
        "A data quality rule failed: rows were quarantined or refused, or a batch was held "
        "back. The notification's quality list names the rule and the value observed.",
        rules_failed_metric(job_name),
    )


def add_quality_widgets(dashboard: cloudwatch.Dashboard, job_name: str) -> None:
    """Rules passed and failed per run, and each rule's failures."""
    passed = _rules_metric(QUALITY_RULES_PASSED_METRIC, job_name, None, "quality rules passed")
    dimensions = f"{QUALITY_JOB_DIMENSION},{QUALITY_TABLE_DIMENSION},{QUALITY_RULE_DIMENSION}"
    per_rule = cloudwatch.MathExpression(
        expression=(
            f"SEARCH('{{{QUALITY_METRICS_NAMESPACE},{dimensions}}} "
            f'MetricName="{QUALITY_RULE_FAILED_METRIC}" {QUALITY_JOB_DIMENSION}="{job_name}"'
            "', 'Sum', 300)"
        ),
        label="",
        period=ALARM_PERIOD,
    )
    dashboard.add_widgets(
        cloudwatch.GraphWidget(
            title="Data quality rules",
            left=[passed, rules_failed_metric(job_name)],
            width=12,
        ),
        cloudwatch.GraphWidget(title="Data quality failures per rule", left=[per_rule], width=12),
    )

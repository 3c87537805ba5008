"""Data quality rules: the DQDL subset's parser (round trips, refusals naming the rule and
the position), each rule's semantics in the pure-Python evaluator with hand-checked outcomes
(NULLs included), the Spark SQL each row rule becomes, and the prop checked at synth."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from hypothesis import given
from hypothesis import strategies as st

from event_driven_etl import EventDrivenEtlPipeline, GlueEtlJob, Tables, ValidationError
from event_driven_etl.runtime.glue.event_driven_etl_job.arguments import JobArgs
from event_driven_etl.runtime.glue.event_driven_etl_job.errors import JobInputError
from event_driven_etl.runtime.glue.event_driven_etl_job.quality import (
    NULL,
    RULE_TYPES,
    Condition,
    Rule,
    Ruleset,
    RulesetError,
    evaluate,
    parse_ruleset,
    rules_for_table,
    value_passes,
)

from ..helpers import template_of


def _one(text: str) -> Rule:
    return parse_ruleset(f"Rules = [ {text} ]").rules[0]


def _outcomes(rules: str, rows: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(r.outcome, r.observed) for r in evaluate(parse_ruleset(rules), rows)]


# ------------------------------------------------------------------ parser


def test_a_ruleset_parses_into_its_rules() -> None:
    ruleset = parse_ruleset(
        """Rules = [
            RowCount > 0,                       # a comment
            IsComplete "order_id",
            ColumnValues "amount" between 0 and 1000,
            ColumnValues "country" in ["US", "CA", NULL],
            ColumnLength "zip" = 5 with threshold >= 0.9
        ]"""
    )
    assert [r.kind for r in ruleset.rules] == [
        "RowCount",
        "IsComplete",
        "ColumnValues",
        "ColumnValues",
        "ColumnLength",
    ]
    assert ruleset.rules[2].condition == Condition("between", (0, 1000))
    assert ruleset.rules[3].condition == Condition("in", ("US", "CA", NULL))
    assert ruleset.rules[4].threshold == Condition(">=", (0.9,))
    assert not ruleset.rules[4].row_level and ruleset.rules[1].row_level
    assert ruleset.columns == ["order_id", "amount", "country", "zip"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Rules = [ RowCnt > 0 ]", "rule 1 (RowCnt > 0) at line 1, column 11: unknown"),
        ("Rules = [ RowCount => 0 ]", "rule 1 (RowCount => 0) at line 1, column 21: bad operator"),
        ('Rules = [ RowCount > 0, Mean "a" matches "x" ]', "rule 2"),
        ("Rules = [ IsComplete id ]", "double quotes"),
        ("Rules = [ RowCount > 0", "expected ',' or ']'"),
        ("rules = [ RowCount > 0 ]", "at line 1, column 1: expected 'Rules"),
        ('Rules = [ (IsComplete "a") and (IsComplete "b") ]', "composite rules"),
        ('Rules = [ IsComplete "a" where "b > 1" ]', "'where' clauses are not supported"),
        ('Rules = [ ColumnValues "d" > now() ]', "date expressions"),
        ('Rules = [ ColumnValues "a" matches "[" ]', "invalid regular expression"),
        ('Rules = [ IsComplete "a" with threshold > 0.5 ]', "not supported on IsComplete"),
        ('Rules = [ ColumnLength "a" > 1 with threshold > 2 ]', "between 0 and 1"),
        ('Rules = [ CustomSql "select 1" > 0 ]', "unsupported rule type 'CustomSql'"),
        ("Rules = [ RowCount > 0 ]\nextra", "line 2, column 1: unexpected text"),
    ],
)
def test_fails_a_ruleset_outside_the_subset_naming_the_rule_and_position(
    text: str, message: str
) -> None:
    with pytest.raises(RulesetError, match="") as error:
        parse_ruleset(text)
    assert message in str(error.value)


_COLUMNS = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1
).filter(lambda s: s.strip() != "")
_NUMBERS = st.one_of(st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6, allow_nan=False))
_FRACTIONS = st.floats(0, 1, allow_nan=False)


def _numeric_condition(numbers: st.SearchStrategy[Any]) -> st.SearchStrategy[Condition]:
    return st.one_of(
        st.builds(
            lambda op, n: Condition(op, (n,)),
            st.sampled_from(["=", "!=", ">", ">=", "<", "<="]),
            numbers,
        ),
        st.builds(
            lambda op, a, b: Condition(op, (a, b)),
            st.sampled_from(["between", "not between"]),
            numbers,
            numbers,
        ),
        st.builds(
            lambda op, ns: Condition(op, tuple(ns)),
            st.sampled_from(["in", "not in"]),
            st.lists(numbers, min_size=1, max_size=4),
        ),
    )


_RULES = st.one_of(
    st.builds(lambda c: Rule("RowCount", None, c), _numeric_condition(_NUMBERS)),
    st.builds(
        Rule,
        st.sampled_from(["IsComplete", "IsUnique", "ColumnExists"]),
        _COLUMNS,
    ),
    st.builds(
        Rule,
        st.sampled_from(
            [
                "Completeness",
                "Uniqueness",
                "DistinctValuesCount",
                "Mean",
                "Sum",
                "StandardDeviation",
            ]
        ),
        _COLUMNS,
        _numeric_condition(_NUMBERS),
    ),
    st.builds(
        lambda col, value, op: Rule("ColumnValues", col, Condition(op, (value,))),
        _COLUMNS,
        st.one_of(st.text(), _NUMBERS),
        st.sampled_from(["=", "!=", ">", "<"]),
    ),
    st.builds(
        lambda col, c, t: Rule("ColumnLength", col, c, t),
        _COLUMNS,
        _numeric_condition(st.integers(0, 100)),
        st.one_of(
            st.none(), _numeric_condition(_FRACTIONS).filter(lambda c: c.op in ("=", ">", ">="))
        ),
    ),
)


@given(st.lists(_RULES, min_size=1, max_size=6))
def test_every_ruleset_round_trips_through_its_text(rules: list[Rule]) -> None:
    ruleset = Ruleset(tuple(rules))
    assert parse_ruleset(str(ruleset)) == ruleset


@given(st.text(max_size=60))
def test_junk_is_refused_with_a_ruleset_error_never_another_exception(text: str) -> None:
    message = ""
    try:
        parse_ruleset(text)
    except RulesetError as error:
        message = str(error)
    assert not message or ("line " in message and "column " in message)


@given(
    st.lists(_RULES, min_size=1, max_size=3),
    st.integers(0, 200),
    st.sampled_from([" ]", ",", ")", " foo", "]]"]),
)
def test_a_ruleset_cut_or_with_junk_after_it_is_refused(
    rules: list[Rule], cut: int, junk: str
) -> None:
    text = str(Ruleset(tuple(rules)))
    with pytest.raises(RulesetError):
        parse_ruleset(text + junk)
    cut_text = text[: min(cut, len(text) - 1)]
    with pytest.raises(RulesetError):
        parse_ruleset(cut_text)


# ------------------------------------------------------------------ semantics (pure Python)

ROWS: list[dict[str, Any]] = [
    {"id": 1, "name": "Ann", "amount": 10, "zip": "12345"},
    {"id": 2, "name": None, "amount": None, "zip": None},
    {"id": 2, "name": " ", "amount": -4, "zip": "1234"},
    {"id": 4, "name": "", "amount": 30, "zip": "ABCDE"},
]


@pytest.mark.parametrize(
    ("rule", "outcome", "observed"),
    [
        ("RowCount = 4", "passed", 4),
        ("RowCount between 5 and 10", "failed", 4),
        # IsComplete: the NULL row fails; "" and " " are values (DQDL: a blank string is
        # complete, only NULL is not).
        ('IsComplete "name"', "failed", 1),
        ('IsComplete "id"', "passed", 0),
        ('Completeness "amount" = 0.75', "passed", 0.75),
        ('IsUnique "id"', "failed", 0.75),
        ('IsUnique "zip"', "failed", 0.75),  # NULL is never unique
        ('IsUnique "name"', "failed", 0.75),
        ('Uniqueness "id" = 0.5', "passed", 0.5),
        ('DistinctValuesCount "amount" = 3', "passed", 3),
        ('Mean "amount" = 12', "passed", 12),  # (10 - 4 + 30) / 3: NULL ignored
        ('Sum "amount" = 36', "passed", 36),
        ('StandardDeviation "amount" > 13.9', "passed", 13.95),  # population: sqrt(584 / 3)
        ('ColumnExists "zip"', "passed", None),
        ('ColumnExists "nope"', "failed", None),
        ('ColumnValues "amount" >= 0', "failed", 2),  # -4 and NULL fail
        ('ColumnValues "amount" != 10', "failed", 1),  # != lets the NULL pass
        ('ColumnValues "amount" between 0 and 30', "failed", 2),
        ('ColumnValues "amount" not between 0 and 5', "failed", 1),  # NULL fails it too
        ('ColumnValues "amount" in [10, 30, -4]', "failed", 1),
        ('ColumnValues "amount" in [10, 30, -4, NULL]', "passed", 0),
        ('ColumnValues "amount" not in [10]', "failed", 1),  # NULL passes not in
        ('ColumnValues "amount" not in [10, NULL]', "failed", 2),
        ('ColumnValues "name" in ["Ann", NULL, EMPTY, WHITESPACES_ONLY]', "passed", 0),
        ('ColumnValues "name" in ["Ann", EMPTY]', "failed", 2),
        ('ColumnValues "name" = NULL', "failed", 3),
        ('ColumnValues "name" != NULL', "failed", 1),
        ('ColumnValues "zip" matches "[0-9]{5}"', "failed", 3),  # the whole value must match
        ('ColumnValues "zip" matches "[0-9]+"', "failed", 2),
        ('ColumnLength "zip" = 5', "failed", 2),  # NULL has length 0
        ('ColumnLength "zip" < 6', "passed", 0),
        ('ColumnLength "zip" = 5 with threshold >= 0.5', "passed", 0.5),
        ('ColumnValues "amount" >= 0 with threshold > 0.5', "failed", 0.5),
    ],
)
def test_each_rule_gives_its_hand_checked_outcome(rule: str, outcome: str, observed: Any) -> None:
    (result,) = evaluate(parse_ruleset(f"Rules = [ {rule} ]"), ROWS)
    assert result.outcome == outcome
    if observed is None:
        assert result.observed is None
    else:
        assert result.observed == pytest.approx(observed, abs=0.01)


def test_rules_over_no_rows_and_no_values() -> None:
    empty: list[dict[str, Any]] = []
    rules = (
        'Rules = [ RowCount > 0, IsComplete "a", Completeness "a" = 1, Sum "a" = 0, Mean "a" > 0 ]'
    )
    assert _outcomes(rules, empty)[0] == ("failed", 0)
    nulls = [{"a": None}, {"a": None}]
    assert _outcomes(rules, nulls) == [
        ("passed", 2),
        ("failed", 2),
        ("failed", 0),
        ("passed", 0),  # the sum of no values is 0
        ("failed", None),  # the mean of no values is undefined: the rule fails
    ]


def test_booleans_compare_as_spark_writes_them() -> None:
    rows: list[dict[str, Any]] = [{"b": True}, {"b": False}, {"b": None}]
    assert _outcomes('Rules = [ ColumnValues "b" in ["true", NULL] ]', rows) == [("failed", 1)]


def test_a_missing_column_fails_its_rule_with_the_reason() -> None:
    (result,) = evaluate(parse_ruleset('Rules = [ Mean "nope" > 0 ]'), ROWS)
    assert result.outcome == "failed" and result.reason == "no column 'nope'"


def test_value_passes_follows_dqdl_null_semantics() -> None:
    assert not value_passes(_one('ColumnValues "a" > 1'), None)
    assert value_passes(_one('ColumnValues "a" != 1'), None)
    assert value_passes(_one('ColumnValues "a" not in [1]'), None)
    assert not value_passes(_one('ColumnValues "a" matches ".*"'), None)
    assert value_passes(_one('ColumnLength "a" < 1'), None)


def test_rules_for_a_table_are_every_table_s_then_its_own() -> None:
    rulesets = {"*": "Rules = [ RowCount > 0 ]", "orders": 'Rules = [ IsComplete "id" ]'}
    orders = rules_for_table(rulesets, "orders")
    assert orders is not None and [str(r) for r in orders.rules] == [
        "RowCount > 0",
        'IsComplete "id"',
    ]
    other = rules_for_table(rulesets, "other")
    assert other is not None and len(other.rules) == 1
    assert rules_for_table({"orders": "Rules = [ RowCount > 0 ]"}, "other") is None


def test_every_supported_rule_type_is_documented_in_the_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Data quality rules", 1)[1].split("\n## ", 1)[0]
    for kind in RULE_TYPES:
        assert f"| `{kind} " in section, kind


# ------------------------------------------------------------------ the job's argument


def _job(quality_rules: str) -> JobArgs:
    return JobArgs(("s3://b/k.csv",), "s3://o/p/", "b", quality_rules=quality_rules)


def test_the_job_refuses_a_bad_quality_rules_argument_before_touching_anything() -> None:
    _job(json.dumps({"*": "Rules = [ RowCount > 0 ]"})).check()
    with pytest.raises(JobInputError, match="must be a JSON object"):
        _job("[").check()
    with pytest.raises(JobInputError, match=r"for table '\*': rule 1 \(RowCnt > 0\)"):
        _job(json.dumps({"*": "Rules = [ RowCnt > 0 ]"})).check()


# ------------------------------------------------------------------ the prop, at synth


def _job_arguments(stack: Stack) -> dict[str, str]:
    jobs = template_of(stack).find_resources("AWS::Glue::Job")
    (job,) = jobs.values()
    arguments: dict[str, str] = job["Properties"]["DefaultArguments"]
    return arguments


def test_quality_rules_reach_the_job_as_one_json_argument(stack: Stack) -> None:
    EventDrivenEtlPipeline(
        stack, "Pipeline", quality_rules='Rules = [ RowCount > 0, IsComplete "id" ]'
    )
    assert json.loads(_job_arguments(stack)["--quality_rules"]) == {
        "*": 'Rules = [ RowCount > 0, IsComplete "id" ]'
    }


def test_a_mapping_names_the_pipeline_s_table(stack: Stack) -> None:
    EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        catalog_table_name="orders",
        quality_rules={"orders": "Rules = [ RowCount > 0 ]", "*": 'Rules = [ IsComplete "id" ]'},
    )
    assert set(json.loads(_job_arguments(stack)["--quality_rules"])) == {"orders", "*"}


def test_without_rules_the_job_gets_no_argument(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline")
    assert "--quality_rules" not in _job_arguments(stack)


def test_fails_a_ruleset_with_an_unknown_rule_naming_the_prop_rule_and_position(
    stack: Stack,
) -> None:
    with pytest.raises(ValidationError) as error:
        EventDrivenEtlPipeline(
            stack, "Pipeline", quality_rules='Rules = [ RowCount > 0, IsCompleet "id" ]'
        )
    message = str(error.value)
    assert "quality_rules='Rules = [ RowCount > 0, IsCompleet" in message
    assert 'rule 2 (IsCompleet "id") at line 1, column 25' in message
    assert "unknown or unsupported rule type 'IsCompleet'" in message


def test_fails_a_bad_operator_and_a_malformed_ruleset_together(stack: Stack) -> None:
    with pytest.raises(ValidationError) as error:
        EventDrivenEtlPipeline(
            stack,
            "Pipeline",
            catalog_table_name="orders",
            quality_rules={"orders": "Rules = [ RowCount >> 0 ]", "*": "Rules = [ RowCount > 0"},
        )
    message = str(error.value)
    assert "2 invalid props" in message
    assert "quality_rules['orders']=" in message and "bad operator" in message
    assert "quality_rules['*']=" in message and "expected ',' or ']'" in message


def test_fails_a_mapping_key_that_names_no_table(stack: Stack) -> None:
    with pytest.raises(
        ValidationError, match=r"quality_rules='customers': names no table .* 'orders'"
    ):
        EventDrivenEtlPipeline(
            stack,
            "Pipeline",
            catalog_table_name="orders",
            quality_rules={"customers": "Rules = [ RowCount > 0 ]"},
        )


def test_fails_a_key_against_the_default_table_name_too(stack: Stack) -> None:
    with pytest.raises(ValidationError, match=r"use 'teststack_pipeline'"):
        EventDrivenEtlPipeline(stack, "Pipeline", quality_rules={"x": "Rules = [ RowCount > 0 ]"})


def test_fails_a_key_naming_no_table_of_a_mapping(stack: Stack) -> None:
    """With table routing the keys are the mapping's tables (or "*")."""
    with pytest.raises(
        ValidationError,
        match=r"quality_rules='crm': names no table .* one of 'customers', 'orders'",
    ):
        EventDrivenEtlPipeline(
            stack,
            "Pipeline",
            key_prefix="incoming/",
            tables=Tables.mapping({"orders/": "orders", "crm/": "customers"}),
            quality_rules={"orders": "Rules = [ RowCount > 0 ]", "crm": "Rules = [ RowCount > 0 ]"},
        )


def test_rules_per_folder_table_are_accepted_by_name(stack: Stack) -> None:
    """By folder, the tables are named at run time: any key is taken as a table name."""
    pipeline = EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        key_prefix="incoming/",
        tables=Tables.by_folder(),
        quality_rules={"orders": "Rules = [ RowCount > 0 ]"},
    )
    arguments = Template.from_stack(Stack.of(pipeline)).find_resources("AWS::Glue::Job")
    [job] = arguments.values()
    rules = json.loads(job["Properties"]["DefaultArguments"]["--quality_rules"])
    assert rules == {"orders": "Rules = [ RowCount > 0 ]"}


def test_fails_quality_rules_of_the_wrong_type(stack: Stack) -> None:
    with pytest.raises(ValidationError, match=r"quality_rules=\['RowCount > 0'\]: must be a DQDL"):
        EventDrivenEtlPipeline(stack, "Pipeline", quality_rules=["RowCount > 0"])  # type: ignore[arg-type]  # the wrong type on purpose


def test_fails_glue_etl_job_quality_rules_naming_another_table(stack: Stack) -> None:
    bucket = s3.Bucket(stack, "B")
    database = glue.Database(stack, "Db")
    with pytest.raises(ValidationError, match=r"(?s)GlueEtlJob 'Job'.*use 'etl_output'"):
        GlueEtlJob(
            stack,
            "Job",
            source_bucket=bucket,
            output_bucket=bucket,
            output_prefix="out/",
            catalog_database=database,
            quality_rules={"orders": "Rules = [ RowCount > 0 ]"},
        )


# ------------------------------------------------------------------ operations


def _resources(stack: Stack, kind: str) -> dict[str, Any]:
    return dict(template_of(stack).find_resources(kind))


def test_the_job_may_publish_quality_metrics_to_their_namespace_only(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline", quality_rules="Rules = [ RowCount > 0 ]")
    statements = [
        s
        for policy in _resources(stack, "AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "PublishQualityMetrics"
    ]
    assert statements == [
        {
            "Sid": "PublishQualityMetrics",
            "Action": "cloudwatch:PutMetricData",
            "Effect": "Allow",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "EventDrivenEtl/DataQuality"}},
        }
    ]


def test_a_failed_rule_alarms_and_the_dashboard_shows_the_rules(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(
        stack, "Pipeline", quality_rules="Rules = [ RowCount > 0 ]", dashboard=True
    )
    alarms = {
        k: v for k, v in _resources(stack, "AWS::CloudWatch::Alarm").items() if "Quality" in k
    }
    (alarm,) = alarms.values()
    (metric,) = alarm["Properties"]["Metrics"]
    assert metric["MetricStat"]["Metric"]["MetricName"] == "RulesFailed"
    assert metric["MetricStat"]["Stat"] == "Sum" and alarm["Properties"]["Threshold"] == 0
    assert len([a for a in pipeline.alarms if "Quality" in a.node.id]) == 1
    (dashboard,) = _resources(stack, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "Data quality rules" in body and "RuleFailed" in body


def test_without_rules_there_is_no_quality_alarm_nor_permission(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline", dashboard=True)
    assert not [k for k in _resources(stack, "AWS::CloudWatch::Alarm") if "Quality" in k]
    assert "PublishQualityMetrics" not in json.dumps(_resources(stack, "AWS::IAM::Policy"))


def test_each_rule_becomes_a_pass_and_a_fail_metric_and_the_run_totals() -> None:
    from event_driven_etl.runtime.glue.event_driven_etl_job.quality import RuleResult
    from event_driven_etl.runtime.glue.event_driven_etl_job.quality_gate import (
        QualityGate,
        quality_metrics,
    )

    job = JobArgs(("s3://b/k.csv",), "s3://o/p/", "b", job_name="etl-job")
    gate = QualityGate("orders", parse_ruleset("Rules = [ RowCount > 0 ]"), job)
    gate.results = [
        RuleResult("RowCount > 0", "passed", 3),
        RuleResult('IsComplete "id"', "failed", 1, failed_rows=1),
    ]
    data = quality_metrics(job, gate)
    per_rule = {
        (d["MetricName"], d["Dimensions"][2]["Value"]): d["Value"]
        for d in data
        if len(d["Dimensions"]) == 3
    }
    assert per_rule == {
        ("RulePassed", "RowCount > 0"): 1,
        ("RuleFailed", "RowCount > 0"): 0,
        ("RulePassed", 'IsComplete "id"'): 0,
        ("RuleFailed", 'IsComplete "id"'): 1,
    }
    totals = {d["MetricName"]: d["Value"] for d in data if len(d["Dimensions"]) == 1}
    assert totals == {"RulesPassed": 1, "RulesFailed": 1}
    assert all(d["Dimensions"][0] == {"Name": "JobName", "Value": "etl-job"} for d in data)

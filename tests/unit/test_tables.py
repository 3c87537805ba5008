"""Table routing: the ``tables`` prop in the template, its validation, and the routing function
the job uses (issue #22)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, cast

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from hypothesis import given
from hypothesis import strategies as st

from event_driven_etl import EtlStateMachine, EventDrivenEtlPipeline, Tables, ValidationError
from event_driven_etl._problems import Problems
from event_driven_etl._validation import check_pipeline_tables
from event_driven_etl.runtime.glue.event_driven_etl_job.tables import TableRule, table_name

from ..helpers import only_resource, policy_statements, state_machine_definition, template_of

RELEASE_SNAPSHOT = Path(__file__).resolve().parent.parent / "snapshots" / "release-logical-ids.json"


def _pipeline(**props: Any) -> tuple[Stack, EventDrivenEtlPipeline]:
    stack = Stack(App(), "S")
    return stack, EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="incoming/", **props)


def _job_arguments(stack: Stack) -> dict[str, Any]:
    job = only_resource(template_of(stack), "AWS::Glue::Job")
    arguments: dict[str, Any] = job["Properties"]["DefaultArguments"]
    return arguments


def _statement(stack: Stack, sid: str, role: str = "GlueJobRole") -> dict[str, Any]:
    [found] = [s for s in policy_statements(template_of(stack), role) if s.get("Sid") == sid]
    return found


def _table_resource_names(resources: list[Any]) -> list[str]:
    """The ``<database>/<table>`` part of each table ARN (the database as its Ref)."""
    names = []
    for arn in resources:
        parts = arn["Fn::Join"][1]
        if ":table/" in parts:
            names.append(parts[-1])
    return names


# ------------------------------------------------------------------ the default


def _release_stack(**props: Any) -> tuple[Stack, dict[str, str]]:
    """The release snapshot's "default" configuration (test_release_compatibility), and its
    logical IDs -> types."""
    app = App()
    stack = Stack(app, "Etl", env=Environment(account="111111111111", region="eu-west-1"))
    EventDrivenEtlPipeline(stack, "Pipeline", **props)
    resources = app.synth().get_stack_by_name("Etl").template["Resources"]
    return stack, {lid: r["Type"] for lid, r in resources.items()}


@pytest.mark.parametrize("tables", [None, Tables.single()], ids=["unset", "single"])
def test_default_single_table_leaves_the_template_byte_identical(
    tables: Optional[Tables],
) -> None:
    """No routing argument, no grant on every table of the database, no ``tables`` in the
    workflow, and every logical ID of the last release kept with its type."""
    stack, ids = _release_stack(**({} if tables is None else {"tables": tables}))
    assert "--tables" not in _job_arguments(stack)
    for statement in policy_statements(template_of(stack), "GlueJobRole"):
        resources = statement["Resource"]
        listed = resources if isinstance(resources, list) else [resources]
        joined = [r for r in listed if isinstance(r, dict) and "Fn::Join" in r]
        assert "/*" not in _table_resource_names(joined), statement
    states = state_machine_definition(template_of(stack))["States"]
    assert "tables" not in json.dumps(states)
    release = json.loads(RELEASE_SNAPSHOT.read_text())["default"]
    assert {lid: ids.get(lid) for lid in release} == release
    without, _ = _pipeline()
    with_default, _ = _pipeline(tables=Tables.single())
    first = json.dumps(template_of(without).to_json(), sort_keys=True)
    assert json.dumps(template_of(with_default).to_json(), sort_keys=True) == first


def test_a_named_single_table_names_the_catalog_table() -> None:
    stack, pipeline = _pipeline(tables=Tables.single("Orders"))
    assert pipeline.catalog_table_name == "orders"
    assert _job_arguments(stack)["--catalog_table"] == "orders"
    assert "--tables" not in _job_arguments(stack)


# ------------------------------------------------------------------ by folder


def test_by_folder_passes_the_rule_and_lets_the_job_keep_the_database_tables() -> None:
    stack, _ = _pipeline(tables=Tables.by_folder())
    rule = json.loads(_job_arguments(stack)["--tables"])
    assert rule == {"rule": "by_folder", "key_prefix": "incoming/"}
    statement = _statement(stack, "MaintainOutputTable")
    assert statement["Action"] == [
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:CreateTable",
        "glue:UpdateTable",
        "glue:GetPartition",
        "glue:BatchCreatePartition",
    ]
    assert _table_resource_names(statement["Resource"]) == ["/*"]  # table/<its database>/*
    assert len(statement["Resource"]) == 3  # the catalog, the database, its tables


def test_by_folder_notifications_carry_each_tables_counts() -> None:
    stack, _ = _pipeline(tables=Tables.by_folder())
    states = state_machine_definition(template_of(stack))["States"]
    success = states["Notify success"]["Parameters"]["Message"]
    assert success["tables.$"] == "$.outcome.tables"
    assert states["Read outcome"]["Parameters"]["tables.$"] == "$.run_report.report.tables"
    defaults = states["Normalise input"]["Parameters"]["defaults"]["outcome"]
    assert defaults["tables"] == {}  # a literal: braces are reserved in intrinsic literals


# ------------------------------------------------------------------ mapping


def test_mapping_names_each_table_exactly_in_the_job_and_query_grants() -> None:
    stack, pipeline = _pipeline(
        tables=Tables.mapping({"orders/": "Orders", "crm/customers/": "customers"})
    )
    analyst = iam.Role(stack, "Analyst", assumed_by=iam.AccountRootPrincipal())
    pipeline.grant_query(analyst)
    rule = json.loads(_job_arguments(stack)["--tables"])
    assert rule == {
        "rule": "mapping",
        "key_prefix": "incoming/",
        "routes": {"crm/customers/": "customers", "orders/": "orders"},
    }
    job_tables = _table_resource_names(_statement(stack, "MaintainOutputTable")["Resource"])
    assert job_tables == ["/customers", "/orders"]
    [query] = [
        s
        for s in policy_statements(template_of(stack), "Analyst")
        if "glue:GetTable" in s["Action"]
    ]
    assert _table_resource_names(query["Resource"]) == ["/customers", "/orders"]


def test_grant_query_with_tables_by_folder_covers_the_database_tables() -> None:
    stack, pipeline = _pipeline(tables=Tables.by_folder())
    analyst = iam.Role(stack, "Analyst", assumed_by=iam.AccountRootPrincipal())
    pipeline.grant_query(analyst)
    [query] = [
        s
        for s in policy_statements(template_of(stack), "Analyst")
        if "glue:GetTable" in s["Action"]
    ]
    assert _table_resource_names(query["Resource"]) == ["/*"]


def test_tables_show_as_written_in_code() -> None:
    assert repr(Tables.by_folder()) == "Tables.by_folder()"
    assert repr(Tables.single()) == "Tables.single()"
    assert repr(Tables.mapping({"a/": "b"})) == "Tables.mapping({'a/': 'b'})"


# ------------------------------------------------------------------ validation


def test_fails_tables_of_the_wrong_type() -> None:
    with pytest.raises(ValidationError, match=r"tables='orders': must be a Tables"):
        _pipeline(tables="orders")


def test_fails_a_mapping_with_bad_prefixes_and_names_all_at_once() -> None:
    with pytest.raises(ValidationError) as raised:
        _pipeline(tables=Tables.mapping({"/orders/": "orders", "crm/": "日本", "x/": ""}))
    problems = raised.value.problems
    assert len(problems) == 3
    assert all(p.startswith("tables=Tables.mapping(") for p in problems)
    assert "key prefix '/orders/' must be a string relative to key_prefix" in problems[0]
    assert (
        "table '日本': normalised like a column name it must be a Glue table name" in (problems[1])
    )


def test_fails_an_empty_mapping() -> None:
    with pytest.raises(ValidationError, match=r"takes a non-empty dict of key prefix: table"):
        _pipeline(tables=Tables.mapping({}))


def test_fails_catalog_table_name_beside_tables_by_folder() -> None:
    with pytest.raises(
        ValidationError,
        match=r"catalog_table_name='orders': has no effect with tables=Tables.by_folder\(\)",
    ):
        _pipeline(tables=Tables.by_folder(), catalog_table_name="orders")


def test_fails_a_single_table_named_twice_differently() -> None:
    with pytest.raises(
        ValidationError, match=r"tables=Tables.single\('a'\): names the table 'a' and "
    ):
        _pipeline(tables=Tables.single("a"), catalog_table_name="b")


def test_fails_a_named_single_table_without_a_catalog() -> None:
    with pytest.raises(ValidationError, match=r"tables=Tables.single\('orders'\): names a catalog"):
        _pipeline(tables=Tables.single("orders"), catalog=False)


def test_fails_a_table_name_another_pipeline_keeps_in_the_same_database() -> None:
    stack = Stack(App(), "S")
    database = glue.Database(stack, "Lake", database_name="lake")
    EventDrivenEtlPipeline(
        stack,
        "Orders",
        key_prefix="orders/",
        catalog_database=database,
        tables=Tables.mapping({"eu/": "orders", "us/": "us_orders"}),
    )
    with pytest.raises(ValidationError) as raised:
        EventDrivenEtlPipeline(
            stack,
            "Shop",
            key_prefix="shop/",
            catalog_database=database,
            tables=Tables.single("orders"),
        )
    [problem] = raised.value.problems
    assert problem.startswith("tables='orders': the pipeline at 'S/Orders' already keeps")


def test_fails_a_mapping_table_another_pipeline_keeps_showing_the_mapping_as_written() -> None:
    stack = Stack(App(), "S")
    database = glue.Database(stack, "Lake", database_name="lake")
    EventDrivenEtlPipeline(
        stack, "Orders", key_prefix="o/", catalog_database=database, catalog_table_name="orders"
    )
    with pytest.raises(ValidationError) as raised:
        EventDrivenEtlPipeline(
            stack,
            "Shop",
            key_prefix="shop/",
            catalog_database=database,
            tables=Tables.mapping({"eu/": "orders"}),
        )
    [problem] = raised.value.problems
    assert problem.startswith(
        "tables=Tables.mapping({'eu/': 'orders'}): the pipeline at 'S/Orders' already keeps "
        "the table 'orders'"
    )


def test_fails_a_table_named_after_a_pipeline_name_another_pipeline_keeps() -> None:
    stack = Stack(App(), "S")
    database = glue.Database(stack, "Lake", database_name="lake")
    EventDrivenEtlPipeline(
        stack, "Orders", key_prefix="o/", catalog_database=database, pipeline_name="orders"
    )
    with pytest.raises(ValidationError) as raised:
        EventDrivenEtlPipeline(
            stack, "Shop", key_prefix="s/", catalog_database=database, pipeline_name="orders"
        )
    [problem] = raised.value.problems
    assert problem.startswith("pipeline_name='orders': the pipeline at 'S/Orders' already keeps")
    assert "name it with catalog_table_name" in problem
    assert "catalog_table_name=" not in problem.split(":")[0]


@pytest.mark.parametrize(
    ("routes", "complaint"),
    [
        ({1: "a"}, "key prefix 1 must be a string"),
        ({"a/": 1}, "table 1: normalised like a column name"),
        (["a"], "Tables.mapping takes a non-empty dict"),
        ("orders/", "Tables.mapping takes a non-empty dict"),
    ],
)
def test_fails_a_mapping_of_the_wrong_shape_with_one_validation_error(
    routes: Any, complaint: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        _pipeline(tables=Tables.mapping(routes))
    [problem] = raised.value.problems
    assert problem.startswith(f"tables=Tables.mapping({routes!r}): {complaint}")


@pytest.mark.parametrize("tables", [Tables.by_folder(), Tables.mapping({"orders/": "orders"})])
def test_fails_a_routing_key_prefix_without_a_trailing_slash(tables: Tables) -> None:
    stack = Stack(App(), "S")
    with pytest.raises(ValidationError) as raised:
        EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="incoming", tables=tables)
    [problem] = raised.value.problems
    assert problem.startswith(f"key_prefix='incoming': with tables={tables!r} it must end")
    assert "'incoming/'" in problem


def test_a_single_table_keeps_any_key_prefix() -> None:
    EventDrivenEtlPipeline(Stack(App(), "S"), "Pipeline", key_prefix="incoming")


def test_fails_routing_tables_with_your_own_glue_script() -> None:
    script = glue.Code.from_asset(__file__)
    with pytest.raises(ValidationError) as raised:
        _pipeline(tables=Tables.by_folder(), glue_script=script)
    [problem] = raised.value.problems
    assert problem.startswith("tables=Tables.by_folder(): routes objects to tables in the built-in")
    assert "glue_script" in problem
    _pipeline(glue_script=script)  # one table: your script, as before


def _warnings(stack: Stack) -> list[str]:
    from aws_cdk.assertions import Annotations, Match

    found = Annotations.from_stack(stack).find_warning("*", Match.any_value())
    return [str(m.entry.data) for m in found]


def test_tables_by_folder_in_a_brought_database_warn_that_every_table_is_reachable() -> None:
    stack = Stack(App(), "S")
    database = glue.Database(stack, "Lake", database_name="lake")
    EventDrivenEtlPipeline(
        stack, "P", key_prefix="in/", catalog_database=database, tables=Tables.by_folder()
    )
    [warning] = [w for w in _warnings(stack) if "Tables.by_folder()" in w]
    assert "catalog_database you brought" in warning and "never that table rewritten" in warning


@pytest.mark.parametrize(
    "props",
    [
        {"tables": Tables.by_folder()},
        {"tables": Tables.mapping({"a/": "a"}), "brought": True},
        {"brought": True},
    ],
)
def test_no_folder_warning_with_its_own_database_or_named_tables(props: dict[str, Any]) -> None:
    stack = Stack(App(), "S")
    if props.pop("brought", False):
        props["catalog_database"] = glue.Database(stack, "Lake", database_name="lake")
    EventDrivenEtlPipeline(stack, "P", key_prefix="in/", **props)
    assert not [w for w in _warnings(stack) if "by_folder" in w]


def test_a_database_of_its_own_never_collides() -> None:
    stack = Stack(App(), "S")
    for name in ("A", "B"):
        EventDrivenEtlPipeline(
            stack, name, key_prefix=f"{name}/", tables=Tables.mapping({"x/": "orders"})
        )


# ------------------------------------------------------------------ routing (the job's)

_SEGMENT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=12
)
_PREFIX = st.lists(_SEGMENT, min_size=0, max_size=2).map(lambda s: "".join(f"{x}/" for x in s))


@given(_SEGMENT)
def test_table_names_are_glue_names_and_normalising_is_idempotent(text: str) -> None:
    name = table_name(text)
    if name is not None:
        assert name == name.lower() and len(name) <= 255
        assert all(c.isascii() and (c.isalnum() or c == "_") for c in name)
        assert not name[0].isdigit()
        assert table_name(name) == name


_ANY_PREFIX = _PREFIX | st.tuples(_PREFIX, _SEGMENT).map("".join)
"""Key prefixes, some not ending with ``/`` (``incoming``): those are refused at synth."""


def _refused_key_prefix(key_prefix: str, tables: Tables) -> bool:
    problems = Problems("EventDrivenEtlPipeline 'Pipeline'")
    props = {"tables": tables, "catalog_table_name": None, "catalog": True}
    check_pipeline_tables(problems, {**props, "glue_script": None, "key_prefix": key_prefix})
    return any(p.startswith("key_prefix=") for p in problems.items)


@given(key_prefix=_ANY_PREFIX, folder=_SEGMENT, rest=st.lists(_SEGMENT, max_size=3))
def test_by_folder_routes_a_key_to_its_first_folder(
    key_prefix: str, folder: str, rest: list[str]
) -> None:
    if _refused_key_prefix(key_prefix, Tables.by_folder()):
        assert not key_prefix.endswith("/")  # no folder: every object would be skipped
        return
    assert key_prefix == "" or key_prefix.endswith("/")
    rule = TableRule.of("by_folder", key_prefix)
    key = key_prefix + "/".join([folder, *rest, "data.csv"])
    route = rule.route_key(key)
    assert route.table == table_name(folder)
    assert (route.table is None) == bool(route.reason)
    # An object directly under the prefix is in no folder: skipped, with a reason.
    assert rule.route_key(f"{key_prefix}data.csv").table is None


@given(
    routes=st.dictionaries(
        _PREFIX, st.sampled_from(["orders", "Customers", "crm data"]), max_size=5
    ),
    key=st.lists(_SEGMENT, min_size=1, max_size=4).map("/".join),
)
def test_mapping_routes_to_the_longest_matching_prefix(routes: dict[str, str], key: str) -> None:
    rule = TableRule.of("mapping", "in/", routes)
    matching = [prefix for prefix in routes if key.startswith(prefix)]
    route = rule.route_key(f"in/{key}")
    if not matching:
        assert route.table is None and "matches no table of the mapping" in route.reason
    else:
        longest = max(matching, key=len)
        assert route.table == table_name(routes[longest])


@given(routes=st.dictionaries(_PREFIX, st.sampled_from(["a", "b"]), min_size=1, max_size=4))
def test_the_rule_survives_its_job_argument(routes: dict[str, str]) -> None:
    rule = TableRule.of("mapping", "incoming/", routes)
    assert TableRule.from_json(rule.to_json()) == rule


def test_grouping_keeps_every_object_once() -> None:
    rule = TableRule.of("mapping", "in/", {"a/": "x", "b/": "y"})
    uris = ["s3://b/in/a/1.csv", "s3://b/in/c/2.csv", "s3://b/in/b/3.csv", "s3://b/in/a/4.csv"]
    by_table, unrouted = rule.group(uris)
    assert by_table == {"x": ["s3://b/in/a/1.csv", "s3://b/in/a/4.csv"], "y": ["s3://b/in/b/3.csv"]}
    assert list(unrouted) == ["s3://b/in/c/2.csv"]


def test_fails_report_tables_that_is_not_a_bool() -> None:
    stack = Stack(App(), "S")
    job = glue.Job.from_job_attributes(stack, "Job", job_name="nightly")
    topic = sns.Topic(stack, "Topic")
    with pytest.raises(ValidationError, match=r"report_tables='yes': must be True or False"):
        EtlStateMachine(
            stack,
            "Workflow",
            glue_job=job,
            notification_topic=topic,
            report_tables=cast(bool, "yes"),
        )

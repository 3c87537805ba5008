"""The configuration space, property-tested (issue #18).

Strategy 1 draws valid combinations of the documented props, synthesizes each, runs
cfn-lint and cdk-nag on it, checks the invariants the README promises (least privilege per
role, every service-principal path allowed with conditions AWS supports, names within
limits, no self-trigger) and runs a sample end to end through ``LocalPipeline`` (without
Spark). Strategy 2 draws wrong types and invalid combinations and asserts one clear
``ValidationError`` naming each of them.

The suite runs a bounded number of examples. A long run explores more::

    CONFIG_SPACE_EXAMPLES=200 CONFIG_SPACE_INVALID_EXAMPLES=2000 \\
        .venv/bin/python -m pytest tests/compliance/test_configuration_space.py
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest
from aws_cdk import App, Duration, Stack, Validations
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from cdk_nag import AwsSolutionsChecks
from constructs import Construct
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from event_driven_etl import Batching, EventDrivenEtlPipeline, RetryPolicy, ValidationError
from event_driven_etl.testing import LocalPipeline
from event_driven_etl.testing._template import load_from_assembly
from tests.compliance.configurations import ENV
from tests.unit.test_security import ALLOWED_STAR_ACTIONS  # one reviewed list of '*' actions

VALID_EXAMPLES = int(os.environ.get("CONFIG_SPACE_EXAMPLES", "6"))
INVALID_EXAMPLES = int(os.environ.get("CONFIG_SPACE_INVALID_EXAMPLES", "40"))
OFFLINE_EVERY = int(os.environ.get("CONFIG_SPACE_OFFLINE_EVERY", "3"))
"""Every n-th valid example also runs end to end offline."""

_SETTINGS = {
    "deadline": None,  # a synth takes seconds on a busy machine
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    "database": None,  # the same draws every run: a failure is reproducible from the seed
    "derandomize": os.environ.get("CONFIG_SPACE_RANDOM") != "1",
    # Each example synthesizes a stack (seconds): a failure is reported as drawn, not shrunk.
    "phases": [Phase.explicit, Phase.reuse, Phase.generate],
}

NAME_LIMITS = {
    ("AWS::Glue::SecurityConfiguration", "Name"): 255,
    ("AWS::Glue::Database", "DatabaseInput.Name"): 255,
    ("AWS::Logs::LogGroup", "LogGroupName"): 512,
}


# ---------------------------------------------------------------------- strategy 1


@dataclass
class Draw:
    """One valid configuration: how to build it, and what it promises."""

    props: dict[str, Any] = field(default_factory=dict)
    deep: bool = False
    bring_source: Optional[str] = None  # None, "created" or "imported"
    bring_output: bool = False
    same_bucket: bool = False
    customer_key: bool = False
    topic: Optional[str] = None  # None, "encrypted", "imported", "other-stack"
    alarm_topic: Optional[str] = None  # None, "encrypted"

    def build(self, app: App) -> tuple[Stack, EventDrivenEtlPipeline]:
        stack = Stack(app, "Space", env=ENV)
        scope: Construct = stack
        if self.deep:  # long construct paths: names must stay within AWS's limits
            for i in range(5):
                scope = Construct(scope, f"Team{i}" + "n" * 40)
        props = dict(self.props)
        key = kms.Key(stack, "CustomerKey", enable_key_rotation=True) if self.customer_key else None
        if key is not None:
            props["encryption_key"] = key
        if self.bring_source == "created":
            props["source_bucket"] = s3.Bucket(stack, "Raw", enforce_ssl=True)
        elif self.bring_source == "imported":
            props["source_bucket"] = s3.Bucket.from_bucket_name(stack, "Raw", "acme-raw")
        if self.same_bucket and "source_bucket" in props:
            props["output_bucket"] = props["source_bucket"]
        elif self.bring_output:
            props["output_bucket"] = s3.Bucket(stack, "Curated", enforce_ssl=True)
        if self.topic == "encrypted":
            props["notification_topic"] = sns.Topic(
                stack, "Ops", master_key=key or kms.Key(stack, "OpsKey", enable_key_rotation=True)
            )
        elif self.topic == "imported":
            props["notification_topic"] = sns.Topic.from_topic_arn(
                stack, "Ops", "arn:aws:sns:eu-west-1:111111111111:ops"
            )
        elif self.topic == "other-stack":
            central = Stack(app, "Central", env=ENV)
            props["notification_topic"] = sns.Topic(
                central, "Ops", master_key=kms.Key(central, "Key", enable_key_rotation=True)
            )
        if self.alarm_topic == "encrypted" and props.get("alarms", True):
            props["alarm_topic"] = sns.Topic(
                stack, "Alerts", master_key=kms.Key(stack, "AlertsKey", enable_key_rotation=True)
            )
        return stack, EventDrivenEtlPipeline(scope, "Pipeline", **props)

    @property
    def offline_capable(self) -> bool:
        """The harness reads one stack (a topic of another stack is not in it), and names
        emulated queues after their logical ids, which a deep path makes longer than SQS's
        80 characters (CloudFormation shortens its generated names; the harness does not)."""
        return self.topic != "other-stack" and not self.deep


@st.composite
def valid_configurations(draw: st.DrawFn) -> Draw:
    flex = draw(st.booleans())
    props: dict[str, Any] = {
        "key_prefix": draw(st.sampled_from([None, "incoming/", "landing/orders/"])),
        "key_suffix": draw(st.sampled_from([None, ".csv", ".json"])),
        "output_prefix": draw(st.sampled_from(["processed/", "curated/orders/"])),
        "bad_records": draw(st.sampled_from(["fail", "quarantine"])),
        "alarms": draw(st.booleans()),
        "dashboard": draw(st.booleans()),
        "catalog": draw(st.booleans()),
        "include_execution_data": draw(st.booleans()),
        "number_of_workers": draw(st.integers(2, 10)),
        "max_concurrent_runs": draw(st.integers(1, 50)),
        "worker_type": draw(
            st.sampled_from(
                [glue.WorkerType.G_1X, glue.WorkerType.G_2X]
                if flex
                else [glue.WorkerType.G_1X, glue.WorkerType.G_2X, glue.WorkerType.G_4X]
            )
        ),
    }
    if flex:
        props["execution_class"] = glue.ExecutionClass.FLEX
    else:
        props["job_run_queuing"] = draw(st.booleans())
    batching = draw(st.booleans())
    if batching:
        size = draw(st.integers(1, 500))
        props["batching"] = Batching(
            max_batch_size=size,
            max_batching_window=Duration.seconds(draw(st.integers(1 if size > 10 else 0, 300))),
        )
    if draw(st.booleans()):
        interval = draw(st.integers(1, 120))
        props["retry_policy"] = RetryPolicy(
            max_attempts=draw(st.integers(0, 6)),
            interval=Duration.seconds(interval),
            backoff_rate=draw(st.sampled_from([1.0, 1.5, 2.0])),
            max_delay=draw(st.sampled_from([None, Duration.seconds(interval * 4)])),
            retry_failed_runs=draw(st.booleans()),
        )
    if props["alarms"] and draw(st.booleans()):
        props["freshness_period"] = Duration.hours(draw(st.integers(1, 48)))
    if props["catalog"] and draw(st.booleans()):
        props["catalog_table_name"] = draw(st.sampled_from(["orders", "t_2026_sales"]))
    if draw(st.booleans()):
        props["pipeline_name"] = draw(st.sampled_from(["orders-ingest", "crm/customers"]))
    if draw(st.booleans()):
        props["quality_rules"] = draw(
            st.sampled_from(
                [
                    'Rules = [ RowCount > 0, IsComplete "id" ]',
                    {"*": 'Rules = [ ColumnExists "id" ]'},
                ]
            )
        )
    config = Draw(
        props=props,
        deep=draw(st.booleans()),
        bring_source=draw(st.sampled_from([None, "created", "imported"])),
        bring_output=draw(st.booleans()),
        customer_key=draw(st.booleans()),
        topic=draw(st.sampled_from([None, "encrypted", "imported", "other-stack"])),
        alarm_topic=draw(st.sampled_from([None, "encrypted"])),
    )
    # One bucket for input and output only with a key prefix outside what is written.
    config.same_bucket = (
        config.bring_source == "created" and props["key_prefix"] is not None and draw(st.booleans())
    )
    return config


def _lint(template: dict[str, Any]) -> list[str]:
    from cfnlint.api import lint_all

    return [str(m) for m in lint_all(json.dumps(template)) if m.rule.id[0] in "EW"]


def _nag_violations(report_dir: Path) -> list[str]:
    report = json.loads((report_dir / "validation-report.json").read_text())
    return [
        f"{violation['ruleName']} at {construct['constructPath']}"
        for plugin in report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_star_actions(template: dict[str, Any]) -> set[str]:
    """Actions some pipeline role may take on ``Resource: "*"`` (or any action ``*``)."""
    found = set()
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Policy" or logical_id.startswith("BucketNotifications"):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = _as_list(statement["Action"])
            assert "*" not in actions and not any(a.endswith(":*") for a in actions), statement
            if "*" in _as_list(statement.get("Resource")):
                found.update(actions)
    return found


_UNSUPPORTED_IN_KEY_POLICY = {"events.amazonaws.com": ("aws:SourceArn", "aws:SourceAccount")}


def _service_statements(template: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(resource type, service, statement) of every resource or key policy statement that
    admits an AWS service principal."""
    found = []
    for resource in template["Resources"].values():
        kind = resource["Type"]
        props = resource.get("Properties", {})
        document = props.get("KeyPolicy") or props.get("PolicyDocument")
        if kind not in (
            "AWS::KMS::Key",
            "AWS::SNS::TopicPolicy",
            "AWS::SQS::QueuePolicy",
            "AWS::S3::BucketPolicy",
        ):
            continue
        for statement in _as_list(document.get("Statement", [])):
            services = statement.get("Principal", {})
            if not isinstance(services, dict) or statement.get("Effect") != "Allow":
                continue
            for service in _as_list(services.get("Service", [])):
                # A regional principal is an Fn::Join (logs.<region>.amazonaws.com).
                name = service if isinstance(service, str) else json.dumps(service)
                found.append((kind, name, statement))
    return found


def _check_invariants(config: Draw, stack: Stack, template: dict[str, Any]) -> None:
    # Least privilege per role: no action wildcards, "*" only where the API has no resources.
    star = _role_star_actions(template)
    assert star <= ALLOWED_STAR_ACTIONS, star - ALLOWED_STAR_ACTIONS
    # Every service-principal path is admitted with conditions AWS supports there.
    for kind, service, statement in _service_statements(template):
        conditions = json.dumps(statement.get("Condition", {}))
        assert statement.get("Condition"), f"{service} unconditioned in {kind}"
        if kind == "AWS::KMS::Key":
            for unsupported in _UNSUPPORTED_IN_KEY_POLICY.get(service, ()):
                assert unsupported not in conditions, f"{service} key statement uses {unsupported}"
    # Names within limits.
    for resource in template["Resources"].values():
        for (kind, path), limit in NAME_LIMITS.items():
            if resource["Type"] != kind:
                continue
            value: Any = resource.get("Properties", {})
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, str):
                assert len(value) <= limit, f"{kind} {path} is {len(value)} characters"
    # No self-trigger: the rule's key pattern never matches what the pipeline writes.
    if config.same_bucket:
        key_prefix = config.props["key_prefix"]
        for written in (config.props["output_prefix"], "manifests/", "quarantine/"):
            assert not written.startswith(key_prefix) and not key_prefix.startswith(written)
    # No unresolved token or repr in any warning a user reads.
    from aws_cdk.assertions import Annotations, Match

    for message in Annotations.from_stack(stack).find_warning("*", Match.any_value()):
        text = str(message.entry.data)
        assert "${Token[" not in text and " object at 0x" not in text, text


def _no_spark(_script: Path, _arguments: dict[str, str]) -> None:
    """A Glue run that succeeds without Spark (every permission check still runs)."""


def _run_offline(config: Draw, assembly_dir: str, pipeline: EventDrivenEtlPipeline) -> None:
    template = load_from_assembly(assembly_dir, "Space")
    key = f"{config.props['key_prefix'] or 'any/'}a{config.props['key_suffix'] or '.csv'}"
    with LocalPipeline(template, f"/{pipeline.node.path}", glue_runner=_no_spark) as local:
        local.put_object(key, b"id,name\n1,Ann\n")
        runs = local.wait_for_runs(timeout=600)
        assert [r.status for r in runs] == ["SUCCEEDED"], local.notifications
        if not isinstance(pipeline.notification_topic, sns.Topic):
            return  # an imported topic is not emulated: its messages are not observable
        statuses = [n.get("status") for n in local.notifications if "status" in n]
        assert statuses == ["SUCCEEDED"]


_explored = {"valid": 0, "offline": 0, "invalid": 0}


@pytest.fixture(scope="module", autouse=True)
def _report_what_was_explored() -> Any:
    """Prints (with ``-s``) how many configurations the module explored: the README's figures."""
    yield
    print(f"\nconfiguration space explored: {_explored}")


@settings(max_examples=VALID_EXAMPLES, **_SETTINGS)  # type: ignore[arg-type]  # a dict of settings
@given(config=valid_configurations())
def test_every_documented_configuration_synthesizes_clean_and_keeps_its_promises(
    config: Draw, tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = tmp_path_factory.mktemp("space")
    nag_app = App(outdir=str(out / "nag"))
    _, nagged = config.build(nag_app)
    Validations.of(nag_app).add_plugins(AwsSolutionsChecks(nag_app))
    with contextlib.suppress(RuntimeError):  # the report below says what failed
        nag_app.synth()
    # The pipeline's findings; the draw's own buckets, keys and topics are the user's.
    assert [v for v in _nag_violations(out / "nag") if f" at {nagged.node.path}/" in v] == []
    app = App(outdir=str(out / "plain"))
    stack, pipeline = config.build(app)
    assembly = app.synth()
    template = assembly.get_stack_by_name("Space").template
    assert _lint(template) == []
    _check_invariants(config, stack, template)
    _explored["valid"] += 1
    # The first configuration the harness can run, then every OFFLINE_EVERY-th one.
    if config.offline_capable and (
        _explored["offline"] == 0 or _explored["valid"] % OFFLINE_EVERY == 0
    ):
        _run_offline(config, assembly.directory, pipeline)
        _explored["offline"] += 1


# ---------------------------------------------------------------------- strategy 2

_WRONG: list[tuple[str, Any]] = [
    # Wrong types: each must be refused by the construct, naming the prop.
    ("execution_class", "FLEX"),
    ("alarms", "false"),
    ("dashboard", "yes"),
    ("catalog", 1),
    ("job_timeout", 30),
    ("workflow_timeout", 3600.0),
    ("freshness_period", "1h"),
    ("job_run_queuing", "true"),
    ("include_execution_data", None or 0),
    ("log_retention", 365),
    ("removal_policy", "retain"),
    ("worker_type", "G.1X"),
    ("number_of_workers", "2"),
    ("max_concurrent_runs", 2.0),
    ("extra_job_arguments", ["--x", "1"]),
    ("extra_job_arguments", {"--x": 1}),
    ("output_prefix", b"processed/"),
    ("key_prefix", 7),
    ("bad_records", True),
    ("retry_policy", {"max_attempts": 3}),
    ("batching", 100),
    ("pipeline_name", 42),
    ("catalog_table_name", ["orders"]),
    ("source_bucket", "raw-bucket"),
    ("output_bucket", "arn:aws:s3:::curated"),
    ("notification_topic", "arn:aws:sns:eu-west-1:111111111111:ops"),
    ("encryption_key", "alias/etl"),
    # Invalid values and combinations.
    ("worker_type", glue.WorkerType.G_025X),
    ("worker_type", glue.WorkerType.STANDARD),
    ("extra_job_arguments", {"--conf": "spark.executor.cores=8"}),
    ("extra_job_arguments", {"--objects": "[]"}),
    ("output_prefix", "out*/"),
    ("output_prefix", "processed"),
    ("output_prefix", "manifests/"),
    ("key_prefix", "/incoming/"),
    ("key_prefix", "in?/"),
    ("number_of_workers", 1),
    ("max_concurrent_runs", 0),
    ("job_timeout", Duration.seconds(30)),
    ("freshness_period", Duration.minutes(1)),
    ("bad_records", "skip"),
    ("catalog_table_name", "Orders-2026"),
    ("pipeline_name", ""),
    ("quality_rules", 5),
    ("quality_rules", "Rules = [ RowCnt > 0 ]"),
    ("quality_rules", {"no_such_table": "Rules = [ RowCount > 0 ]"}),
]
_COMBINATIONS: list[dict[str, Any]] = [
    {"catalog": False, "catalog_table_name": "orders"},
    {"execution_class": glue.ExecutionClass.FLEX, "job_run_queuing": True},
    {"execution_class": glue.ExecutionClass.FLEX, "worker_type": glue.WorkerType.G_4X},
    {"job_timeout": Duration.hours(5), "workflow_timeout": Duration.hours(2)},
    {"alarms": False, "alarm_topic": "topic"},
    {"notification_topic_key": "key"},
]


@st.composite
def invalid_configurations(draw: st.DrawFn) -> tuple[dict[str, Any], set[str]]:
    """1 to 3 problems, each on a different prop, and the props that must be named."""
    chosen = draw(
        st.lists(st.sampled_from(range(len(_WRONG) + len(_COMBINATIONS))), min_size=1, max_size=3)
    )
    props: dict[str, Any] = {}
    named: set[str] = set()
    for index in chosen:
        if index < len(_WRONG):
            prop, value = _WRONG[index]
            if prop in props:
                continue
            props[prop] = value
            named.add(prop)
        else:
            combination = _COMBINATIONS[index - len(_WRONG)]
            if set(combination) & set(props):
                continue
            props.update(combination)
            # The prop each combination's problem is reported on.
            named.add(
                {
                    "catalog": "catalog_table_name",
                    "execution_class": "job_run_queuing"
                    if "job_run_queuing" in combination
                    else "worker_type",
                    "job_timeout": "job_timeout",
                    "alarms": "alarm_topic",
                    "notification_topic_key": "notification_topic_key",
                }[next(iter(combination))]
            )
    return props, named


@settings(max_examples=INVALID_EXAMPLES, **_SETTINGS)  # type: ignore[arg-type]  # a dict of settings
@given(case=invalid_configurations())
def test_every_wrong_type_and_invalid_combination_gives_one_clear_error(
    case: tuple[dict[str, Any], set[str]],
) -> None:
    props, named = case
    app = App()
    stack = Stack(app, "Invalid", env=ENV)
    for prop in ("alarm_topic", "notification_topic_key"):
        if props.get(prop) == "topic":
            props[prop] = sns.Topic(stack, "Alerts")
        elif props.get(prop) == "key":
            props[prop] = kms.Key(stack, "Key")
    before = len(stack.node.find_all())
    with pytest.raises(ValidationError) as error:
        EventDrivenEtlPipeline(stack, "Pipeline", **props)
    assert isinstance(error.value, TypeError)  # one class catches types and values
    reported = {re.split(r"[=:]", p, maxsplit=1)[0] for p in error.value.problems}
    assert named <= reported, (named - reported, error.value.problems)
    text = str(error.value)
    assert "${Token[" not in text and " object at 0x" not in text, text
    assert "Traceback" not in text
    for problem in error.value.problems:
        assert ": " in problem  # prop=value: what is allowed
    assert len(stack.node.find_all()) == before  # nothing half-built left in the tree
    _explored["invalid"] += 1


def _template_with(resource: dict[str, Any]) -> dict[str, Any]:
    return {"Resources": {"Thing": resource}}


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        (
            {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "KeyPolicy": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Action": "kms:GenerateDataKey*",
                                "Resource": "*",
                                "Condition": {"StringEquals": {"aws:SourceAccount": "1"}},
                            }
                        ]
                    }
                },
            },
            "uses aws:SourceAccount",
        ),
        (
            {
                "Type": "AWS::SNS::TopicPolicy",
                "Properties": {
                    "PolicyDocument": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": "sns:Publish",
                                "Resource": "*",
                            }
                        ]
                    }
                },
            },
            "unconditioned",
        ),
        (
            {"Type": "AWS::Glue::SecurityConfiguration", "Properties": {"Name": "n" * 256}},
            "256 characters",
        ),
        (
            {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyDocument": {
                        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]
                    }
                },
            },
            "s3:*",
        ),
    ],
    ids=["eventbridge-key-source-account", "unconditioned-service", "long-name", "action-star"],
)
def test_fails_the_invariants_on_what_aws_would_refuse(
    resource: dict[str, Any], message: str
) -> None:
    """The property test's checks can fail: each template breaks one promise."""
    app = App()
    stack = Stack(app, "Checked", env=ENV)
    with pytest.raises(AssertionError, match=re.escape(message)):
        _check_invariants(Draw(props={"key_prefix": None}), stack, _template_with(resource))

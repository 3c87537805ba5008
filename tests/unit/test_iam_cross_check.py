"""The harness's IAM evaluator agrees with a second implementation, principalmapper (PMapper),
on a committed table of decisions (tests/unit/iam_cases.json), each expectation taken from
AWS's documentation (the case's ``why``), and on every call the synthesized default pipeline's
roles could make on its own resources.

PMapper (https://github.com/nccgroup/PMapper) simulates IAM's evaluation locally
(``principalmapper.querying.query_interface.local_check_authorization_full``). Where AWS's
documentation and PMapper part, the table keeps AWS's answer out of the cross-check and a
test of its own says so (``NotPrincipal`` naming a role without its account, resource ARNs
compared case-sensitively, below).
"""

from __future__ import annotations

import collections
import collections.abc
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

from event_driven_etl.testing._iam import Policies, Principal

# PMapper 1.1.5 imports Mapping and MutableMapping from `collections`, which Python 3.10
# removed (they live in collections.abc): restore the old names before importing it.
for _name in ("Mapping", "MutableMapping"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

from principalmapper.common.nodes import Node  # noqa: E402
from principalmapper.common.policies import Policy  # noqa: E402
from principalmapper.querying import query_interface  # noqa: E402
from principalmapper.querying.local_policy_simulation import (  # noqa: E402
    ResourcePolicyEvalResult,
    resource_policy_authorization,
)

CASES = json.loads((Path(__file__).parent / "iam_cases.json").read_text())["cases"]
ACCOUNT = "123456789012"
TRANSPORT = {"aws:SecureTransport": "true"}


def _principal(name: str) -> Principal:
    if name.startswith("service:"):
        return Principal.for_service(name.removeprefix("service:"))
    return Principal(arn=name)


def _policy_owner(resource: str) -> str:
    """The ARN whose resource policy applies: an object's bucket, else the resource itself."""
    if resource.startswith("arn:aws:s3:::") and "/" in resource:
        return resource.split("/", 1)[0]
    return resource


def ours(case: dict[str, Any]) -> bool:
    principal = _principal(case["principal"])
    resource, owner = case["resource"], _policy_owner(case["resource"])
    statements = case["policy"]
    policies = Policies(
        identity={principal.arn: case["identity"]} if principal.service is None else {},
        owners={owner: case["owner"]},
    )
    context = {**TRANSPORT, **case["context"]}
    if case["kind"] == "key":
        policies.keys[resource] = statements or []
        return policies.key_allows(principal, case["action"], resource, context)[0]
    if statements is not None:
        policies.resource[owner] = statements
    return policies.allows(principal, case["action"], resource, context, resource_policy_of=owner)[
        0
    ]


def pmapper(case: dict[str, Any]) -> bool:
    statements: Optional[list[dict[str, Any]]] = case["policy"]
    if case["kind"] == "key" and statements is None:
        statements = []
    document = None if statements is None else {"Version": "2012-10-17", "Statement": statements}
    context = {**TRANSPORT, **case["context"]}
    if case["principal"].startswith("service:"):
        service = case["principal"].removeprefix("service:")
        result = resource_policy_authorization(
            service,
            case["owner"],
            document or {"Statement": []},
            case["action"],
            case["resource"],
            context,
        )
        return bool(result is ResourcePolicyEvalResult.SERVICE_MATCH)
    return bool(
        query_interface.local_check_authorization_full(
            _node(case["principal"], case["identity"]),
            case["action"],
            case["resource"],
            context,
            resource_policy=document,
            resource_owner=case["owner"] if document is not None else None,
        )
    )


def _node(arn: str, identity: list[dict[str, Any]]) -> Node:
    document = {"Version": "2012-10-17", "Statement": identity}
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "glue.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    return Node(
        arn=arn,
        id_value="AROAEXAMPLEROLEID0001",
        attached_policies=[Policy(arn, "inline", document)],
        group_memberships=[],
        trust_policy=trust,
        instance_profile=None,
        num_access_keys=0,
        active_password=False,
        is_admin=False,
        permissions_boundary=None,
        has_mfa=False,
        tags={},
    )


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_evaluator_decides_as_aws_documents_and_as_pmapper_does(case: dict[str, Any]) -> None:
    assert ours(case) is case["expected"], f"ours differs from AWS ({case['why']})"
    assert pmapper(case) is case["expected"], f"PMapper differs from AWS ({case['why']})"


def test_the_table_covers_every_rule_both_ways() -> None:
    by_rule: dict[str, set[bool]] = collections.defaultdict(set)
    for case in CASES:
        by_rule[case["why"]].add(case["expected"])
    assert len(CASES) >= 50
    one_sided = {why for why, outcomes in by_rule.items() if outcomes != {True, False}}
    # NotAction/NotResource pages are covered one way each by design: the other way is the
    # plain Action/Resource case.
    assert one_sided <= {"IAM User Guide, NotAction", "IAM User Guide, NotResource"} | {
        "IAM User Guide, IAM JSON policy elements: Action",
        "IAM User Guide, AWS JSON policy elements: Principal (AWS account principals)",
    }


def test_fails_a_not_principal_deny_naming_the_role_without_its_account() -> None:
    """AWS: with NotPrincipal and Deny 'you must also specify the account ARN of the not-denied
    principal. Otherwise, the policy might deny access to the entire account containing the
    principal' (IAM User Guide, NotPrincipal). PMapper spares the role here; the harness takes
    AWS's strict reading, so it is never greener than AWS."""
    role = f"arn:aws:iam::{ACCOUNT}:role/job"
    case: dict[str, Any] = {
        "principal": role,
        "action": "s3:GetObject",
        "resource": "arn:aws:s3:::data/in/a.csv",
        "identity": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
        "policy": [
            {
                "Effect": "Deny",
                "NotPrincipal": {"AWS": role},
                "Action": "s3:*",
                "Resource": "arn:aws:s3:::data/*",
            }
        ],
        "owner": ACCOUNT,
        "kind": "resource",
        "context": {},
    }
    assert ours(case) is False
    assert pmapper(case) is True  # the documented difference, kept visible


def test_fails_a_resource_pattern_that_differs_from_the_arn_only_in_case() -> None:
    """AWS: "In the Resource element, the IAM user name is case sensitive" (IAM User Guide,
    IAM JSON policy elements: Resource), and S3 object keys are case-sensitive names. PMapper
    compiles resource patterns with re.IGNORECASE; the harness compares them exactly."""
    case: dict[str, Any] = {
        "principal": f"arn:aws:iam::{ACCOUNT}:role/job",
        "action": "s3:GetObject",
        "resource": "arn:aws:s3:::data/in/a.csv",
        "identity": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/IN/*"}
        ],
        "policy": None,
        "owner": ACCOUNT,
        "kind": "resource",
        "context": {},
    }
    assert ours(case) is False
    assert pmapper(case) is True  # the documented difference, kept visible


# ------------------------------------------------------------ the pipeline's own policies


def _pipeline_calls() -> Iterator[dict[str, Any]]:
    """Every role of the default pipeline, each with every action and every resource that any
    of the pipeline's identity policies names (so most pairs are ones a role must NOT get),
    as table cases carrying the template's own resource and key policies."""
    from aws_cdk import App, Stack

    from event_driven_etl import EventDrivenEtlPipeline
    from event_driven_etl.testing import LocalPipeline

    app = App()
    stack = Stack(app, "CrossCheck")
    EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="incoming/")
    layout = LocalPipeline.from_stack(stack, "Pipeline", run_glue_script=False).layout
    policies = Policies.from_template(layout.resources, layout.resolver)
    roles = {
        role: statements
        for role, statements in policies.identity.items()
        # CDK's deploy-time custom resource role has AWS managed policies only.
        if not any("_managed" in s for s in statements)
    }
    named = [s for statements in roles.values() for s in statements]
    actions = sorted({a for s in named for a in _listed(s.get("Action")) if "*" not in a})
    resources = sorted({r.replace("*", "x") for s in named for r in _listed(s.get("Resource"))})
    for role, statements in roles.items():
        for action in actions:
            for resource in resources:
                owner = _policy_owner(resource)
                kind = "key" if ":kms:" in resource else "resource"
                policy = (policies.keys if kind == "key" else policies.resource).get(owner)
                if kind == "key" and policy is None:
                    continue  # an imported key: its policy is not in the template
                yield {
                    "principal": role,
                    "action": action,
                    "resource": resource,
                    "identity": statements,
                    "policy": policy,
                    "owner": ACCOUNT,
                    "kind": kind,
                    "context": {},
                }


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def test_the_evaluator_agrees_with_pmapper_on_every_call_the_pipeline_roles_name() -> None:
    calls = list(_pipeline_calls())
    verdicts = {ours(c) for c in calls}
    assert len(calls) >= 1000 and verdicts == {True, False}
    disagreements = [
        (c["principal"].rsplit("/", 1)[-1], c["action"], c["resource"], ours(c), pmapper(c))
        for c in calls
        if ours(c) != pmapper(c)
    ]
    assert disagreements == []

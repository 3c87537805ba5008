"""Template helpers shared by the tests."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import CfnElement, Stack, Stage
from aws_cdk.assertions import Template
from aws_cdk.cx_api import CloudAssembly
from constructs import IConstruct


def template_of(stack: Stack) -> Template:
    return Template.from_stack(stack)


def logical_id(construct: IConstruct) -> str:
    """The logical ID of a construct's CloudFormation resource (its ``node.default_child``),
    or of the construct itself when it is one."""
    element = construct if isinstance(construct, CfnElement) else construct.node.default_child
    assert isinstance(element, CfnElement), f"{construct.node.path} has no CloudFormation resource"
    return Stack.of(element).get_logical_id(element)


def assembly_of(stack: Stack) -> CloudAssembly:
    """The synthesized app the stack belongs to."""
    root = stack.node.root
    assert isinstance(root, Stage), f"the root of {stack.node.path} is not an App"
    return root.synth()


def resources_of_type(template: Template, kind: str) -> dict[str, Any]:
    return dict(template.find_resources(kind))


def only_resource(template: Template, kind: str) -> dict[str, Any]:
    found = resources_of_type(template, kind)
    assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
    return next(iter(found.values()))


def state_machine_definition(template: Template, name: str = "Workflow") -> dict[str, Any]:
    """A state machine's definition (the workflow by default; ``"JobStateNotifier"`` for
    the other one), with intrinsics replaced by placeholders."""
    machines = resources_of_type(template, "AWS::StepFunctions::StateMachine")
    [machine] = [m for logical_id, m in machines.items() if name in logical_id]
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else "TOKEN" for p in parts)
    return dict(json.loads(text))


def policy_statements(template: Template, role_logical_id_fragment: str) -> list[dict[str, Any]]:
    """Every statement of the inline policies attached to roles whose id contains the fragment."""
    statements: list[dict[str, Any]] = []
    for policy in resources_of_type(template, "AWS::IAM::Policy").values():
        roles = json.dumps(policy["Properties"].get("Roles", []))
        if role_logical_id_fragment in roles:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def evaluated_policies(stack: Stack) -> tuple[Any, Any]:
    """The stack's policies as the offline evaluator sees them, and the resolver that names
    its resources (``resolver.get_att(logical_id, "Arn")``)."""
    from aws_cdk import Token

    from event_driven_etl.testing._iam import Policies
    from event_driven_etl.testing._template import Resolver

    resources = dict(template_of(stack).to_json()["Resources"])
    resolver = Resolver(resources)
    known = {
        name: None if Token.is_unresolved(value) else str(value)
        for name, value in (("account", stack.account), ("region", stack.region))
    }
    policies = Policies.from_template(
        resources, resolver, stack_account=known["account"], stack_region=known["region"]
    )
    return policies, resolver

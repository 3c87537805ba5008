"""Template hygiene: what the constructs do to their own resources beyond the secure defaults.

* cdk-nag acknowledgements and checkov skips, each scoped and explained;
* DependsOn entries CDK adds that cfn-lint reports as obsolete (W3005), dropped;
* CDK's bucket-notifications handler, acknowledged and tidied once.

Only findings that cannot be fixed by configuration are acknowledged, each on the exact
resource it concerns and with its reason. A wildcard that no rule below explains is left
alone, so a new one shows up in every nag run (ours and our users').

IAM5 findings are computed the way cdk-nag computes them (``flattenCfnReference``), so an
acknowledgement names exactly one finding, e.g. ``AwsSolutions-IAM5[Action::s3:List*]``.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional

import jsii
from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import IConstruct, IValidation

PACK = "AwsSolutions"
BUCKET_NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
"""CDK's singleton Lambda that turns on bucket notifications (EventBridge for the source)."""

_CDK_GRANT_ACTIONS = {
    "s3:GetObject*": "CDK's bucket read grant (GetObject, GetObjectVersion, ...)",
    "s3:GetBucket*": "CDK's bucket read grant (GetBucketLocation, ...), on the pipeline's buckets",
    "s3:List*": "CDK's bucket read grant (ListBucket, ...), on the pipeline's buckets",
    "s3:DeleteObject*": "Spark's output committer deletes its temporary files under the prefix",
    "s3:Abort*": "multipart uploads of large output files are aborted on failure",
    "kms:ReEncrypt*": "CDK's key grant for encrypting data, scoped to the one pipeline key",
    "kms:GenerateDataKey*": "KMS data keys for S3/SNS/Glue encryption, scoped to the one key",
}

Reason = Callable[[str, dict[str, Any]], Optional[str]]


# ------------------------------------------------------------------ cdk-nag


def flatten_cfn_reference(node: Any) -> str:
    """cdk-nag's rendering of a resolved value into the string its findings use."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(flatten_cfn_reference(i) for i in items)
        if "Fn::Sub" in node:
            return flatten_cfn_reference(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{flatten_cfn_reference(resource)}.{flatten_cfn_reference(attribute)}>"
        if "Fn::ImportValue" in node:
            return flatten_cfn_reference(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{flatten_cfn_reference(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))


def wildcard_findings(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(finding, statement)`` for every wildcard action/resource of Allow statements."""
    findings: list[tuple[str, dict[str, Any]]] = []
    for statement in document.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        for action in _as_list(statement.get("Action")):
            if "*" in action:
                findings.append((f"Action::{action}", statement))
        for resource in _as_list(statement.get("Resource")):
            flat = flatten_cfn_reference(resource)
            if "*" in flat:
                findings.append((f"Resource::{flat}", statement))
    return findings


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def explain_wildcard(finding: str, statement: dict[str, Any]) -> Optional[str]:
    """Why a wildcard is needed, or None when it is not one we know to be necessary."""
    kind, _, value = finding.partition("::")
    actions = [str(a) for a in _as_list(statement.get("Action"))]
    if kind == "Action":
        return _CDK_GRANT_ACTIONS.get(value)
    if value == "*":
        if actions == ["cloudwatch:PutMetricData"] and statement.get("Condition"):
            return "PutMetricData has no resource-level permissions; a condition limits it to Glue"
        if all(a.startswith(("logs:", "xray:")) for a in actions):
            return (
                "Step Functions log delivery (logs:*LogDelivery*, logs:PutResourcePolicy, ...) "
                "and X-Ray tracing support only Resource '*'"
            )
        return None
    if all(a.startswith("s3:") for a in actions) and _is_object_arn(value):
        if "-assets-" in value:
            return (
                "your glue.Code.from_asset script: aws_glue grants read on the CDK asset "
                "bucket (the built-in script is granted its one object)"
            )
        return "object-level access under a key prefix of one of the pipeline's own buckets"
    if all(a.startswith("states:") for a in actions) and (
        ":execution:" in value or ":mapRun:" in value
    ):
        return (
            "Step Functions names executions and Map Runs at run time: the statement names "
            "those of one state machine only (the backfill's .sync child workflows)"
        )
    if all(a.startswith("logs:") for a in actions) and ":log-group:/aws-glue/" in value:
        return "Glue names its log groups and streams at run time, all under /aws-glue/"
    return None


def _is_object_arn(flat_arn: str) -> bool:
    """``<Bucket.Arn>/prefix*`` or ``arn:...:s3:::bucket/prefix*``: objects, not buckets."""
    after_bucket = flat_arn.rsplit(":::", maxsplit=1)[-1].rsplit(">", maxsplit=1)[-1]
    return "/" in after_bucket


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    acknowledge_all(scope, {rule: reason})


def acknowledge_all(scope: IConstruct, reasons: dict[str, str]) -> None:
    """One call for many rules: each acknowledgement is a round trip to the jsii kernel.

    Recorded twice: for cdk-nag 3 (``Validations`` acknowledgements) and for cdk-nag 2 (the
    ``cdk_nag.rules_to_suppress`` metadata its ``NagSuppressions`` writes), so a user's nag
    run is clean with either major.
    """
    if not reasons:
        return
    Validations.of(scope).acknowledge(
        *(Acknowledgment(id=f"{PACK}::{PACK}-{rule}", reason=r) for rule, r in reasons.items())
    )
    _suppress_for_cdk_nag_2(scope, reasons)


def _suppress_for_cdk_nag_2(scope: IConstruct, reasons: dict[str, str]) -> None:
    resource = scope if isinstance(scope, CfnResource) else scope.node.default_child
    if not isinstance(resource, CfnResource):
        return
    existing = resource.get_metadata("cdk_nag") or {}
    rules: list[dict[str, Any]] = list(existing.get("rules_to_suppress", []))
    for rule, reason in reasons.items():
        rule_id, _, finding = rule.partition("[")
        entry: dict[str, Any] = {"id": f"{PACK}-{rule_id}", "reason": reason}
        if finding:
            entry["applies_to"] = [finding.removesuffix("]")]
        if entry not in rules:
            rules.append(entry)
    resource.add_metadata("cdk_nag", {"rules_to_suppress": rules})


def acknowledge_necessary_wildcards(role: iam.IRole) -> None:
    """Acknowledge the necessary IAM5 wildcards of the role's inline policy.

    Twice: now, for the statements as they stand (cdk-nag 2 checks as an aspect, before
    validation), and again when the app is validated, after CDK has turned references to
    other stacks into ``Fn::ImportValue`` (a bucket of another stack is then named in the
    finding by its export, which does not exist yet) and after later grants. Only wildcards
    explained here are acknowledged, whoever added them.
    """
    resource = role_policy_resource(role)
    if resource is None:
        return
    acknowledgement = _AcknowledgeWildcards(resource)
    acknowledgement.validate()
    resource.node.add_validation(acknowledgement)


def acknowledge_policy_wildcards(policy: IConstruct) -> None:
    """:func:`acknowledge_necessary_wildcards` for a policy of its own (not a role's
    default policy), e.g. aws-cdk-lib's DistributedMapPolicy."""
    resource = policy.node.default_child
    if not isinstance(resource, iam.CfnPolicy):
        return
    acknowledgement = _AcknowledgeWildcards(resource)
    acknowledgement.validate()
    resource.node.add_validation(acknowledgement)


@jsii.implements(IValidation)
class _AcknowledgeWildcards:
    def __init__(self, resource: iam.CfnPolicy) -> None:
        self._resource = resource
        self._done: set[str] = set()

    def validate(self) -> list[str]:
        """Acknowledge what is not yet acknowledged; never reports a problem itself."""
        resource = self._resource
        document = Stack.of(resource).resolve(resource.policy_document)
        reasons: dict[str, str] = {}
        for finding, statement in wildcard_findings(document):
            reason = explain_wildcard(finding, statement)
            if reason is not None and f"IAM5[{finding}]" not in self._done:
                reasons.setdefault(f"IAM5[{finding}]", reason)
        acknowledge_all(resource, reasons)
        self._done.update(reasons)
        return []


def acknowledge_destination_queue(queue: sqs.IQueue) -> None:
    """The per-object dead-letter queue is itself the end of the line: no DLQ of its own."""
    acknowledge(
        queue,
        "SQS3",
        "this queue is the dead-letter destination of the EventBridge target and the "
        "trigger's asynchronous invocations; it is alarmed and needs no DLQ of its own",
    )


# ------------------------------------------------------------------ checkov

CHECKOV_REASONS = {
    "CKV_AWS_18": "access logging on the access-log bucket itself: logging it into itself would "
    "loop, and S3 allows no further target without another bucket that has the same problem",
    "CKV_AWS_116": "Lambda DLQ: failures go to an on-failure destination queue (asynchronous "
    "invocations) or an SQS redrive policy; checkov only sees DeadLetterConfig",
    "CKV_AWS_117": "Lambda in a VPC: the function calls only AWS APIs; a VPC adds NAT cost and "
    "no protection",
    "CKV_AWS_115": "Lambda reserved concurrency: left to the account; throttles are alarmed",
    "CKV_AWS_173": "Lambda environment encryption with a customer key: the variables hold "
    "resource names only (with encryption_key given, they are encrypted with it)",
}
"""Why each checkov check that fails on the synthesized template is skipped, in one place."""


LAMBDA_CHECKOV_SKIPS = ("CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_115")
"""The checkov checks the trigger function and CDK's handler fail by design (reasons above)."""


def _skips(resource: CfnResource, check_id: str) -> bool:
    """Whether the resource's ``Metadata.checkov.skip`` already names ``check_id``."""
    existing = resource.get_metadata("checkov") or {}
    return any(skip.get("id") == check_id for skip in existing.get("skip", []))


def skip_checkov(resource: CfnResource, *check_ids: str) -> None:
    """Record justified checkov exceptions in the template itself (``Metadata.checkov.skip``),
    so a user's own checkov run agrees with ours; merged with any already there."""
    existing = resource.get_metadata("checkov") or {}
    skips = {s["id"]: s for s in existing.get("skip", [])}
    for check_id in check_ids:
        skips[check_id] = {"id": check_id, "comment": CHECKOV_REASONS[check_id]}
    resource.add_metadata("checkov", {"skip": [skips[k] for k in sorted(skips)]})


# ------------------------------------------------------------------ DependsOn


def role_policy_resource(role: iam.IRole) -> Optional[iam.CfnPolicy]:
    """The CloudFormation policy holding a role's inline statements (its DefaultPolicy)."""
    policy = role.node.try_find_child("DefaultPolicy")
    resource = policy.node.default_child if policy is not None else None
    return resource if isinstance(resource, iam.CfnPolicy) else None


def depend_only_on_role_policy(resource: Any, role: iam.IRole) -> None:
    """Keep the DependsOn on the role's policy, drop the one on the role itself.

    CDK makes a resource depend on both; the role is already referenced by ``Fn::GetAtt``,
    so cfn-lint reports that DependsOn as obsolete (W3005). ``resource`` is a construct's
    ``node.default_child`` (nothing is done when it is not a CloudFormation resource).
    """
    if not isinstance(resource, CfnResource):
        return
    policy_resource = role_policy_resource(role)
    if policy_resource is not None:
        resource.add_override("DependsOn", [Stack.of(resource).get_logical_id(policy_resource)])
    else:
        resource.add_deletion_override("DependsOn")


# ------------------------------------------------------------------ CDK's notifications handler


def tidy_bucket_notifications_handler(scope: IConstruct) -> None:
    """CDK's bucket-notifications handler in the stack of ``scope`` (a singleton, created when
    a bucket turns on EventBridge): acknowledge its findings and drop its obsolete DependsOn,
    once. The handler's own checkov metadata says whether it was tidied already (no state
    is kept here: a construct CDK created in JavaScript is a new Python object each time it
    is looked up)."""
    handler = Stack.of(scope).node.try_find_child(BUCKET_NOTIFICATIONS_HANDLER_ID)
    function = handler.node.default_child if handler is not None else None
    if handler is None or not isinstance(function, CfnResource):
        return
    if _skips(function, LAMBDA_CHECKOV_SKIPS[0]):
        return  # tidied already
    _acknowledge_bucket_notifications_handler(handler, function)
    # The same obsolete DependsOn (on its role) as depend_only_on_role_policy drops.
    function.add_deletion_override("DependsOn")


def _acknowledge_bucket_notifications_handler(handler: IConstruct, function: CfnResource) -> None:
    """CDK's own notifications handler uses the AWS managed basic-execution policy, and is a
    Lambda function outside a VPC without a DLQ or reserved concurrency."""
    skip_checkov(function, *LAMBDA_CHECKOV_SKIPS)
    role = handler.node.try_find_child("Role")
    if role is None:
        return
    acknowledge(
        role,
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]",
        "CDK's BucketNotificationsHandler (turns on EventBridge for the source bucket) is "
        "created by aws-cdk-lib with this managed policy; it is not configurable",
    )

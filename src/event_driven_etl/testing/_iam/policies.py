"""IAM evaluation for the emulation: every call a pipeline component makes is checked
against the synthesized policies, and denied the way AWS denies it.

Read from the template: identity policies (``AWS::IAM::Policy`` attached to a role, and a
role's inline ``Policies``), resource policies (buckets, queues, topics, Lambda
permissions) and key policies. The rules are AWS's policy evaluation logic
(IAM User Guide, "Policy evaluation logic" and "Cross-account policy evaluation logic"):

- an explicit ``Deny`` that matches wins: in an identity policy, or in a resource or key
  policy statement that applies to the caller: naming it, its account (``:root`` or the
  account id; a Deny on the account reaches every role in it), everyone, or every principal
  but those its ``NotPrincipal`` names;
- a role is allowed in its own account by its identity policies, or by a resource policy
  statement naming the role itself (naming only the account leaves the decision to IAM);
- a role calling a resource of another account needs both: the resource policy must allow
  the role or its account, and the role's identity policies must allow the call;
- a service principal (``events.amazonaws.com``, ``cloudwatch.amazonaws.com``) is allowed
  only by a resource policy; a resource without one denies it;
- a KMS key is usable only if its key policy allows the principal directly, or names the
  account (``:root``) and the role's identity policies allow it too; an identity-policy
  Deny wins over the key policy too (AWS KMS Developer Guide, "Key policies": "Explicit
  denies in any policy override allows"). A key the template names only by ARN has the key
  policy the user declares (``LocalPipeline(key_policies=...)``), else AWS's default key
  policy (:func:`default_key_policy`): the account's IAM policies decide, no service may.

``NotPrincipal`` with ``Deny`` (IAM User Guide, "AWS JSON policy elements: NotPrincipal"):
a role is spared only when the element names both the role and its account; naming the
role alone "might deny access to the entire account containing the principal", and the
harness takes the strict reading. With ``Allow`` it applies to everyone it does not name.
Accounts are kept apart: a resource's account is read from its ARN (S3 buckets, whose ARNs
have none, are the stack's account unless ``owners`` says otherwise).

Conditions are evaluated for the operators the pipeline's templates use (``String*``,
``Arn*``, ``Numeric*``, ``Bool``, ``Null``, with ``IfExists``); any other operator raises
:class:`UnsupportedPolicyError` instead of being guessed. What is not modelled: permission
boundaries, SCPs, session policies, session names (a role's sessions are the role).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .._template import ACCOUNT, REGION, Resolver

ROOT = f"arn:aws:iam::{ACCOUNT}:root"
_TRANSPORT = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
"""Every emulated call comes over TLS 1.3, as the SDKs' calls do."""


class UnsupportedPolicyError(ValueError):
    """A policy uses something the evaluator does not model: failing beats guessing."""


class AccessDeniedError(PermissionError):
    """A call the synthesized policies do not allow."""

    def __init__(self, principal: Principal, action: str, resource: str, why: str) -> None:
        self.principal = principal
        self.action = action
        self.resource = resource
        super().__init__(
            f"User: {principal.arn} is not authorized to perform: {action} on resource: "
            f"{resource} because {why}"
        )


@dataclass(frozen=True)
class Principal:
    """Who calls: a role (by ARN) or an AWS service principal."""

    arn: str
    service: Optional[str] = None

    @classmethod
    def for_service(cls, service: str) -> Principal:
        return cls(arn=service, service=service)


@dataclass
class Policies:
    """The template's policies, resolved against the emulated names."""

    identity: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Role ARN -> its identity statements."""
    resource: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Resource ARN (bucket, queue, topic, function) -> its resource-policy statements."""
    keys: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Key ARN -> its key-policy statements."""
    owners: dict[str, str] = field(default_factory=dict)
    """Resource ARN -> its account, where the ARN does not say (S3 buckets); default: ours."""
    renames: tuple[tuple[str, str], ...] = ()
    """(the stack's account or region, the emulation's): applied to the policies' text, and
    to an ARN the template spells itself (a key imported by ARN) before it is evaluated."""
    imported_keys: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Key ARN -> the key-policy statements of a key the template names only by ARN (its
    policy is not in the template): what the user says it is (``LocalPipeline``'s
    ``key_policies``); a key not listed here has AWS's default key policy."""
    checked: list[tuple[str, str, str, bool]] = field(default_factory=list)
    """Every evaluation: (principal, action, resource, allowed), for tests and debugging."""

    @classmethod
    def from_template(
        cls,
        resources: Mapping[str, Any],
        resolver: Resolver,
        *,
        stack_account: Optional[str] = None,
        stack_region: Optional[str] = None,
    ) -> Policies:
        renames = tuple(
            (theirs, ours)
            for theirs, ours in ((stack_account, ACCOUNT), (stack_region, REGION))
            if theirs and theirs != ours
        )
        policies = cls(renames=renames)

        def resolve(value: Any) -> Any:
            resolved = resolver.resolve(value)
            # ARNs the template spells with its own account and region name emulated ones.
            return json.loads(policies._renamed(json.dumps(resolved)))

        for logical_id, resource in resources.items():
            kind = resource.get("Type")
            props = resource.get("Properties", {})
            if kind == "AWS::IAM::Policy":
                statements = _statements(resolve(props["PolicyDocument"]))
                for role in props.get("Roles", []):
                    role_arn = resolver.get_att(_ref(role), "Arn")
                    policies.identity.setdefault(role_arn, []).extend(statements)
            elif kind == "AWS::IAM::Role":
                role_arn = resolver.get_att(logical_id, "Arn")
                policies.identity.setdefault(role_arn, [])
                for inline in props.get("Policies", []):
                    policies.identity[role_arn].extend(
                        _statements(resolve(inline["PolicyDocument"]))
                    )
                if props.get("ManagedPolicyArns"):
                    # AWS managed policies are not in the template: treat them as unknown.
                    policies.identity[role_arn].append({"_managed": props["ManagedPolicyArns"]})
            elif kind == "AWS::S3::BucketPolicy":
                bucket = f"arn:aws:s3:::{resolve(props['Bucket'])}"
                policies.resource.setdefault(bucket, []).extend(
                    _statements(resolve(props["PolicyDocument"]))
                )
            elif kind in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
                targets = props.get("Queues") or props.get("Topics") or []
                for target in resolve(targets):
                    arn = _queue_arn(str(target)) if kind == "AWS::SQS::QueuePolicy" else target
                    policies.resource.setdefault(str(arn), []).extend(
                        _statements(resolve(props["PolicyDocument"]))
                    )
            elif kind == "AWS::KMS::Key":
                key_arn = resolver.get_att(logical_id, "Arn")
                policies.keys[key_arn] = _statements(resolve(props.get("KeyPolicy", {})))
            elif kind == "AWS::Lambda::Permission":
                function = str(resolve(props["FunctionName"]))
                policies.resource.setdefault(function, []).append(
                    _permission_statement(props, function, resolve)
                )
        return policies

    # ---------------------------------------------------------------- evaluation

    def allows(
        self,
        principal: Principal,
        action: str,
        resource: str,
        context: Optional[Mapping[str, Any]] = None,
        *,
        resource_policy_of: Optional[str] = None,
    ) -> tuple[bool, str]:
        """Whether ``principal`` may ``action`` on ``resource``, and why not.

        ``resource_policy_of`` names the resource whose policy applies when it is not
        ``resource`` itself (an object's bucket).
        """
        context = {**_TRANSPORT, **(context or {})}
        owner = resource_policy_of or resource
        return self._decide(
            principal,
            action,
            resource,
            context,
            self.resource.get(owner, []),
            cross_account=self._cross_account(principal, owner),
            policy_kind="resource",
        )

    def key_allows(
        self, principal: Principal, action: str, key_arn: str, context: Mapping[str, Any]
    ) -> tuple[bool, str]:
        """KMS: the key policy decides; naming the account root lets IAM policies decide."""
        key_arn = self._renamed(key_arn)
        statements = self.keys.get(key_arn)
        if statements is None:  # a key imported by ARN: its policy is not in the template
            statements = self.imported_keys.get(key_arn) or default_key_policy(key_arn)
        context = {**_TRANSPORT, "kms:CallerAccount": ACCOUNT, **context}
        return self._decide(
            principal,
            action,
            key_arn,
            context,
            statements,
            cross_account=self._cross_account(principal, key_arn),
            policy_kind="key",
        )

    def _decide(
        self,
        principal: Principal,
        action: str,
        resource: str,
        context: Mapping[str, Any],
        resource_statements: list[dict[str, Any]],
        *,
        cross_account: bool,
        policy_kind: str,
    ) -> tuple[bool, str]:
        """AWS's order: any applicable explicit Deny, then the Allows each case needs."""
        identity = self._identity_statements(principal)
        scoped = [
            (kind, statement)
            for statement in resource_statements
            if (kind := _principal_match(statement, principal)) is not None
        ]
        if any(_matches(s, "Deny", action, resource, context) for s in identity):
            return False, "an explicit deny in an identity-based policy"
        if any(_matches(s, "Deny", action, resource, context) for _, s in scoped):
            return False, f"an explicit deny in the {policy_kind} policy"
        allowing = {kind for kind, s in scoped if _matches(s, "Allow", action, resource, context)}
        by_identity = any(_matches(s, "Allow", action, resource, context) for s in identity)
        if principal.service is not None:
            if "node" in allowing:
                return True, ""
            return False, f"no {policy_kind} policy allows the {action} action"
        if cross_account:
            if not allowing:
                return False, f"the {policy_kind} policy of another account does not allow it"
            if not by_identity:
                return False, f"no identity-based policy allows the {action} action"
            return True, ""
        if "node" in allowing:
            return True, ""
        if policy_kind == "key" and "account" not in allowing:
            # KMS: without a key policy statement for the principal or its account, no IAM
            # policy can grant the key (AWS KMS Developer Guide, "Key policies").
            return False, "the key policy does not allow it"
        if by_identity:
            return True, ""
        return False, f"no identity-based policy allows the {action} action"

    def _identity_statements(self, principal: Principal) -> list[dict[str, Any]]:
        identity = self.identity.get(principal.arn, []) if principal.service is None else []
        for statement in identity:
            if "_managed" in statement:
                raise UnsupportedPolicyError(
                    f"role {principal.arn} has AWS managed policies {statement['_managed']}: "
                    "their statements are not in the template"
                )
        return identity

    def _cross_account(self, principal: Principal, resource: str) -> bool:
        """Whether a role calls a resource of another account (services have no account)."""
        if principal.service is not None:
            return False
        owner = _account_of(resource) or self.owners.get(resource, ACCOUNT)
        return (_account_of(principal.arn) or ACCOUNT) != owner

    def declare_key_policy(self, key_arn: str, document: Mapping[str, Any]) -> None:
        """The key policy of a key the template names only by ARN, as the user set it."""
        self.imported_keys[self._renamed(key_arn)] = _statements(
            json.loads(self._renamed(json.dumps(document)))
        )

    def _renamed(self, arn: str) -> str:
        for theirs, ours in self.renames:
            arn = arn.replace(theirs, ours)
        return arn

    def check(
        self,
        principal: Principal,
        action: str,
        resource: str,
        context: Optional[Mapping[str, Any]] = None,
        *,
        resource_policy_of: Optional[str] = None,
        key: Optional[str] = None,
        key_actions: Iterable[str] = (),
        key_context: Optional[Mapping[str, Any]] = None,
    ) -> None:
        """Raise :class:`AccessDeniedError` unless the call (and its key use, if any) is allowed."""
        allowed, why = self.allows(
            principal, action, resource, context, resource_policy_of=resource_policy_of
        )
        self.checked.append((principal.arn, action, resource, allowed))
        if not allowed:
            raise AccessDeniedError(principal, action, resource, why)
        if key is None:
            return
        for key_action in key_actions:
            allowed, why = self.key_allows(principal, key_action, key, key_context or {})
            self.checked.append((principal.arn, key_action, key, allowed))
            if not allowed:
                raise AccessDeniedError(principal, key_action, key, why)


# -------------------------------------------------------------------- helpers


def _permission_statement(
    props: Mapping[str, Any], function: str, resolve: Callable[[Any], Any]
) -> dict[str, Any]:
    """An ``AWS::Lambda::Permission`` as the resource-policy statement it adds."""
    condition: dict[str, Any] = {}
    if "SourceArn" in props:
        condition["ArnLike"] = {"aws:SourceArn": resolve(props["SourceArn"])}
    if "SourceAccount" in props:
        condition["StringEquals"] = {"aws:SourceAccount": resolve(props["SourceAccount"])}
    principal = str(resolve(props["Principal"]))
    return {
        "Effect": "Allow",
        "Principal": {"Service": principal}
        if principal.endswith(".amazonaws.com")
        else {"AWS": principal},
        "Action": resolve(props["Action"]),
        "Resource": function,
        **({"Condition": condition} if condition else {}),
    }


def _ref(value: Any) -> str:
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    raise UnsupportedPolicyError(f"a policy's role is not a Ref: {value!r}")


def _queue_arn(queue_url_or_arn: str) -> str:
    if queue_url_or_arn.startswith("arn:"):
        return queue_url_or_arn
    name = queue_url_or_arn.rstrip("/").rsplit("/", 1)[-1]
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def _statements(document: Any) -> list[dict[str, Any]]:
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    return [dict(s) for s in (statements if isinstance(statements, list) else [statements])]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _principal_values(
    statement: Mapping[str, Any], element: str = "Principal"
) -> dict[str, list[str]]:
    principal = statement.get(element)
    if principal == "*":
        return {"*": ["*"]}
    if not isinstance(principal, dict):
        return {}
    return {k: [str(v) for v in _as_list(values)] for k, values in principal.items()}


def default_key_policy(key_arn: str) -> list[dict[str, Any]]:
    """AWS's default key policy, which a key created without one gets: "gives the AWS account
    that owns the KMS key full access to the KMS key", which "enables IAM policies in the
    account to allow access" (AWS KMS Developer Guide, "Default key policy"). No service
    principal is named: CloudWatch or EventBridge may not use such a key."""
    account = _account_of(key_arn) or ACCOUNT
    return [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]


def _account_of(arn: str) -> Optional[str]:
    """The account field of an ARN (``arn:partition:service:region:account:...``), if any."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return None
    return parts[4] or None


def _names_account(values: Mapping[str, list[str]], principal: Principal) -> bool:
    """A Principal element naming the role's account: its root ARN or its 12-digit id."""
    account = _account_of(principal.arn)
    if principal.service is not None or account is None:
        return False
    return any(
        value == account or re.fullmatch(rf"arn:[^:]+:iam::{account}:root", value) is not None
        for value in values.get("AWS", [])
    )


def _names_itself(values: Mapping[str, list[str]], principal: Principal) -> bool:
    """A Principal element naming the caller itself: everyone, its service, or its ARN."""
    if "*" in values or "*" in values.get("AWS", []):
        return True
    if principal.service is not None:
        return principal.service in values.get("Service", [])
    return principal.arn in values.get("AWS", [])


def _principal_match(statement: Mapping[str, Any], principal: Principal) -> Optional[str]:
    """Whether a resource or key policy statement applies to the caller, and how:
    ``"node"`` (it names the caller itself, everyone, or everyone but others),
    ``"account"`` (it names the caller's account), or None."""
    if "NotPrincipal" in statement:
        values = _principal_values(statement, "NotPrincipal")
        itself, account = _names_itself(values, principal), _names_account(values, principal)
        if principal.service is not None:
            spared = itself
        elif statement.get("Effect") == "Deny":
            spared = itself and account  # both, or the account is denied and the role with it
        else:
            spared = itself or account
        return None if spared else "node"
    values = _principal_values(statement)
    if _names_itself(values, principal):
        return "node"
    if _names_account(values, principal):
        return "account"
    return None


def _glob(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, value, flags) is not None


def _matches(
    statement: Mapping[str, Any],
    effect: str,
    action: str,
    resource: str,
    context: Mapping[str, Any],
) -> bool:
    if statement.get("Effect") != effect:
        return False
    if "Action" in statement:
        if not any(_glob(a, action, case_sensitive=False) for a in _as_list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(_glob(a, action, case_sensitive=False) for a in _as_list(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement and not _any_glob(statement["Resource"], resource):
        return False
    if "NotResource" in statement and _any_glob(statement["NotResource"], resource):
        return False
    return _conditions_hold(statement.get("Condition", {}), context)


def _any_glob(patterns: Any, value: str) -> bool:
    return any(_glob(str(p), value, case_sensitive=True) for p in _as_list(patterns))


def _string_like(value: str, pattern: str) -> bool:
    """IAM's wildcards are ``*`` and ``?`` only: ``[ab]`` is two brackets and two letters,
    not fnmatch's character class."""
    return _glob(pattern, value, case_sensitive=True)


_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda v, c: v == c,
    "StringNotEquals": lambda v, c: v != c,
    "StringEqualsIgnoreCase": lambda v, c: v.lower() == c.lower(),
    "StringNotEqualsIgnoreCase": lambda v, c: v.lower() != c.lower(),
    "StringLike": _string_like,
    "StringNotLike": lambda v, c: not _string_like(v, c),
    "ArnEquals": lambda v, c: _glob(c, v, case_sensitive=True),
    "ArnLike": lambda v, c: _glob(c, v, case_sensitive=True),
    "ArnNotEquals": lambda v, c: not _glob(c, v, case_sensitive=True),
    "ArnNotLike": lambda v, c: not _glob(c, v, case_sensitive=True),
    "Bool": lambda v, c: v.lower() == c.lower(),
    "NumericEquals": lambda v, c: float(v) == float(c),
    "NumericNotEquals": lambda v, c: float(v) != float(c),
    "NumericLessThan": lambda v, c: float(v) < float(c),
    "NumericLessThanEquals": lambda v, c: float(v) <= float(c),
    "NumericGreaterThan": lambda v, c: float(v) > float(c),
    "NumericGreaterThanEquals": lambda v, c: float(v) >= float(c),
}
_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
    "NumericNotEquals",
}
"""Operators that hold when the key is missing and must hold for every value given."""


def _conditions_hold(conditions: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    # Condition key names are case-insensitive in IAM (aws:SourceArn = aws:sourcearn).
    by_name = {str(k).lower(): v for k, v in context.items()}
    for raw_operator, checks in conditions.items():
        operator = raw_operator.removesuffix("IfExists")
        if_exists = raw_operator.endswith("IfExists")
        for key, wanted in checks.items():
            actual = by_name.get(str(key).lower())
            if operator == "Null":
                if (actual is None) != (str(wanted).lower() == "true"):
                    return False
                continue
            if operator not in _OPERATORS:
                raise UnsupportedPolicyError(f"condition operator {raw_operator} is not modelled")
            if actual is None:
                if if_exists or operator in _NEGATED:
                    continue
                return False
            wanted_values = [str(w) for w in _as_list(wanted)]
            compare = _OPERATORS[operator]
            if operator in _NEGATED:
                if not all(compare(str(actual), w) for w in wanted_values):
                    return False
            elif not any(compare(str(actual), w) for w in wanted_values):
                return False
    return True

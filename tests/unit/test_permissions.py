"""The offline IAM evaluator: AWS's rules for one account, on small policies."""

from __future__ import annotations

from typing import Any

import pytest

from event_driven_etl.testing._iam import (
    ROOT,
    AccessDeniedError,
    Policies,
    Principal,
    UnsupportedPolicyError,
)

ROLE = Principal("arn:aws:iam::123456789012:role/worker")
EVENTS = Principal.for_service("events.amazonaws.com")
BUCKET = "arn:aws:s3:::data"
KEY = "arn:aws:kms:us-east-1:123456789012:key/k"


def _allow(action: str, resource: str, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_identity_policy_allows_by_action_and_resource_pattern() -> None:
    policies = Policies(identity={ROLE.arn: [_allow("s3:GetObject*", f"{BUCKET}/in/*")]})
    policies.check(ROLE, "s3:GetObject", f"{BUCKET}/in/a.csv", resource_policy_of=BUCKET)
    with pytest.raises(AccessDeniedError, match=r"s3:GetObject on resource: .*out/a.csv"):
        policies.check(ROLE, "s3:GetObject", f"{BUCKET}/out/a.csv", resource_policy_of=BUCKET)


def test_fails_an_explicit_deny_over_an_allow() -> None:
    deny = {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:*",
        "Resource": f"{BUCKET}/*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    policies = Policies(identity={ROLE.arn: [_allow("s3:*", "*")]}, resource={BUCKET: [deny]})
    policies.check(ROLE, "s3:PutObject", f"{BUCKET}/a", resource_policy_of=BUCKET)  # over TLS
    with pytest.raises(AccessDeniedError, match="explicit deny"):
        policies.check(
            ROLE,
            "s3:PutObject",
            f"{BUCKET}/a",
            {"aws:SecureTransport": "false"},
            resource_policy_of=BUCKET,
        )


def test_fails_a_service_principal_outside_its_source_arn() -> None:
    queue = "arn:aws:sqs:us-east-1:123456789012:q"
    rule = "arn:aws:events:us-east-1:123456789012:rule/mine"
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule}},
    }
    policies = Policies(resource={queue: [statement]})
    policies.check(EVENTS, "sqs:SendMessage", queue, {"aws:SourceArn": rule})
    with pytest.raises(AccessDeniedError, match="no resource policy"):
        policies.check(EVENTS, "sqs:SendMessage", queue, {"aws:SourceArn": rule + "-other"})


def test_a_key_policy_naming_the_account_lets_iam_decide() -> None:
    root = {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}
    with_iam = Policies(identity={ROLE.arn: [_allow("kms:Decrypt", KEY)]}, keys={KEY: [root]})
    assert with_iam.key_allows(ROLE, "kms:Decrypt", KEY, {})[0]
    without_iam = Policies(identity={ROLE.arn: []}, keys={KEY: [root]})
    assert not without_iam.key_allows(ROLE, "kms:Decrypt", KEY, {})[0]
    # A service is never allowed through the account root: the key policy must name it.
    assert not with_iam.key_allows(EVENTS, "kms:Decrypt", KEY, {})[0]


def test_fails_a_condition_operator_it_does_not_model() -> None:
    policies = Policies(
        identity={ROLE.arn: [_allow("s3:GetObject", "*", Condition={"IpAddress": {"x": "y"}})]}
    )
    with pytest.raises(UnsupportedPolicyError, match="IpAddress"):
        policies.check(ROLE, "s3:GetObject", f"{BUCKET}/a")


def test_negated_operators_hold_when_the_key_is_missing() -> None:
    deny = {
        "Effect": "Deny",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": "*",
        "Condition": {"ArnNotEquals": {"aws:SourceArn": "arn:aws:events:::rule/mine"}},
    }
    allow = {**deny, "Effect": "Allow", "Condition": {}}
    policies = Policies(resource={"q": [allow, deny]})
    with pytest.raises(AccessDeniedError, match="explicit deny"):
        policies.check(EVENTS, "sqs:SendMessage", "q")


def _events_allowed_by(condition: dict[str, Any], context: dict[str, Any]) -> bool:
    allow = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": "*",
        "Condition": condition,
    }
    try:
        Policies(resource={"q": [allow]}).check(EVENTS, "sqs:SendMessage", "q", context)
    except AccessDeniedError:
        return False
    return True


def test_condition_keys_are_matched_case_insensitively_as_iam_does() -> None:
    rule = "arn:aws:events:us-east-1:123456789012:rule/mine"
    assert _events_allowed_by({"ArnEquals": {"aws:SourceArn": rule}}, {"aws:sourcearn": rule})
    assert _events_allowed_by({"ArnEquals": {"AWS:SOURCEARN": rule}}, {"aws:SourceArn": rule})


def test_string_like_has_no_character_classes() -> None:
    """IAM's wildcards are * and ?: "[ab]" matches only the four characters "[ab]"."""
    assert _events_allowed_by({"StringLike": {"k": "x-[ab]"}}, {"k": "x-[ab]"})
    assert not _events_allowed_by({"StringLike": {"k": "x-[ab]"}}, {"k": "x-a"})
    assert _events_allowed_by({"StringLike": {"k": "x-?*"}}, {"k": "x-abc"})


def test_numeric_not_equals_is_negated_like_the_other_not_operators() -> None:
    """A missing key satisfies NumericNotEquals; a present one must differ from every value."""
    condition = {"NumericNotEquals": {"n": ["1", "2"]}}
    assert _events_allowed_by(condition, {})
    assert _events_allowed_by(condition, {"n": "3"})
    assert not _events_allowed_by(condition, {"n": "2"})

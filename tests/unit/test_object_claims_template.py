"""The job learns the output key's ARN (``--output_kms_key_arn``) when there is one: its
object marks are boto3 puts, outside the security configuration, and name the key
themselves (SSE-KMS)."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from aws_cdk import Duration, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms

from event_driven_etl import Batching, EventDrivenEtlPipeline
from event_driven_etl._contract import (
    BATCH_LOCKS_DIR,
    DEFAULT_OUTPUT_PREFIX,
    JOB_TIMEOUT_ARGUMENT,
    OUTPUT_KMS_KEY_ARGUMENT,
)
from event_driven_etl.testing._iam import AccessDeniedError, Principal
from event_driven_etl.testing._template import ACCOUNT, REGION
from tests.helpers import evaluated_policies, logical_id, only_resource, template_of


def _job_arguments(stack: Stack) -> dict[str, Any]:
    job = only_resource(template_of(stack), "AWS::Glue::Job")
    return dict(job["Properties"]["DefaultArguments"])


def test_a_customer_key_is_passed_to_the_job_for_its_marks(stack: Stack) -> None:
    key = kms.Key(stack, "CustomerKey")
    EventDrivenEtlPipeline(stack, "Pipeline", encryption_key=key, batching=Batching())
    key_id = stack.get_logical_id(key.node.default_child)  # type: ignore[arg-type]  # CfnKey
    assert _job_arguments(stack)[OUTPUT_KMS_KEY_ARGUMENT] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_without_an_output_key_the_job_has_no_key_argument(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline", batching=Batching())
    assert OUTPUT_KMS_KEY_ARGUMENT not in _job_arguments(stack)


def test_the_job_learns_its_timeout_for_its_claims_lease(stack: Stack) -> None:
    # A claim older than the job's timeout (plus margins) belongs to no run still going.
    EventDrivenEtlPipeline(stack, "Pipeline", batching=Batching())
    assert _job_arguments(stack)[JOB_TIMEOUT_ARGUMENT] == "60"  # the default: 1 hour


def test_a_given_job_timeout_reaches_the_job(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline", batching=Batching(), job_timeout=Duration.hours(3))
    assert _job_arguments(stack)[JOB_TIMEOUT_ARGUMENT] == "180"


def test_the_job_role_may_take_and_free_a_batch_lock(stack: Stack) -> None:
    # The lock is put (a conditional create, then conditional replaces) and read under the
    # output's _runs/, which the role writes already: no new permission, nothing wider.
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", batching=Batching())
    policies, resolver = evaluated_policies(stack)
    role = Principal(str(resolver.get_att(logical_id(pipeline.glue_job.role), "Arn")))
    bucket = str(resolver.get_att(logical_id(pipeline.output_bucket), "Arn"))
    lock = f"{bucket}/{DEFAULT_OUTPUT_PREFIX}{BATCH_LOCKS_DIR}/batch-1.json"
    for action in ("s3:PutObject", "s3:GetObject"):
        policies.check(role, action, lock, resource_policy_of=bucket)
    with pytest.raises(AccessDeniedError):
        policies.check(
            role, "s3:PutObject", f"{bucket}/elsewhere/lock.json", resource_policy_of=bucket
        )


def _job_run_check(stack: Stack, pipeline: EventDrivenEtlPipeline) -> Callable[[str], None]:
    """Check that the job's role may call glue:GetJobRun on the job named ``name``."""
    policies, resolver = evaluated_policies(stack)
    role = Principal(str(resolver.get_att(logical_id(pipeline.glue_job.role), "Arn")))
    return lambda name: policies.check(
        role, "glue:GetJobRun", f"arn:aws:glue:{REGION}:{ACCOUNT}:job/{name}"
    )


def test_the_job_role_may_read_its_own_job_s_runs_only(stack: Stack) -> None:
    # The built-in script asks Glue whether another run of its batch still goes (batch_run).
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", batching=Batching())
    check = _job_run_check(stack, pipeline)
    _policies, resolver = evaluated_policies(stack)
    check(str(resolver.ref(logical_id(pipeline.glue_job.job))))
    with pytest.raises(AccessDeniedError):
        check("another-job")


def test_fails_a_job_run_lookup_by_a_role_running_its_own_script(stack: Stack) -> None:
    # A script of the user's own has no batch run lease: the role gets no glue:GetJobRun.
    pipeline = EventDrivenEtlPipeline(
        stack, "Pipeline", batching=Batching(), glue_script=glue.Code.from_asset(__file__)
    )
    _policies, resolver = evaluated_policies(stack)
    with pytest.raises(AccessDeniedError):
        _job_run_check(stack, pipeline)(str(resolver.ref(logical_id(pipeline.glue_job.job))))

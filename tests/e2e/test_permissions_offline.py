"""Broken templates fail offline as they would in AWS: each test removes one statement or
setting the pipeline relies on and shows what AWS would show."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from aws_cdk import App, Stack

from event_driven_etl import Batching, EventDrivenEtlPipeline
from event_driven_etl._contract import BATCH_RUNS_DIR, DEFAULT_OUTPUT_PREFIX
from event_driven_etl.testing import LocalPipeline
from event_driven_etl.testing._observation import GlueRun
from event_driven_etl.testing._template import StackTemplate, load_from_assembly

from .offline import CSV
from .offline import offline as _local
from .offline import synthesized as _template


def _role_statements(template: StackTemplate, role_fragment: str) -> list[dict[str, Any]]:
    """The inline statements of the role whose logical id contains ``role_fragment``."""
    found: list[dict[str, Any]] = []
    for resource in template.template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        if role_fragment in json.dumps(resource["Properties"]["Roles"]):
            found += resource["Properties"]["PolicyDocument"]["Statement"]
    assert found, f"no policy for a role like {role_fragment}"
    return found


def _remove_statements(
    template: StackTemplate, role_fragment: str, matches: Callable[[dict[str, Any]], bool]
) -> int:
    removed = 0
    for resource in template.template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        if role_fragment not in json.dumps(resource["Properties"]["Roles"]):
            continue
        statements = resource["Properties"]["PolicyDocument"]["Statement"]
        kept = [s for s in statements if not matches(s)]
        removed += len(statements) - len(kept)
        resource["Properties"]["PolicyDocument"]["Statement"] = kept
    assert removed, f"nothing removed from {role_fragment}"
    return removed


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return action if isinstance(action, list) else [action]


def _resource_of_type(template: StackTemplate, kind: str, fragment: str = "") -> dict[str, Any]:
    [resource] = [
        r
        for logical_id, r in template.template["Resources"].items()
        if r["Type"] == kind and fragment in logical_id
    ]
    return dict(resource)


def test_the_unbroken_template_runs_and_every_call_was_checked(tmp_path: Path) -> None:
    with _local(_template(tmp_path)) as local:
        local.put_object("in/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED"
        actions = {action for _who, action, _what, allowed in local.policies.checked if allowed}
        assert {
            "states:StartExecution",  # the trigger
            "lambda:InvokeFunction",  # EventBridge
            "glue:StartJobRun",  # the workflow
            "s3:GetObject",  # the Glue job and the workflow's run report
            "sns:Publish",
            "kms:GenerateDataKey",
        } <= actions


def test_fails_a_glue_role_without_read_on_the_source(tmp_path: Path) -> None:
    template = _template(tmp_path)
    source = next(
        lid for lid in template.template["Resources"] if lid.startswith("PipelineSourceBucket")
    )
    _remove_statements(
        template,
        "GlueJobRole",
        lambda s: "s3:GetObject*" in _actions(s) and source in json.dumps(s["Resource"]),
    )
    with _local(template) as local:
        local.put_object("in/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        [glue_run] = local.glue_runs
        assert glue_run.status == "FAILED"
        assert "s3:GetObject" in (glue_run.error_message or "")
        assert f"arn:aws:s3:::{local.source_bucket}/in/a.csv" in (glue_run.error_message or "")
        [note] = local.notifications
        assert note["status"] == "FAILED" and "in/a.csv" in note["cause"]


def test_fails_a_source_bucket_policy_denying_the_account_reaching_the_glue_role(
    tmp_path: Path,
) -> None:
    """A Deny naming the account (its root ARN) in a resource policy reaches every role of
    that account (IAM User Guide, Policy evaluation logic): the Glue run cannot read."""
    template = _template(tmp_path)
    [policy] = [
        r
        for logical_id, r in template.template["Resources"].items()
        if r["Type"] == "AWS::S3::BucketPolicy" and logical_id.startswith("PipelineSourceBucket")
    ]
    bucket_arn = policy["Properties"]["PolicyDocument"]["Statement"][0]["Resource"][0]
    policy["Properties"]["PolicyDocument"]["Statement"].append(
        {
            "Effect": "Deny",
            "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
            "Action": "s3:GetObject",
            "Resource": {"Fn::Join": ["", [bucket_arn, "/*"]]},
        }
    )
    with _local(template) as local:
        local.put_object("in/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        [glue_run] = local.glue_runs
        assert "explicit deny in the resource policy" in (glue_run.error_message or "")


def test_fails_a_topic_without_any_policy_delivering_no_alarm(tmp_path: Path) -> None:
    """A service principal calling a resource that has no resource policy is denied: nothing
    grants CloudWatch (a service principal) anything through IAM."""
    template = _template(tmp_path)
    resources = template.template["Resources"]
    [policy_id] = [i for i, r in resources.items() if r["Type"] == "AWS::SNS::TopicPolicy"]
    del resources[policy_id]
    with _local(template) as local:
        assert local.fire_alarm("ExecutionsFailedAlarm") is False
        assert local.notifications == []


def test_fails_a_glue_role_without_read_on_manifests_for_a_large_batch(tmp_path: Path) -> None:
    template = _template(tmp_path, batching=Batching(max_batch_size=100))
    _remove_statements(
        template, "GlueJobRole", lambda s: "manifests/*" in json.dumps(s.get("Resource"))
    )
    long_dir = "/".join(["a-rather-long-folder-name"] * 38)  # too many bytes to pass inline
    with _local(template) as local:
        for i in range(70):
            local.put_object(f"in/{long_dir}/{i:02}.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.manifest  # the batch went as a manifest ...
        assert run.status == "FAILED"  # ... which the job may not read
        assert "manifests/" in (local.glue_runs[0].error_message or "")


@pytest.mark.spark
def test_fails_a_glue_role_without_catalog_access_naming_the_table(tmp_path: Path) -> None:
    template = _template(tmp_path, catalog_table_name="orders")
    _remove_statements(template, "GlueJobRole", lambda s: "glue:GetTable" in _actions(s))
    with LocalPipeline(template, "/E2E/Pipeline") as local:  # the built-in script, on Spark
        local.put_object("in/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        [glue_run] = local.glue_runs
        message = glue_run.error_message or ""
        assert "AccessDeniedException" in message and "glue:GetTable" in message
        assert local.catalog_database
        with pytest.raises(Exception, match="EntityNotFound"):  # nothing was created
            local.catalog_table_definition()
        # The schema is settled before any data is written: only the run's report is.
        assert [k for k in local.output_keys() if "/_" not in k] == []


def test_a_scripts_own_clients_act_as_the_job_role(tmp_path: Path) -> None:
    seen: list[str] = []

    def script(_script: Path, arguments: dict[str, str]) -> None:
        glue = boto3.client("glue", region_name="us-east-1")
        glue.get_database(Name=arguments["--catalog_database"])  # granted
        seen.append("get_database")
        glue.delete_database(Name=arguments["--catalog_database"])  # never granted

    template = _template(tmp_path, catalog_table_name="orders")
    with LocalPipeline(template, "/E2E/Pipeline", glue_runner=script) as local:
        local.put_object("in/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert seen == ["get_database"]
        assert run.status == "FAILED"
        assert "glue:DeleteDatabase" in (local.glue_runs[0].error_message or "")


def test_concurrent_runs_each_keep_their_role_clients_until_they_end(tmp_path: Path) -> None:
    from event_driven_etl.testing._glue_emulation import _SCRIPT_THREADS

    arrived: list[str] = []
    both_running = threading.Barrier(2, timeout=60)
    kinds: list[str] = []

    def script(_script: Path, arguments: dict[str, str]) -> None:
        arrived.append(arguments["--objects"])
        both_running.wait()
        if arguments["--objects"] == arrived[0]:
            return  # the first script ends (its clients unpatched) while the second runs ...
        deadline = time.monotonic() + 60  # wait on state: the first one's patch is gone
        while len(_SCRIPT_THREADS) > 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(_SCRIPT_THREADS) == 1
        kinds.append(type(boto3.client("glue", region_name="us-east-1")).__name__)

    with LocalPipeline(_template(tmp_path), "/E2E/Pipeline", glue_runner=script) as local:
        local.deliver_immediately = False
        local.put_object("in/a.csv", CSV)
        local.put_object("in/b.csv", CSV)
        local.flush()
        local.wait_for_runs(timeout=120)
    assert kinds == ["RoleClient"]  # ... and the second's clients are still its role's
    assert type(boto3.client("glue", region_name="us-east-1")).__name__ != "RoleClient"


@pytest.mark.parametrize("broken", [False, True], ids=["as_synthesized", "no_start_execution"])
def test_the_job_state_rule_starts_the_notifier_only_with_its_role(
    tmp_path: Path, broken: bool
) -> None:
    template = _template(tmp_path)
    if broken:
        _remove_statements(template, "JobStateNotifierStateMachineEventsRole", lambda s: True)
    with _local(template) as local:
        local.fail_next_glue_run("BadData", "started by hand")
        local.run_glue_job_directly({"--objects": "[]"})
        local.wait_for_runs(timeout=300)
        notes = [n for n in local.notifications if n["source"] == "glue-job-state-change"]
        assert len(notes) == (0 if broken else 1)
        assert len(local.lost_events) == (1 if broken else 0)


def test_fails_a_trigger_without_start_execution_to_the_dead_letter_queue(
    tmp_path: Path,
) -> None:
    template = _template(tmp_path)
    _remove_statements(template, "TriggerRole", lambda s: "states:StartExecution" in _actions(s))
    with _local(template) as local:
        local.put_object("in/a.csv", CSV)
        assert local.wait_for_runs(timeout=300) == []  # nothing started
        [dead] = local.dead_letters()
        assert "AccessDeniedException" in json.dumps(dead["responsePayload"])
        assert dead["requestPayload"]["detail"]["object"]["key"] == "in/a.csv"


@pytest.mark.parametrize("missing", ["sns:Publish", "kms"])
def test_fails_a_workflow_that_may_not_publish_without_a_notification(
    tmp_path: Path, missing: str
) -> None:
    template = _template(tmp_path)
    _remove_statements(
        template,
        "WorkflowStateMachineRole",
        lambda s: any(a.startswith(missing) for a in _actions(s)),
    )
    with _local(template) as local:
        local.put_object("in/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        expected = (
            "SNS.AuthorizationErrorException"
            if missing == "sns:Publish"
            else "SNS.KMSAccessDeniedException"
        )
        assert run.error == expected  # the publish of the FAILED notification failed too
        assert "is not authorized to perform" in (run.cause or "")
        assert local.notifications == []


def test_fails_a_source_bucket_without_eventbridge_to_start_anything(tmp_path: Path) -> None:
    template = _template(tmp_path)
    [bucket] = [
        r
        for logical_id, r in template.template["Resources"].items()
        if r["Type"] == "AWS::S3::Bucket" and logical_id.startswith("PipelineSourceBucket")
    ]
    bucket["Properties"].pop("NotificationConfiguration", None)
    _drop_bucket_notifications(template)
    with _local(template) as local:
        local.put_object("in/a.csv", CSV)
        assert local.wait_for_runs(timeout=300) == []
        assert local.glue_runs == []


def test_fails_a_brought_bucket_whose_notifications_resource_is_gone(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "E2E")
    from aws_cdk import aws_s3 as s3

    landing = s3.Bucket.from_bucket_name(stack, "Landing", "landing-zone")
    EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="in/", source_bucket=landing)
    template = load_from_assembly(app.synth().directory, "E2E")
    with _local(template) as local:  # as synthesized: CDK's custom resource turns it on
        local.put_object("in/a.csv", CSV)
        assert [r.status for r in local.wait_for_runs(timeout=300)] == ["SUCCEEDED"]
    _drop_bucket_notifications(template)
    with _local(template) as local:
        local.put_object("in/b.csv", CSV)
        assert local.wait_for_runs(timeout=300) == []


def _drop_bucket_notifications(template: StackTemplate) -> None:
    """Remove CDK's bucket-notifications custom resource (EventBridge for a bucket)."""
    resources = template.template["Resources"]
    for logical_id in [
        i for i, r in resources.items() if r["Type"] == "Custom::S3BucketNotifications"
    ]:
        del resources[logical_id]


def _bad_record(local: LocalPipeline) -> None:
    assert local.event_queue_url is not None
    boto3.client("sqs", region_name="us-east-1").send_message(
        QueueUrl=local.event_queue_url, MessageBody='{"not": "an S3 event"}'
    )


def test_a_bad_record_is_dead_lettered_with_report_batch_item_failures(tmp_path: Path) -> None:
    # 5 receives, each after the 30-minute visibility timeout (virtual time).
    with _local(_template(tmp_path, batching=Batching())) as local:
        _bad_record(local)
        local.flush()  # returns once the queue is empty: the redrive moved the record
        [dead] = local.dead_letters()
        assert dead == {"not": "an S3 event"}


def test_fails_a_mapping_without_report_batch_item_failures_losing_the_record(
    tmp_path: Path,
) -> None:
    template = _template(tmp_path, batching=Batching())
    mapping = _resource_of_type(template, "AWS::Lambda::EventSourceMapping")
    del mapping["Properties"]["FunctionResponseTypes"]
    with _local(template) as local:
        _bad_record(local)
        local.flush()
        assert local.dead_letters() == []  # lost: Lambda took the batch as processed
        assert local.wait_for_runs(timeout=300) == []


def test_an_alarm_reaches_the_topic(tmp_path: Path) -> None:
    with _local(_template(tmp_path)) as local:
        assert local.fire_alarm("ExecutionsFailedAlarm") is True
        [message] = local.notifications
        assert message["NewStateValue"] == "ALARM"


def test_fails_a_topic_policy_without_cloudwatch_to_deliver_an_alarm(tmp_path: Path) -> None:
    template = _template(tmp_path)
    policy = _resource_of_type(template, "AWS::SNS::TopicPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    policy["Properties"]["PolicyDocument"]["Statement"] = [
        s for s in statements if s.get("Principal") != {"Service": "cloudwatch.amazonaws.com"}
    ]
    with _local(template) as local:
        assert local.fire_alarm("ExecutionsFailedAlarm") is False
        assert local.notifications == []


def test_fails_loudly_on_a_reference_the_emulation_cannot_resolve(tmp_path: Path) -> None:
    from event_driven_etl.testing._layout import UnresolvableReferenceError

    template = _template(tmp_path)
    function = _resource_of_type(template, "AWS::Lambda::Function", "PipelineTriggerFunction")
    function["Properties"]["Environment"]["Variables"]["EXTRA"] = {"Ref": "SomeParameter"}
    with pytest.raises(UnresolvableReferenceError, match="SomeParameter"), _local(template):
        pass


def _imported_key_template(tmp_path: Path) -> StackTemplate:
    from aws_cdk import aws_kms as kms

    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "E2E")
    key = kms.Key.from_key_arn(stack, "Imported", "arn:aws:kms:us-east-1:123456789012:key/k-1")
    EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="in/", encryption_key=key)
    return load_from_assembly(app.synth().directory, "E2E")


CLOUDWATCH_KEY_STATEMENT = {
    "Effect": "Allow",
    "Principal": {"Service": "cloudwatch.amazonaws.com"},
    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
    "Resource": "*",
}
ACCOUNT_KEY_STATEMENT = {
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "kms:*",
    "Resource": "*",
}


def test_fails_an_imported_key_with_the_default_key_policy_for_cloudwatch(tmp_path: Path) -> None:
    """A key imported by ARN has AWS's default key policy unless told otherwise: the roles'
    IAM grants decide (the run and its notification go through), CloudWatch may not use it
    (AWS KMS Developer Guide, "Default key policy"), so the alarm is not delivered."""
    with _local(_imported_key_template(tmp_path)) as local:
        local.put_object("in/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED" and len(local.notifications) == 1
        assert local.fire_alarm("ExecutionsFailedAlarm") is False


def test_an_imported_key_whose_policy_admits_cloudwatch_delivers_the_alarm(
    tmp_path: Path,
) -> None:
    policy = {"Statement": [ACCOUNT_KEY_STATEMENT, CLOUDWATCH_KEY_STATEMENT]}
    key_policies = {"arn:aws:kms:us-east-1:123456789012:key/k-1": policy}
    with _local(_imported_key_template(tmp_path), key_policies=key_policies) as local:
        assert local.fire_alarm("ExecutionsFailedAlarm") is True


LANDING_KEY = "arn:aws:kms:us-east-1:123456789012:key/landing"


def _brought_encrypted_bucket_template(tmp_path: Path, *, with_key: bool) -> StackTemplate:
    """A pipeline on a bucket brought by name, whose objects are SSE-KMS encrypted with
    ``LANDING_KEY``; ``with_key`` says whether the user told the construct so."""
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3

    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "E2E")
    landing = s3.Bucket.from_bucket_name(stack, "Landing", "landing-zone")
    key = kms.Key.from_key_arn(stack, "LandingKey", LANDING_KEY) if with_key else None
    EventDrivenEtlPipeline(
        stack, "Pipeline", key_prefix="in/", source_bucket=landing, source_bucket_key=key
    )
    return load_from_assembly(app.synth().directory, "E2E")


def test_a_brought_bucket_encrypted_with_its_key_is_read_with_source_bucket_key(
    tmp_path: Path,
) -> None:
    """S3 decrypts an SSE-KMS object for a reader only when the reader may ``kms:Decrypt``
    with the object's key (Amazon S3 User Guide, "Using server-side encryption with AWS KMS
    keys": "you must have permission to use the key"); ``source_bucket_key`` grants it."""
    template = _brought_encrypted_bucket_template(tmp_path, with_key=True)
    with _local(template, bucket_keys={"landing-zone": LANDING_KEY}) as local:
        local.put_object("in/a.csv", CSV)
        assert [r.status for r in local.wait_for_runs(timeout=300)] == ["SUCCEEDED"]
        decrypts = [c for c in local.policies.checked if c[1] == "kms:Decrypt"]
        assert any(c[2] == LANDING_KEY and c[3] for c in decrypts), decrypts


def test_fails_a_brought_encrypted_bucket_without_source_bucket_key(tmp_path: Path) -> None:
    """The same bucket without ``source_bucket_key``: the Glue role may not decrypt its
    objects, so the run fails on its first read, as in AWS (the construct warns at synth)."""
    template = _brought_encrypted_bucket_template(tmp_path, with_key=False)
    with _local(template, bucket_keys={"landing-zone": LANDING_KEY}) as local:
        local.put_object("in/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        [glue_run] = local.glue_runs
        message = str(glue_run.error_message)
        assert "kms:Decrypt" in message and LANDING_KEY in message, message


def _rerun_over_a_lease_left_by_its_first_run(local: LocalPipeline) -> GlueRun:
    """Land a.csv; then, as if the run's driver had been lost before it freed its batch's
    run lease, put the lease back naming that (ended) run, and redrive the batch: its
    new run asks Glue about the holder, as the job's role."""
    local.put_object("in/a.csv", CSV)
    [run] = local.wait_for_runs(timeout=300)
    assert run.status == "SUCCEEDED", run.cause
    [first] = local.glue_runs
    taken = datetime.now(timezone.utc).isoformat()
    lease = {"holder": first.run_id, "state": "held", "taken_at": taken, "lease_seconds": 7200}
    key = f"{DEFAULT_OUTPUT_PREFIX}{BATCH_RUNS_DIR}/{first.arguments['--batch_id']}.json"
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=local.output_bucket, Key=key, Body=json.dumps(lease).encode()
    )
    local.run_glue_job_directly(dict(first.arguments))
    local.wait_for_runs(timeout=300)
    return local.glue_runs[-1]


@pytest.mark.spark
def test_a_run_lease_left_by_an_ended_run_is_taken_over_asking_glue(tmp_path: Path) -> None:
    with LocalPipeline(_template(tmp_path), "/E2E/Pipeline") as local:
        rerun = _rerun_over_a_lease_left_by_its_first_run(local)
        assert rerun.status == "SUCCEEDED", rerun.error_message
        asked = [what for _who, action, what, ok in local.policies.checked if ok]
        job = f"arn:aws:glue:us-east-1:123456789012:job/{local.glue_job_name}"
        assert job in asked
        assert [int(r["id"]) for r in local.read_output_rows()] == [1]


@pytest.mark.spark
def test_fails_a_glue_role_that_may_not_read_its_job_s_runs(tmp_path: Path) -> None:
    template = _template(tmp_path)
    _remove_statements(template, "GlueJobRole", lambda s: _actions(s) == ["glue:GetJobRun"])
    with LocalPipeline(template, "/E2E/Pipeline") as local:
        rerun = _rerun_over_a_lease_left_by_its_first_run(local)
        assert rerun.status == "FAILED"
        message = rerun.error_message or ""
        assert "AccessDenied" in message and "glue:GetJobRun" in message, message

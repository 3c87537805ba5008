"""Away from the defaults, offline runs agree with AWS: the harness models the rules that
decided the outcome there (S3's answer to a missing key, CloudWatch's use of a topic key),
and each test removes the statement the pipeline adds for it and sees AWS's failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from aws_cdk import App, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns

from event_driven_etl import Batching, EventDrivenEtlPipeline
from event_driven_etl.testing._template import StackTemplate, load_from_assembly

from .offline import CSV, offline, synthesized


def _workflow_statements(template: StackTemplate) -> list[dict[str, Any]]:
    [policy] = [
        r
        for logical_id, r in template.template["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy" and "WorkflowStateMachineRole" in logical_id
    ]
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _drop(statements: list[dict[str, Any]], matches: Callable[[dict[str, Any]], bool]) -> None:
    kept = [s for s in statements if not matches(s)]
    assert len(kept) < len(statements), "nothing to remove"
    statements[:] = kept


def _lists_bucket(statement: dict[str, Any]) -> bool:
    return statement.get("Action") == "s3:ListBucket"


# ------------------------------------------------------------------ item 1: the run report


def test_a_run_without_a_report_succeeds_because_the_workflow_may_list_the_bucket(
    tmp_path: Path,
) -> None:
    """Your own script writes no run report: with s3:ListBucket, S3 says NoSuchKey, the
    workflow's catch for it applies, and the run is SUCCEEDED."""
    template = synthesized(tmp_path)
    assert any(_lists_bucket(s) for s in _workflow_statements(template))
    with offline(template) as local:  # no_spark: the run writes no report
        local.put_object("in/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED"
        [note] = local.notifications
        assert note["status"] == "SUCCEEDED"


def test_fails_a_workflow_without_list_bucket_reporting_every_good_run_failed(
    tmp_path: Path,
) -> None:
    """What AWS did before the fix: without s3:ListBucket, S3 answers the missing report
    with AccessDenied, which the NoSuchKey catch does not take."""
    template = synthesized(tmp_path)
    _drop(_workflow_statements(template), _lists_bucket)
    with offline(template) as local:
        local.put_object("in/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        [note] = local.notifications
        assert note["status"] == "FAILED"
        assert "AccessDenied" in note["error"] + note["cause"]


def test_a_scripts_own_read_of_a_missing_key_is_answered_by_its_list_right(
    tmp_path: Path,
) -> None:
    """The Glue script's clients too: NoSuchKey with s3:ListBucket (the job role has it on
    the output bucket), AccessDenied without (the same role on a bucket it may not list)."""
    import boto3
    from botocore.exceptions import ClientError

    seen: dict[str, str] = {}

    def script(_script: Path, arguments: dict[str, str]) -> None:
        output = arguments["--output_path"].removeprefix("s3://").split("/", 1)[0]
        s3 = boto3.client("s3")
        for name, key in (("listed", "processed/_runs/nothing.json"),):
            try:
                s3.get_object(Bucket=output, Key=key)
            except ClientError as error:
                seen[name] = error.response["Error"]["Code"]

    template = synthesized(tmp_path)
    with offline(template, glue_runner=script) as local:
        local.put_object("in/a.csv", CSV)
        local.wait_for_runs(timeout=300)
    assert seen == {"listed": "NoSuchKey"}

    template = synthesized(tmp_path / "denied")
    for resource in template.template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy" or "GlueJobRole" not in json.dumps(
            resource["Properties"]["Roles"]
        ):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement.get("Action")
            if isinstance(actions, list) and "s3:List*" in actions:
                statement["Action"] = [a for a in actions if a != "s3:List*"]
    seen.clear()
    with offline(template, glue_runner=script) as local:
        local.put_object("in/a.csv", CSV)
        local.wait_for_runs(timeout=300)
    assert seen == {"listed": "AccessDenied"}


# ------------------------------------------------------------------ item 2: alarm topic key


def _with_encrypted_alarm_topic(tmp_path: Path, *, same_key: bool) -> StackTemplate:
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "E2E")
    key = kms.Key(stack, "AlertsKey")
    topic = sns.Topic(stack, "Alerts", master_key=key)
    EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        key_prefix="in/",
        alarm_topic=topic,
        encryption_key=key if same_key else None,
    )
    return load_from_assembly(app.synth().directory, "E2E")


def _alerts_key_policy(template: StackTemplate) -> list[dict[str, Any]]:
    [key] = [
        r
        for logical_id, r in template.template["Resources"].items()
        if r["Type"] == "AWS::KMS::Key" and logical_id.startswith("AlertsKey")
    ]
    statements: list[dict[str, Any]] = key["Properties"]["KeyPolicy"]["Statement"]
    return statements


def _cloudwatch(statement: dict[str, Any]) -> bool:
    return statement.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}


def test_an_alarm_reaches_an_encrypted_alarm_topic_you_bring(tmp_path: Path) -> None:
    for same_key in (False, True):
        template = _with_encrypted_alarm_topic(tmp_path / str(same_key), same_key=same_key)
        [statement] = [s for s in _alerts_key_policy(template) if _cloudwatch(s)]
        assert set(statement["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
        with offline(template) as local:
            assert local.fire_alarm("ExecutionsFailedAlarm") is True


def test_fails_an_alarm_topic_key_without_cloudwatch_delivering_nothing(tmp_path: Path) -> None:
    template = _with_encrypted_alarm_topic(tmp_path, same_key=False)
    _drop(_alerts_key_policy(template), _cloudwatch)
    with offline(template) as local:
        assert local.fire_alarm("ExecutionsFailedAlarm") is False
        assert local.notifications == []


# ------------------------------------------------------------------ item 3: EventBridge key


def test_eventbridge_delivers_to_the_encrypted_event_queue_of_a_key_you_bring(
    tmp_path: Path,
) -> None:
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "E2E")
    EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        key_prefix="in/",
        batching=Batching(max_batch_size=5),
        encryption_key=kms.Key(stack, "Key"),
    )
    template = load_from_assembly(app.synth().directory, "E2E")
    with offline(template) as local:
        local.put_object("in/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED"
        assert local.dead_letters() == []

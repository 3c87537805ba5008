"""TableMaintenance in the template: the schedule, the maintenance job's arguments, its role's
permissions, the routing of its failures to the notification topic, and the refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events

from event_driven_etl import EventDrivenEtlPipeline, TableFormat, TableMaintenance, ValidationError
from event_driven_etl._contract import STEP_FUNCTIONS_REDRIVE_WINDOW_SECONDS

from ..helpers import (
    logical_id,
    only_resource,
    policy_statements,
    resources_of_type,
    state_machine_definition,
    template_of,
)


def _iceberg(stack: Stack, **props: Any) -> EventDrivenEtlPipeline:
    return EventDrivenEtlPipeline(
        stack, "Pipeline", catalog_table_name="orders", table_format=TableFormat.ICEBERG, **props
    )


def _maintenance_job(stack: Stack) -> dict[str, Any]:
    jobs = resources_of_type(template_of(stack), "AWS::Glue::Job")
    [job] = [j for i, j in jobs.items() if "TableMaintenance" in i]
    return dict(job)


def test_without_table_maintenance_nothing_is_created(stack: Stack) -> None:
    pipeline = _iceberg(stack)
    template = template_of(stack)
    assert pipeline.table_maintenance_job is None
    assert len(resources_of_type(template, "AWS::Glue::Job")) == 1
    assert resources_of_type(template, "AWS::Glue::Trigger") == {}


def test_the_schedule_starts_the_maintenance_job(stack: Stack) -> None:
    pipeline = _iceberg(
        stack,
        table_maintenance=TableMaintenance(schedule=events.Schedule.cron(minute="30", hour="4")),
    )
    trigger = only_resource(template_of(stack), "AWS::Glue::Trigger")["Properties"]
    assert trigger["Type"] == "SCHEDULED"
    assert trigger["Schedule"] == "cron(30 4 * * ? *)"
    assert trigger["StartOnCreation"] is True
    assert pipeline.table_maintenance_job is not None
    assert trigger["Actions"] == [{"JobName": {"Ref": logical_id(pipeline.table_maintenance_job)}}]


def test_the_default_schedule_is_daily_at_three_utc(stack: Stack) -> None:
    _iceberg(stack, table_maintenance=TableMaintenance())
    trigger = only_resource(template_of(stack), "AWS::Glue::Trigger")["Properties"]
    assert trigger["Schedule"] == "cron(0 3 * * ? *)"


def test_the_job_maintains_the_pipeline_s_table_through_glue_s_iceberg(stack: Stack) -> None:
    _iceberg(stack, table_maintenance=TableMaintenance())
    job = _maintenance_job(stack)["Properties"]
    arguments = job["DefaultArguments"]
    assert arguments["--datalake-formats"] == "iceberg"
    assert "glue_catalog.catalog-impl=org.apache.iceberg.aws.glue.GlueCatalog" in json.dumps(
        arguments["--conf"]
    )
    assert arguments["--catalog_table"] == "orders"
    assert arguments["--snapshot_retention_seconds"] == str(7 * 24 * 3600)
    assert arguments["--orphans_older_than_seconds"] == str(3 * 24 * 3600)
    assert job["MaxRetries"] == 0
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 1}
    assert job["WorkerType"] == "G.1X" and job["NumberOfWorkers"] == 2
    assert job["SecurityConfiguration"]  # the pipeline job's: logs and S3 encrypted
    assert "maintenance_job.py" not in json.dumps(job["Command"])  # an asset, by its hash


def test_compaction_waits_out_every_re_run_of_a_batch(stack: Stack) -> None:
    """Retries within the execution, then a redrive up to 14 days after it stopped: the
    cut-off is twice the workflow timeout plus the redrive window."""
    _iceberg(stack, workflow_timeout=Duration.hours(6), table_maintenance=TableMaintenance())
    arguments = _maintenance_job(stack)["Properties"]["DefaultArguments"]
    expected = 2 * 6 * 3600 + STEP_FUNCTIONS_REDRIVE_WINDOW_SECONDS
    assert arguments["--compact_before_seconds"] == str(expected)


def test_compaction_and_orphan_removal_can_be_turned_off(stack: Stack) -> None:
    _iceberg(
        stack,
        table_maintenance=TableMaintenance(
            compact=False, remove_orphans_older_than=None, snapshot_retention=Duration.days(30)
        ),
    )
    arguments = _maintenance_job(stack)["Properties"]["DefaultArguments"]
    assert "--compact_before_seconds" not in arguments
    assert "--orphans_older_than_seconds" not in arguments
    assert arguments["--snapshot_retention_seconds"] == str(30 * 24 * 3600)


def test_the_maintenance_role_may_rewrite_the_table_s_files_and_commit_only(stack: Stack) -> None:
    _iceberg(stack, table_maintenance=TableMaintenance())
    statements = policy_statements(template_of(stack), "TableMaintenanceRole")
    [writes] = [s for s in statements if s.get("Sid") == "RewriteTableFiles"]
    written = json.dumps(writes["Resource"])
    assert "processed/data/*" in written and "processed/metadata/*" in written
    assert "processed/*" not in written  # never the run reports, marks or staging
    assert writes["Action"] == ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    [catalog] = [s for s in statements if s.get("Sid") == "CommitToTheTable"]
    assert catalog["Action"] == ["glue:GetDatabase", "glue:GetTable", "glue:UpdateTable"]
    assert "/orders" in json.dumps(catalog["Resource"])
    actions = json.dumps([s["Action"] for s in statements])
    assert "glue:CreateTable" not in actions and "glue:DeleteTable" not in actions
    assert '"*"' not in json.dumps([s["Action"] for s in statements])


def test_a_failed_maintenance_run_is_notified_on_the_notification_topic(stack: Stack) -> None:
    pipeline = _iceberg(stack, table_maintenance=TableMaintenance())
    template = template_of(stack)
    rules = resources_of_type(template, "AWS::Events::Rule")
    [rule] = [r for i, r in rules.items() if "TableMaintenance" in i]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Glue Job State Change"]
    assert pattern["detail"]["state"] == ["FAILED", "TIMEOUT", "ERROR"]
    assert pipeline.table_maintenance_job is not None
    assert pattern["detail"]["jobName"] == [{"Ref": logical_id(pipeline.table_maintenance_job)}]
    states = state_machine_definition(template, "TableMaintenanceJobStateNotifier")["States"]
    # No "started by the workflow?" choice: the schedule starts every maintenance run.
    [publish] = states.values()
    assert publish["Resource"].endswith("sns:publish")
    topic = logical_id(pipeline.notification_topic)
    notifier_policy = json.dumps(policy_statements(template, "TableMaintenanceJobStateNotifier"))
    assert topic in notifier_policy
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")
    assert any("TableMaintenanceJobStateNotifierFailedAlarm" in i for i in alarms)


def test_fails_table_maintenance_without_iceberg(stack: Stack) -> None:
    with pytest.raises(ValidationError) as caught:
        EventDrivenEtlPipeline(
            stack,
            "Pipeline",
            table_maintenance=TableMaintenance(),
            alarms="no",  # type: ignore[arg-type]  # the wrong type under test
        )
    message = str(caught.value)
    assert "2 invalid props" in message
    assert "table_maintenance=TableMaintenance(...)" in message
    assert "table_format=TableFormat.ICEBERG" in message
    assert "alarms='no'" in message


def test_fails_table_maintenance_of_the_wrong_type(stack: Stack) -> None:
    with pytest.raises(
        ValidationError, match="table_maintenance='daily': must be a TableMaintenance"
    ):
        _iceberg(stack, table_maintenance="daily")


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"schedule": events.Schedule.rate(Duration.days(1))}, "schedule='rate(1 day)'"),
        ({"schedule": "cron(0 3 * * ? *)"}, "schedule='cron(0 3 * * ? *)': must be an events"),
        (
            {"snapshot_retention": Duration.hours(1)},
            "snapshot_retention=1 hour: must be from 24 hour(s)",
        ),
        ({"remove_orphans_older_than": Duration.hours(12)}, "remove_orphans_older_than="),
        ({"compact": "yes"}, "compact='yes': must be True or False"),
        ({"snapshot_retention": 7}, "snapshot_retention=7: must be an aws_cdk.Duration"),
    ],
)
def test_fails_table_maintenance_values(props: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError, match=r"TableMaintenance") as caught:
        TableMaintenance(**props)
    assert expected in str(caught.value)

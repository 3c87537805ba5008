"""The stacks the compliance tests check: every example, the defaults, and everything on."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Callable

from aws_cdk import App, CfnResource, Duration, Environment, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from event_driven_etl import (
    Batching,
    EventDrivenEtlPipeline,
    RetryPolicy,
    TableFormat,
    TableMaintenance,
)
from event_driven_etl._hygiene import CHECKOV_REASONS

ROOT = Path(__file__).resolve().parents[2]
ENV = Environment(account="111111111111", region="eu-west-1")


def default_stack(app: App) -> Stack:
    stack = Stack(app, "Default", env=ENV)
    EventDrivenEtlPipeline(stack, "Pipeline")
    return stack


def maximal_stack(app: App) -> Stack:
    """Every option on: batching, a customer key, brought bucket and topics, dashboard."""
    stack = Stack(app, "Maximal", env=ENV)
    stack.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
    key = kms.Key(stack, "CustomerKey", enable_key_rotation=True)
    logs_bucket = s3.Bucket(
        stack,
        "AccessLogs",
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        versioned=True,
        removal_policy=RemovalPolicy.RETAIN,
    )
    # The user's own access-log bucket: its exception is the user's to record, as here.
    logs_resource = logs_bucket.node.default_child
    assert isinstance(logs_resource, CfnResource)
    logs_resource.add_metadata(
        "checkov",
        {"skip": [{"id": "CKV_AWS_18", "comment": CHECKOV_REASONS["CKV_AWS_18"]}]},
    )
    raw = s3.Bucket(
        stack,
        "Raw",
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        versioned=True,
        server_access_logs_bucket=logs_bucket,
        server_access_logs_prefix="raw/",
    )
    notifications = sns.Topic(stack, "Notifications", master_key=key, enforce_ssl=True)
    alarms = sns.Topic(stack, "Alarms", master_key=key, enforce_ssl=True)
    EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        source_bucket=raw,
        notification_topic=notifications,
        alarm_topic=alarms,
        encryption_key=key,
        access_logs_bucket=logs_bucket,
        batching=Batching(max_batch_size=500, max_batching_window=Duration.minutes(2)),
        key_prefix="incoming/",
        key_suffix=".csv",
        retry_policy=RetryPolicy(max_attempts=5, retry_failed_runs=True),
        dashboard=True,
        freshness_period=Duration.hours(24),
        include_execution_data=True,
        max_concurrent_runs=20,
        job_run_queuing=True,
    )
    return stack


def quality_stack(app: App) -> Stack:
    """Data quality rules with quarantine: the metrics' permission, alarm and dashboard."""
    stack = Stack(app, "Quality", env=ENV)
    EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        bad_records="quarantine",
        dashboard=True,
        quality_rules='Rules = [ RowCount > 0, IsComplete "id", ColumnValues "n" >= 0 ]',
    )
    return stack


def backfill_stack(app: App) -> Stack:
    """The defaults with a key prefix and suffix, and the backfill (created on first use)."""
    stack = Stack(app, "Backfill", env=ENV)
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="incoming/", key_suffix=".csv")
    pipeline.backfill  # noqa: B018 - created on first use
    return stack


def iceberg_maintenance_stack(app: App) -> Stack:
    """An Iceberg table with its scheduled maintenance, written with a customer key."""
    stack = Stack(app, "IcebergMaintenance", env=ENV)
    key = kms.Key(stack, "CustomerKey", enable_key_rotation=True)
    EventDrivenEtlPipeline(
        stack,
        "Pipeline",
        encryption_key=key,
        table_format=TableFormat.ICEBERG,
        table_maintenance=TableMaintenance(),
    )
    return stack


def _example(name: str) -> Callable[[App], Stack]:
    def build(app: App) -> Stack:
        module = runpy.run_path(str(ROOT / "examples" / name / "app.py"))
        stack: Stack = module["build"](app)
        return stack

    build.__name__ = f"example_{name}"
    return build


CONFIGURATIONS: dict[str, Callable[[App], Stack]] = {
    "default": default_stack,
    "maximal": maximal_stack,
    "quality": quality_stack,
    "backfill": backfill_stack,
    "iceberg_maintenance": iceberg_maintenance_stack,
    **{
        p.parent.name: _example(p.parent.name) for p in sorted((ROOT / "examples").glob("*/app.py"))
    },
}

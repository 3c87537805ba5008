"""Bring your own bucket, topic, script and retry policy."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import App, ArnFormat, Duration, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from event_driven_etl import EventDrivenEtlPipeline, RetryPolicy

HERE = Path(__file__).resolve().parent


class BringYourOwnStack(Stack):
    """An existing raw bucket and ops topic, a custom Spark script, a stricter retry policy."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        raw = s3.Bucket.from_bucket_name(self, "RawBucket", "acme-raw-landing-zone")
        ops_topic = sns.Topic.from_topic_arn(
            self,
            "OpsTopic",
            self.format_arn(
                service="sns",
                resource="data-platform-alerts",
                arn_format=ArnFormat.NO_RESOURCE_NAME,
            ),
        )
        self.pipeline = EventDrivenEtlPipeline(
            self,
            "Pipeline",
            source_bucket=raw,
            notification_topic=ops_topic,
            glue_script=glue.Code.from_asset(str(HERE / "glue" / "orders_job.py")),
            retry_policy=RetryPolicy(
                max_attempts=5, interval=Duration.seconds(20), backoff_rate=1.5
            ),
            key_prefix="orders/",
            key_suffix=".csv",
            pipeline_name="orders-ingest",
        )


def build(app: App) -> BringYourOwnStack:
    return BringYourOwnStack(app, "BringYourOwnEtl")


if __name__ == "__main__":
    app = App()
    build(app)
    app.synth()

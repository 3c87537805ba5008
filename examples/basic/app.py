"""The whole pipeline with every default: `cdk synth` (or `python app.py`) in this folder."""

from __future__ import annotations

from aws_cdk import App, Stack
from constructs import Construct

from event_driven_etl import EventDrivenEtlPipeline


class BasicEtlStack(Stack):
    """One pipeline: objects under incoming/ in a new bucket are landed as Parquet."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.pipeline = EventDrivenEtlPipeline(self, "Pipeline", key_prefix="incoming/")


def build(app: App) -> BasicEtlStack:
    return BasicEtlStack(app, "BasicEtl")


if __name__ == "__main__":
    app = App()
    build(app)
    app.synth()

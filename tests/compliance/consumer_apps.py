"""Consumer apps written as CDK users write them: the pipeline in another stack than its
bucket, in a Stage, in a NestedStack. Run by the tests, also as a script under cdk-nag 2.x:

    PYTHONPATH=.nag2 .venv/bin/python tests/compliance/consumer_apps.py <outdir> <app>
"""

from __future__ import annotations

import sys
from typing import Any, Callable, cast

from aws_cdk import App, Aspects, NestedStack, Stack, Stage, Validations
from aws_cdk import aws_s3 as s3

from event_driven_etl import Batching, EventDrivenEtlPipeline

ENV = {"account": "111111111111", "region": "eu-west-1"}


def cross_stack_bucket(app: App) -> None:
    storage = Stack(app, "Storage", env=ENV)
    bucket = s3.Bucket(
        storage,
        "Landing",
        enforce_ssl=True,
        versioned=True,
        server_access_logs_prefix="access-logs/",
    )
    etl = Stack(app, "Etl", env=ENV)
    EventDrivenEtlPipeline(etl, "Pipeline", source_bucket=bucket, key_prefix="in/")


def in_a_stage(app: App) -> None:
    stage = Stage(app, "Prod", env=ENV)
    EventDrivenEtlPipeline(Stack(stage, "Etl"), "Pipeline", batching=Batching())


def in_a_nested_stack(app: App) -> None:
    parent = Stack(app, "Parent", env=ENV)
    EventDrivenEtlPipeline(NestedStack(parent, "Etl"), "Pipeline", key_prefix="in/")


APPS: dict[str, Callable[[App], None]] = {
    "cross_stack_bucket": cross_stack_bucket,
    "in_a_stage": in_a_stage,
    "in_a_nested_stack": in_a_nested_stack,
}


def cdk_nag_major() -> int:
    """The major version of the cdk-nag this interpreter imports."""
    from importlib.metadata import version

    return int(version("cdk-nag").split(".")[0])


def synth_with_cdk_nag(outdir: str, name: str) -> None:
    """Synthesize one app with the installed cdk-nag's AwsSolutions checks, as its major
    expects them: 3.x as a policy-validation plugin (synth fails on a finding), 2.x as an
    aspect writing ``*-NagReport.csv`` files into ``outdir``."""
    import cdk_nag

    app = App(outdir=outdir)
    APPS[name](app)
    # An app's aspects stop at a Stage: cdk-nag 2 users add it to each stage too.
    roots = [app, *(c for c in app.node.children if isinstance(c, Stage))]
    for root in roots:
        if cdk_nag_major() >= 3:
            Validations.of(root).add_plugins(cdk_nag.AwsSolutionsChecks(root))
        else:  # typed against the 3.x in .venv; 2.x's checks are an aspect with reports
            checks: Any = cast(Any, cdk_nag).AwsSolutionsChecks(reports=True)
            Aspects.of(root).add(checks)
    app.synth()


if __name__ == "__main__":
    synth_with_cdk_nag(sys.argv[1], sys.argv[2])

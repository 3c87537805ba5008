"""Backfill (issue #22): the Distributed Map's settings, least privilege, defaults unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_sns as sns

from event_driven_etl import Backfill, Batching, EventDrivenEtlPipeline, ValidationError
from event_driven_etl._contract import BACKFILL_BATCH_BYTES, MANIFEST_PREFIX
from tests.helpers import (
    policy_statements,
    resources_of_type,
    state_machine_definition,
    template_of,
)


def _backfill(stack: Stack, **props: Any) -> dict[str, Any]:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", **props)
    pipeline.backfill  # noqa: B018 - created on first use
    return state_machine_definition(template_of(stack), "Backfill")


def test_no_backfill_resources_until_it_is_used(stack: Stack) -> None:
    EventDrivenEtlPipeline(stack, "Pipeline")
    assert not [i for i in template_of(stack).to_json()["Resources"] if "Backfill" in i]


def test_the_property_is_one_backfill(stack: Stack) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline")
    assert isinstance(pipeline.backfill, Backfill)
    assert pipeline.backfill is pipeline.backfill


def test_distributed_map_lists_the_given_prefix_of_the_source_bucket(stack: Stack) -> None:
    states = _backfill(stack, key_prefix="incoming/")["States"]
    process = states["Process objects"]
    assert process["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "STANDARD",
    }
    reader = process["ItemReader"]
    assert reader["Resource"].endswith(":states:::s3:listObjectsV2")
    assert reader["Parameters"]["Prefix.$"] == "$.prefix"


def test_batches_are_the_pipeline_s_batch_size_within_the_payload_limit(stack: Stack) -> None:
    process = _backfill(stack, batching=Batching(max_batch_size=250))["States"]["Process objects"]
    assert process["ItemBatcher"] == {
        "MaxItemsPerBatch": 250,
        "MaxInputBytesPerBatch": BACKFILL_BATCH_BYTES,
        "BatchInput": {"reprocess.$": "$.reprocess"},
    }


def test_unbatched_pipelines_backfill_in_batching_s_default_size(stack: Stack) -> None:
    process = _backfill(stack)["States"]["Process objects"]
    assert process["ItemBatcher"]["MaxItemsPerBatch"] == Batching().max_batch_size


def test_concurrency_leaves_half_the_glue_runs_to_live_uploads(stack: Stack) -> None:
    process = _backfill(stack, max_concurrent_runs=10)["States"]["Process objects"]
    assert process["MaxConcurrency"] == 5
    assert process["ToleratedFailurePercentage"] == 10


def test_one_glue_run_still_allows_a_backfill(stack: Stack) -> None:
    process = _backfill(stack, max_concurrent_runs=1, batching=Batching())["States"]
    assert process["Process objects"]["MaxConcurrency"] == 1


def test_each_batch_runs_the_pipeline_workflow_synchronously_on_a_manifest(
    stack: Stack,
) -> None:
    inner = _backfill(stack)["States"]["Process objects"]["ItemProcessor"]["States"]
    assert inner["Anything to process?"]["Choices"][0]["Next"] == "Write manifest"
    write = inner["Write manifest"]
    assert write["Resource"].endswith(":states:::aws-sdk:s3:putObject")
    assert write["Parameters"]["Body.$"] == "States.JsonToString($.batch)"
    assert inner["Batch input"]["Parameters"]["batch"] == {
        "objects.$": "$.selected[*].uri",
        "reprocess.$": "$.BatchInput.reprocess",
    }
    assert MANIFEST_PREFIX in inner["Batch input"]["Parameters"]["manifest_key.$"]
    assert write["Next"] == "Run pipeline workflow"
    run = inner["Run pipeline workflow"]
    assert run["Resource"].endswith(":states:::states:startExecution.sync:2")
    assert run["Parameters"]["Input"]["manifest.$"].startswith("States.Format('s3://{}/{}'")


def test_manifests_are_written_under_the_manifest_prefix_only(stack: Stack) -> None:
    _backfill(stack)
    statements = policy_statements(template_of(stack), "BackfillStateMachineRole")
    [put] = [s for s in statements if s["Action"] == "s3:PutObject"]
    assert f"/{MANIFEST_PREFIX}backfill/*" in json.dumps(put["Resource"])


def test_objects_are_filtered_by_suffix_and_folder_markers_left_out(stack: Stack) -> None:
    inner = _backfill(stack, key_suffix=".csv")["States"]["Process objects"]["ItemProcessor"]
    choices = inner["States"]["Select objects"]["ItemProcessor"]["States"]["Object wanted?"]
    assert choices["Choices"][0]["StringMatches"] == "*/"
    assert choices["Choices"][1]["Not"]["StringMatches"] == "*.csv"


def test_fails_a_prefix_outside_key_prefix(stack: Stack) -> None:
    states = _backfill(stack, key_prefix="incoming/orders/")["States"]
    [allowed] = states["Prefix allowed?"]["Choices"]
    assert allowed["StringMatches"] == "incoming/orders/*"
    assert states["Prefix allowed?"]["Default"] == "Backfill refused"
    assert states["Backfill refused"]["Type"] == "Fail"
    assert states["Backfill refused"]["Error"] == "BackfillInputError"


def test_fails_an_input_without_a_prefix_or_with_a_non_boolean_reprocess(stack: Stack) -> None:
    states = _backfill(stack)["States"]
    [valid] = states["Input valid?"]["Choices"]
    assert valid["And"] == [
        {"Variable": "$.prefix", "IsString": True},
        {"Variable": "$.reprocess", "IsBoolean": True},
    ]
    assert states["Input valid?"]["Default"] == "Backfill refused"


def test_listing_is_allowed_under_key_prefix_only(stack: Stack) -> None:
    _backfill(stack, key_prefix="incoming/")
    statements = policy_statements(template_of(stack), "BackfillStateMachineRole")
    lists = [s for s in statements if "s3:ListBucket" in json.dumps(s["Action"])]
    assert lists == [
        {
            "Sid": "ListOnlyTheAllowedPrefix",
            "Action": "s3:ListBucket",
            "Condition": {"StringLike": {"s3:prefix": ["incoming/*"]}},
            "Effect": "Allow",
            "Resource": lists[0]["Resource"],
        }
    ]
    assert "SourceBucket" in json.dumps(lists[0]["Resource"])


def test_results_are_written_under_the_output_prefix_only(stack: Stack) -> None:
    _backfill(stack)
    statements = policy_statements(template_of(stack), "BackfillStateMachineRole")
    puts = [
        s for s in statements if isinstance(s["Action"], list) and "s3:PutObject" in s["Action"]
    ]
    assert len(puts) == 1
    assert "/processed/_backfills/*" in json.dumps(puts[0]["Resource"])


def test_map_runs_may_be_described_for_this_machine_only(stack: Stack) -> None:
    _backfill(stack)
    statements = policy_statements(template_of(stack), "BackfillStateMachineRole")
    [describe] = [s for s in statements if s["Action"] == "states:DescribeMapRun"]
    text = json.dumps(describe["Resource"])
    assert ":mapRun:" in text and "BackfillStateMachine" in text


def test_final_notification_carries_the_totals(stack: Stack) -> None:
    states = _backfill(stack)["States"]
    message = states["Notify backfill finished"]["Parameters"]["Message"]
    assert message["source"] == "backfill"
    assert message["totals.$"] == "$.totals"
    assert states["Read totals"]["Resource"].endswith(":states:::aws-sdk:sfn:describeMapRun")


def test_the_workflow_s_job_arguments_are_unchanged(stack: Stack) -> None:
    """``reprocess`` travels in the batch's manifest, not as a new workflow argument."""
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline")
    pipeline.backfill  # noqa: B018 - created on first use
    states = state_machine_definition(template_of(stack))["States"]
    assert "--reprocess.$" not in states["Run Glue job"]["Parameters"]["Arguments"]


@pytest.mark.parametrize(
    "props",
    [{"batch_size": 0}, {"max_concurrency": 0}, {"tolerated_failure_percentage": 101}],
)
def test_fails_out_of_range_settings(stack: Stack, props: dict[str, Any]) -> None:
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline")
    name = next(iter(props))
    with pytest.raises(ValidationError, match=name):
        Backfill(
            stack,
            "Own",
            workflow=pipeline.state_machine.state_machine,
            source_bucket=pipeline.source_bucket,
            notification_topic=sns.Topic(stack, "Topic"),
            results_bucket=pipeline.output_bucket,
            results_prefix="backfills/",
            **props,
        )


def test_only_one_state_machine_is_added(stack: Stack) -> None:
    _backfill(stack)
    machines = resources_of_type(template_of(stack), "AWS::StepFunctions::StateMachine")
    assert len([i for i in machines if "Backfill" in i]) == 1

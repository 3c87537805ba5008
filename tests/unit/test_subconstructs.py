"""Each sub-construct works on its own, with the required props DESIGN.md fixes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from event_driven_etl import EtlStateMachine, GlueEtlJob, TriggerFunction, ValidationError
from tests.helpers import (
    assembly_of,
    logical_id,
    only_resource,
    resources_of_type,
    state_machine_definition,
    template_of,
)


def test_glue_etl_job_alone_creates_job_role_and_security_configuration(stack: Stack) -> None:
    source, output = s3.Bucket(stack, "Raw"), s3.Bucket(stack, "Curated")
    job = GlueEtlJob(stack, "Job", source_bucket=source, output_bucket=output)
    template = template_of(stack)
    resource = only_resource(template, "AWS::Glue::Job")["Properties"]
    configuration = only_resource(template, "AWS::Glue::SecurityConfiguration")
    assert isinstance(job.job, glue.PySparkEtlJob)
    role_id = logical_id(job.role)
    assert resource["Role"] == {"Fn::GetAtt": [role_id, "Arn"]}  # the job runs as job.role
    assert resource["SecurityConfiguration"] == {"Ref": _logical_id(template, configuration)}
    output_id = logical_id(output)
    assert stack.resolve(job.output_path) == {
        "Fn::Join": ["", ["s3://", {"Ref": output_id}, "/processed/"]]
    }


def _logical_id(template: Any, resource: dict[str, Any]) -> str:
    return str(next(k for k, v in template.to_json()["Resources"].items() if v == resource))


def test_glue_etl_job_takes_a_custom_script(stack: Stack, tmp_path: object) -> None:
    from pathlib import Path

    script = Path(str(tmp_path)) / "my_job.py"
    script.write_text("print('hello')\n")
    source, output = s3.Bucket(stack, "Raw"), s3.Bucket(stack, "Curated")
    GlueEtlJob(
        stack,
        "Job",
        source_bucket=source,
        output_bucket=output,
        script=glue.Code.from_asset(str(script)),
    )
    outdir = Path(assembly_of(stack).directory)
    location = only_resource(template_of(stack), "AWS::Glue::Job")["Properties"]["Command"][
        "ScriptLocation"
    ]
    assert (outdir / f"asset.{location.rsplit('/', 1)[-1]}").read_text() == "print('hello')\n"


def test_state_machine_around_an_imported_job(stack: Stack) -> None:
    job = glue.Job.from_job_attributes(stack, "Existing", job_name="nightly-etl")
    topic = sns.Topic(stack, "Topic")
    workflow = EtlStateMachine(stack, "Workflow", glue_job=job, notification_topic=topic)
    template = template_of(stack)
    definition = state_machine_definition(template)
    assert definition["States"]["Run Glue job"]["Parameters"]["JobName"] == "nightly-etl"
    policies = json.dumps(resources_of_type(template, "AWS::IAM::Policy"))
    assert ":job/nightly-etl" in policies
    assert workflow.pipeline_name == "TestStack/Workflow"
    assert not resources_of_type(template, "AWS::Glue::Job")


def test_trigger_function_alone_needs_only_a_state_machine(stack: Stack) -> None:
    job = glue.Job.from_job_attributes(stack, "Existing", job_name="nightly-etl")
    workflow = EtlStateMachine(
        stack, "Workflow", glue_job=job, notification_topic=sns.Topic(stack, "T")
    )
    trigger = TriggerFunction(stack, "Trigger", state_machine=workflow.state_machine)
    template = template_of(stack)
    assert trigger.rule is None
    assert not resources_of_type(template, "AWS::Events::Rule")
    function = only_resource(template, "AWS::Lambda::Function")
    assert "SOURCE_BUCKET" not in function["Properties"]["Environment"]["Variables"]


def test_trigger_function_with_a_source_bucket_skips_other_buckets(stack: Stack) -> None:
    job = glue.Job.from_job_attributes(stack, "Existing", job_name="nightly-etl")
    workflow = EtlStateMachine(
        stack, "Workflow", glue_job=job, notification_topic=sns.Topic(stack, "T")
    )
    bucket = s3.Bucket(stack, "Raw")
    TriggerFunction(stack, "Trigger", state_machine=workflow.state_machine, source_bucket=bucket)
    functions = resources_of_type(template_of(stack), "AWS::Lambda::Function")
    function = next(f for k, f in functions.items() if k.startswith("TriggerFunction"))
    assert function["Properties"]["Environment"]["Variables"]["SOURCE_BUCKET"] == {
        "Ref": logical_id(bucket)
    }


def test_a_workflow_gives_a_rule_for_the_execution_statuses_asked_for(stack: Stack) -> None:
    job = glue.Job.from_job_attributes(stack, "Existing", job_name="nightly")
    topic = sns.Topic(stack, "Topic")
    workflow = EtlStateMachine(stack, "Workflow", glue_job=job, notification_topic=topic)
    rule = workflow.on_execution_status("TimedOut", ["TIMED_OUT", "ABORTED"])
    assert rule.node.path == "TestStack/Workflow/TimedOut"  # in the workflow by default
    [resource] = resources_of_type(template_of(stack), "AWS::Events::Rule").values()
    assert resource["Properties"]["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {
            "stateMachineArn": [{"Ref": logical_id(workflow.state_machine)}],
            "status": ["TIMED_OUT", "ABORTED"],
        },
    }
    assert resource["Properties"]["Description"] == "event-driven-etl: executions TIMED_OUT/ABORTED"


@pytest.mark.parametrize("statuses", [[], ["DONE"], "FAILED"], ids=["none", "unknown", "a_string"])
def test_a_workflow_refuses_a_rule_for_statuses_step_functions_does_not_have(
    stack: Stack, statuses: Any
) -> None:
    job = glue.Job.from_job_attributes(stack, "Existing", job_name="nightly")
    topic = sns.Topic(stack, "Topic")
    workflow = EtlStateMachine(stack, "Workflow", glue_job=job, notification_topic=topic)
    with pytest.raises(ValidationError, match="on_execution_status: statuses="):
        workflow.on_execution_status("Rule", statuses)
    assert workflow.node.try_find_child("Rule") is None

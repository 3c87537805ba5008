"""The emulation refuses what Step Functions refuses."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from event_driven_etl.testing._definition import check_intrinsic_literals
from event_driven_etl.testing._stepfunctions import CAUSE_LIMIT, step_functions_cause
from event_driven_etl.testing._trigger import (
    EXECUTION_INPUT_LIMIT,
    check_start_execution_limits,
)


def test_fails_an_execution_name_over_80_characters() -> None:
    check_start_execution_limits({"name": "a" * 80, "input": "{}"})
    with pytest.raises(ClientError, match="InvalidName"):
        check_start_execution_limits({"name": "a" * 81, "input": "{}"})


def test_fails_an_execution_name_with_a_space() -> None:
    with pytest.raises(ClientError, match="InvalidName"):
        check_start_execution_limits({"name": "a b", "input": "{}"})


def test_fails_an_execution_input_over_256_kb() -> None:
    check_start_execution_limits({"name": "n", "input": "x" * EXECUTION_INPUT_LIMIT})
    with pytest.raises(ClientError, match="InvalidExecutionInput"):
        check_start_execution_limits({"name": "n", "input": "x" * (EXECUTION_INPUT_LIMIT + 1)})


def test_a_cause_is_compact_sorted_and_cut_at_32768() -> None:
    cause = step_functions_cause(
        {"JobRunState": "FAILED", "Arguments": {"--objects": "x" * 40_000}}
    )
    assert cause.startswith('{"Arguments":{"--objects":"xxx')  # sorted: before JobRunState
    assert len(cause) == CAUSE_LIMIT
    assert '"JobRunState"' not in cause  # cut off, as in AWS


def test_a_state_output_over_256_kb_is_refused_as_step_functions_refuses_it() -> None:
    """moto enforces this limit itself (``States.DataLimitExceeded``); the README says so."""
    from moto.stepfunctions.parser.quotas import is_within_size_quota

    assert is_within_size_quota("x" * 200_000)
    assert not is_within_size_quota("x" * 262_144)


def test_fails_an_emulation_thread_that_would_reach_aws_after_its_pipeline_stopped() -> None:
    """A thread of the emulation that outlives its mock (a retrier, a Glue run past the
    ``wait_for_runs`` guard) must not send its next call to AWS itself."""
    import boto3

    from event_driven_etl.testing._clients import OfflineOnlyError, guard_real_endpoints
    from event_driven_etl.testing._time import CLOCK, in_emulation_thread

    guard_real_endpoints()
    client = boto3.client(
        "stepfunctions",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # fake: the call must never leave
    )
    seen: list[BaseException] = []

    def late_call() -> None:
        try:
            client.list_state_machines()
        except BaseException as error:  # the thread reports what stopped the call
            seen.append(error)

    worker = CLOCK.thread(late_call, name="late-execution")
    worker.start()
    with CLOCK.released():
        worker.join(timeout=60)
    assert len(seen) == 1 and isinstance(seen[0], OfflineOnlyError)
    assert "states.us-east-1.amazonaws.com" in str(seen[0])
    assert not in_emulation_thread()  # the test's own thread may still call what it likes


def _definition(expression: str) -> str:
    state = {"Type": "Pass", "Parameters": {"x.$": expression}, "End": True}
    return json.dumps({"StartAt": "P", "States": {"P": state}})


@pytest.mark.parametrize(
    "expression",
    [
        "States.StringToJson('\\{\\}')",
        "States.Format('{}: {}', $.a, $.b)",
        "States.Format('it\\'s \\{ {} \\}', $.a)",
        "States.StringToJson('null')",
    ],
)
def test_an_escaped_brace_or_a_format_placeholder_is_accepted(expression: str) -> None:
    check_intrinsic_literals(_definition(expression))


@pytest.mark.parametrize(
    "expression",
    ["States.StringToJson('{}')", "States.Format('x', '{')", "States.Format('a } {}', $.a)"],
)
def test_fails_an_unescaped_brace_in_an_intrinsic_string_literal(expression: str) -> None:
    """Reserved characters (https://docs.aws.amazon.com/step-functions/latest/dg/
    intrinsic-functions.html): moto's parser accepts these, Step Functions does not."""
    with pytest.raises(ClientError, match="InvalidDefinition"):
        check_intrinsic_literals(_definition(expression))

"""End to end, offline: the synthesized pipeline runs on moto with the Glue script on Spark."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Callable

import pytest
from aws_cdk import App, Duration, Stack

from event_driven_etl import Batching, EventDrivenEtlPipeline, RetryPolicy
from event_driven_etl.testing import LocalPipeline

CSV = b"id,First Name\n1,Ann\n2,Bob\n"


def _stack(tmp_path: Path, **props: object) -> Stack:
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "E2E")
    EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="incoming/", **props)  # type: ignore[arg-type]  # each test passes the props it is about
    return stack


def _no_spark(_script: Path, _arguments: dict[str, str]) -> None:
    """A Glue run that succeeds without Spark (for tests about delivery, not data)."""


@pytest.mark.spark
def test_upload_runs_the_job_and_notifies_success(tmp_path: Path) -> None:
    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline") as local:
        local.put_object("incoming/new orders.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED"
        assert run.objects == [f"s3://{local.source_bucket}/incoming/new orders.csv"]
        [note] = local.notifications
        assert note["status"] == "SUCCEEDED"
        assert note["pipeline"] == "E2E/Pipeline"
        assert note["execution"] == run.execution_arn
        assert note["objects"] == run.objects
        assert note["glue_job_run_id"] == local.glue_runs[0].run_id
        assert local.notification_attributes == [{"status": "SUCCEEDED"}]
        rows = local.read_output_rows()
        assert sorted(r["first_name"] for r in rows) == ["Ann", "Bob"]
        assert {r["_source_object"] for r in rows} == set(run.objects)
        assert any(k.endswith(".parquet") for k in local.output_keys())


def test_duplicate_delivery_runs_once(tmp_path: Path) -> None:
    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline", glue_runner=_no_spark) as local:
        event = local.put_object("incoming/a.csv", CSV)
        local.wait_for_runs(timeout=300)
        local.redeliver(event)
        local.redeliver(event)
        assert len(local.wait_for_runs(timeout=300)) == 1
        assert len(local.glue_runs) == 1


def test_reupload_runs_again(tmp_path: Path) -> None:
    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline", glue_runner=_no_spark) as local:
        local.put_object("incoming/a.csv", CSV)
        local.put_object("incoming/a.csv", CSV + b"3,Cy\n")
        runs = local.wait_for_runs(timeout=300)
        assert [r.status for r in runs] == ["SUCCEEDED", "SUCCEEDED"]
        assert runs[0].objects == runs[1].objects


def test_key_outside_the_prefix_starts_nothing(tmp_path: Path) -> None:
    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline", glue_runner=_no_spark) as local:
        local.put_object("elsewhere/a.csv", CSV)
        assert local.wait_for_runs(timeout=300) == []
        assert local.notifications == []


def test_prefix_and_suffix_must_both_match(tmp_path: Path) -> None:
    stack = _stack(tmp_path, key_suffix=".csv")
    with LocalPipeline.from_stack(stack, "Pipeline", glue_runner=_no_spark) as local:
        local.put_object("incoming/a.json", b"{}")
        local.put_object("other/b.csv", CSV)
        local.put_object("incoming/c.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.objects == [f"s3://{local.source_bucket}/incoming/c.csv"]


def test_glue_failure_notifies_failed_with_error_and_cause(tmp_path: Path) -> None:
    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline", glue_runner=_no_spark) as local:
        local.fail_next_glue_run(error="BadData", cause="column missing")
        local.put_object("incoming/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        assert run.error == "EtlPipelineFailed"
        [note] = local.notifications
        assert note["status"] == "FAILED"
        assert note["error"] == "States.TaskFailed"
        assert "BadData" in note["cause"] and "column missing" in note["cause"]
        assert note["glue_job_run_id"] == local.glue_runs[0].run_id
        assert note["objects"] == run.objects
        assert local.notification_attributes == [{"status": "FAILED"}]


@pytest.mark.spark
def test_script_error_fails_the_run(tmp_path: Path) -> None:
    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline") as local:
        local.put_object("incoming/report.xlsx", b"not supported")
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        assert "unsupported object format" in local.notifications[0]["cause"]


def test_concurrent_runs_exceeded_twice_is_retried_to_success(tmp_path: Path) -> None:
    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline", glue_runner=_no_spark) as local:
        local.faults.glue_concurrency_exceeded(times=2)
        local.put_object("incoming/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED"
        assert local.notifications[0]["status"] == "SUCCEEDED"


def test_retries_exhausted_notifies_failed(tmp_path: Path) -> None:
    stack = _stack(tmp_path, retry_policy=RetryPolicy(max_attempts=2))
    with LocalPipeline.from_stack(stack, "Pipeline", glue_runner=_no_spark) as local:
        local.faults.glue_start_fails("InternalServiceException", times=3)
        local.put_object("incoming/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        [note] = local.notifications
        assert note["error"] == "Glue.InternalServiceException"
        assert note["glue_job_run_id"] is None
        assert local.glue_runs == []


def test_throttled_start_execution_still_runs_once(tmp_path: Path) -> None:
    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline", glue_runner=_no_spark) as local:
        local.faults.start_execution_throttled(times=2)
        local.put_object("incoming/a.csv", CSV)
        assert [r.status for r in local.wait_for_runs(timeout=300)] == ["SUCCEEDED"]


def test_malformed_event_ends_in_the_dead_letter_queue(tmp_path: Path) -> None:
    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline", glue_runner=_no_spark) as local:
        local.send_event(
            {
                "source": "aws.s3",
                "detail-type": "Object Created",
                "detail": {
                    "bucket": {"name": local.source_bucket},
                    "object": {"key": "incoming/x", "size": "big"},
                },
            }
        )
        assert local.wait_for_runs(timeout=300) == []
        [letter] = local.dead_letters()
        assert "detail.object.size" in letter["responsePayload"]["errorMessage"]


def test_batched_mode_processes_every_object_exactly_once(tmp_path: Path) -> None:
    stack = _stack(tmp_path, batching=Batching(max_batch_size=100))
    with LocalPipeline.from_stack(stack, "Pipeline", glue_runner=_no_spark) as local:
        events = [local.put_object(f"incoming/part-{i:03}.csv", CSV) for i in range(200)]
        for event in events[:10]:
            local.redeliver(event)
        runs = local.wait_for_runs(timeout=300)
        processed = [o for r in runs for o in r.objects]
        assert all(r.status == "SUCCEEDED" for r in runs)
        assert sorted(processed) == sorted(
            {f"s3://{local.source_bucket}/incoming/part-{i:03}.csv" for i in range(200)}
        )
        assert len(processed) == 200
        assert len(runs) == 2
        assert local.dead_letters() == []


def test_batch_too_large_to_pass_inline_goes_to_the_job_as_a_manifest(tmp_path: Path) -> None:
    stack = _stack(tmp_path, batching=Batching(max_batch_size=100))
    long_dir = "/".join(["a-rather-long-folder-name"] * 38)  # keys near S3's 1,024-byte limit
    with LocalPipeline.from_stack(stack, "Pipeline", glue_runner=_no_spark) as local:
        for i in range(70):
            local.put_object(f"incoming/{long_dir}/{i:02}.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED"
        assert run.manifest and run.manifest.startswith(f"s3://{local.output_bucket}/manifests/")
        assert len(set(run.objects)) == 70
        [glue_run] = local.glue_runs
        assert glue_run.arguments["--manifest"] == run.manifest
        assert glue_run.arguments["--objects"] == "[]"
        assert local.notifications[0]["manifest"] == run.manifest


def test_wait_for_runs_returns_at_once_with_nothing_in_flight(tmp_path: Path) -> None:
    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline", glue_runner=_no_spark) as local:
        assert local.wait_for_runs(timeout=30) == []
        assert local.elapsed == 0  # nothing waited: no virtual time passed


def test_fails_wait_for_runs_past_its_timeout(tmp_path: Path) -> None:
    import threading

    release = threading.Event()

    def slow(_script: Path, _arguments: dict[str, str]) -> None:
        release.wait(30)

    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline", glue_runner=slow) as local:
        local.put_object("incoming/a.csv", CSV)
        with pytest.raises(TimeoutError, match=r"still running after 0\.5 seconds"):
            local.wait_for_runs(timeout=0.5)
        release.set()
        assert [r.status for r in local.wait_for_runs(timeout=300)] == ["SUCCEEDED"]


def test_fails_from_stack_with_an_unknown_construct_id(tmp_path: Path) -> None:
    from event_driven_etl.testing import PipelineNotFoundError

    with pytest.raises(PipelineNotFoundError, match="no EventDrivenEtlPipeline at /E2E/Nope"):
        LocalPipeline.from_stack(_stack(tmp_path), "Nope")


def test_runs_from_a_cloud_assembly_directory(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    stack.node.root.synth()  # type: ignore[attr-defined]  # the root is the App (IConstruct lacks synth)
    with LocalPipeline.from_cloud_assembly(
        tmp_path / "cdk.out", "E2E", "Pipeline", glue_runner=_no_spark
    ) as local:
        local.put_object("incoming/a.csv", CSV)
        assert [r.status for r in local.wait_for_runs(timeout=300)] == ["SUCCEEDED"]
        assert json.loads(json.dumps(local.notifications))[0]["status"] == "SUCCEEDED"


def test_burst_of_50_uploads_is_fully_processed_with_default_props(tmp_path: Path) -> None:
    """Glue's concurrency limit (10 by default here) meets 50 executions at once: each run
    holds its slot for 90 virtual seconds, and Glue queues the runs over the limit (job-run
    queuing is on by default), so every one of them succeeds."""
    with LocalPipeline.from_stack(
        _stack(tmp_path), "Pipeline", glue_runner=_no_spark, glue_run_time=Duration.seconds(90)
    ) as local:
        local.deliver_immediately = False  # the whole burst starts at once
        for i in range(50):
            local.put_object(f"incoming/burst-{i:02}.csv", CSV)
        local.flush()
        runs = local.wait_for_runs(timeout=240)
        failed = [
            (r.status, r.error, (r.cause or "")[:300]) for r in runs if r.status != "SUCCEEDED"
        ]
        assert failed == []
        assert len(runs) == 50
        assert len({o for r in runs for o in r.objects}) == 50
        assert len(local.glue_runs) == 50
        assert local.glue_queued_runs == 40  # the limit was really met: Glue queued the rest
        assert local.glue_concurrency_rejections == 0  # (job-run queuing is on by default)
        assert local.elapsed >= 5 * 90  # five waves of ten 90-second runs


def _retry_budget_seconds() -> float:
    """The default concurrency retrier's expected total wait: each of its waits is drawn
    uniformly below its ceiling (full jitter), so on average half of it."""
    from event_driven_etl.state_machine import _DEFAULT_CONCURRENCY_RETRY

    retry = _DEFAULT_CONCURRENCY_RETRY
    assert retry.max_delay is not None
    ceilings = [
        min(retry.interval.to_seconds() * retry.backoff_rate**n, retry.max_delay.to_seconds())
        for n in range(retry.max_attempts)
    ]
    return sum(ceilings) / 2


BURST = 30
RUN = Duration.hours(1)


def test_fails_a_per_object_burst_beyond_the_retry_budget_by_the_predicted_count(
    tmp_path: Path,
) -> None:
    """Without job-run queuing, 30 objects at once meet 10 slots of 1-hour runs: the first
    10 run at once, the next 10 when those end (an hour in, well within every execution's
    retry budget of about 1.5 hours: 40 jittered waits averaging 5,400 s, sd about 500 s),
    and the budget of every other one runs out before the third wave (2 hours, over 3 sd
    away). Predicted: 30 - 10 x (1 + budget // run) = 10 FAILED; tolerance 1 either way,
    for a budget drawn more than 3 sd from its mean. Hours of virtual time, a minute or two
    of real time on a loaded machine."""
    waves = 1 + int(_retry_budget_seconds() // RUN.to_seconds())
    predicted = BURST - 10 * waves
    stack = _stack(tmp_path, job_run_queuing=False, job_timeout=Duration.hours(2))
    with LocalPipeline.from_stack(
        stack, "Pipeline", glue_run_time=RUN, run_glue_script=False
    ) as local:
        local.deliver_immediately = False
        for i in range(BURST):
            local.put_object(f"incoming/burst-{i:02}.csv", CSV)
        local.flush()
        runs = local.wait_for_runs(timeout=300)
        failed = [r for r in runs if r.status == "FAILED"]
        assert (waves, predicted) == (2, 10)
        assert abs(len(failed) - predicted) <= 1, len(failed)
        assert len(runs) == BURST and len(local.glue_runs) == BURST - len(failed)
        assert {r.error for r in failed} == {"EtlPipelineFailed"}
        assert all("Glue.ConcurrentRunsExceededException" in (r.cause or "") for r in failed)
        notes = [n for n in local.notifications if n["status"] == "FAILED"]
        assert len(notes) == len(failed)  # each failed object is told, and nothing re-runs it
        assert local.output_keys() == []  # run_glue_script=False: no output at all
        succeeded = [n for n in local.notifications if n["status"] == "SUCCEEDED"]
        assert {(n["rows"], n["landed"]) for n in succeeded} == {(None, None)}  # says so


@pytest.mark.parametrize("mode", ["queuing", "batching"])
def test_the_same_burst_with_queuing_or_batching_ends_with_no_failure(
    tmp_path: Path, mode: str
) -> None:
    props: dict[str, object] = {"job_timeout": Duration.hours(2)}
    if mode == "batching":
        props.update(job_run_queuing=False, batching=Batching(max_batch_size=100))
    with LocalPipeline.from_stack(
        _stack(tmp_path, **props), "Pipeline", glue_run_time=RUN, run_glue_script=False
    ) as local:
        local.deliver_immediately = False
        for i in range(BURST):
            local.put_object(f"incoming/burst-{i:02}.csv", CSV)
        local.flush()
        runs = local.wait_for_runs(timeout=300)
        assert [r.status for r in runs if r.status != "SUCCEEDED"] == []
        assert sorted(o for r in runs for o in r.objects) == sorted(
            f"s3://{local.source_bucket}/incoming/burst-{i:02}.csv" for i in range(BURST)
        )
        if mode == "queuing":  # three waves of ten one-hour runs
            assert local.glue_queued_runs == BURST - 10
            assert local.elapsed >= 3 * RUN.to_seconds()
        else:
            assert len(local.glue_runs) == 1


def test_fails_a_queued_run_that_waits_past_the_workflow_timeout_as_timed_out(
    tmp_path: Path,
) -> None:
    """Queued runs wait for a slot, but not past the workflow's TimeoutSeconds: 25 objects,
    10 slots of 50-minute runs, a 90-minute workflow timeout. The first wave ends in time;
    the second would end at 100 minutes, the third has not started: 15 TIMED_OUT, as in
    AWS (a timed-out execution runs no catch, so it sends no notification)."""
    stack = _stack(tmp_path, workflow_timeout=Duration.minutes(90))
    with LocalPipeline.from_stack(
        stack, "Pipeline", glue_run_time=Duration.minutes(50), run_glue_script=False
    ) as local:
        local.deliver_immediately = False
        for i in range(25):
            local.put_object(f"incoming/q-{i:02}.csv", CSV)
        local.flush()
        runs = local.wait_for_runs(timeout=300)
        statuses = sorted(r.status for r in runs)
        assert statuses == ["SUCCEEDED"] * 10 + ["TIMED_OUT"] * 15
        assert len(local.notifications) == 10
        assert local.glue_queued_runs == 15


def test_pytest_fixture_starts_and_stops_the_pipeline(
    tmp_path: Path, local_pipeline: Callable[..., LocalPipeline], no_spark: Callable[..., None]
) -> None:
    local = local_pipeline(_stack(tmp_path), "Pipeline", glue_runner=no_spark)
    local.put_object("incoming/a.csv", CSV)
    assert [r.status for r in local.wait_for_runs(timeout=300)] == ["SUCCEEDED"]


@pytest.mark.spark
def test_bring_your_own_example_runs_its_own_script_offline(tmp_path: Path) -> None:
    """An imported bucket and topic (another account's ARN) and a custom Glue script."""
    import runpy

    module = runpy.run_path(
        str(Path(__file__).resolve().parents[2] / "examples/bring_your_own/app.py")
    )
    stack = module["build"](App(outdir=str(tmp_path / "cdk.out")))
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        assert local.source_bucket == "acme-raw-landing-zone"
        local.put_object("orders/2026-11.csv", b"id,total\n1,5.0\n2,0\n3,7.5\n")
        local.put_object("orders/readme.txt", b"not an order")  # suffix filter: ignored
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED"
        [note] = local.notifications
        assert note["pipeline"] == "orders-ingest"
        rows = local.read_output_rows(prefix="processed/orders/")
        assert sorted(r["id"] for r in rows) == ["1", "3"]


def test_stack_with_an_explicit_environment_runs_offline(tmp_path: Path) -> None:
    from aws_cdk import Environment

    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "Pinned", env=Environment(account="111111111111", region="eu-west-1"))
    EventDrivenEtlPipeline(stack, "Pipeline", batching=Batching(max_batch_size=10))
    with LocalPipeline.from_stack(stack, "Pipeline", glue_runner=_no_spark) as local:
        for i in range(3):
            local.put_object(f"any/{i}.json", b"{}")
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED" and len(run.objects) == 3
        assert local.notifications[0]["status"] == "SUCCEEDED"


def test_a_run_that_ended_failed_is_run_again_when_asked(tmp_path: Path) -> None:
    policy = RetryPolicy(max_attempts=2, interval=Duration.seconds(30), retry_failed_runs=True)
    with LocalPipeline.from_stack(
        _stack(tmp_path, retry_policy=policy), "Pipeline", glue_runner=_no_spark
    ) as local:
        local.fail_next_glue_run("DriverLost", "first attempt")
        local.put_object("incoming/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED"
        assert [g.status for g in local.glue_runs] == ["FAILED", "SUCCEEDED"]
        # One execution, one Glue batch: the retry runs the same batch id again.
        assert {g.arguments["--batch_id"] for g in local.glue_runs} == {run.name}


def test_fails_a_run_that_keeps_failing_after_its_retries(tmp_path: Path) -> None:
    policy = RetryPolicy(max_attempts=2, interval=Duration.seconds(30), retry_failed_runs=True)
    with LocalPipeline.from_stack(
        _stack(tmp_path, retry_policy=policy), "Pipeline", glue_runner=_no_spark
    ) as local:
        for attempt in range(3):
            local.fail_next_glue_run("BadData", f"attempt {attempt}")
        local.put_object("incoming/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        assert [g.status for g in local.glue_runs] == ["FAILED"] * 3  # first + max_attempts
        [note] = local.notifications
        assert note["status"] == "FAILED" and "attempt 2" in note["cause"]


@pytest.mark.parametrize("state", ["TIMEOUT", "ERROR"])
def test_fails_a_run_that_ended_other_than_failed_without_a_retry(
    tmp_path: Path, state: str
) -> None:
    """``retry_failed_runs`` retries runs that ended FAILED, not every States.TaskFailed."""
    policy = RetryPolicy(max_attempts=2, interval=Duration.seconds(30), retry_failed_runs=True)
    with LocalPipeline.from_stack(
        _stack(tmp_path, retry_policy=policy), "Pipeline", glue_runner=_no_spark
    ) as local:
        local.fail_next_glue_run("Slow", "took too long", state=state)
        local.put_object("incoming/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        assert [g.status for g in local.glue_runs] == [state]
        [note] = local.notifications
        assert f'"JobRunState":"{state}"' in note["cause"]


def test_fails_a_glue_outage_that_outlasts_the_retry_budget(tmp_path: Path) -> None:
    """Not flattened: 3 retries of 60 s x 2 wait their shape on the virtual clock and then
    the execution fails, as it would in AWS when Glue keeps failing."""
    budget = RetryPolicy(max_attempts=3, interval=Duration.seconds(60), jitter=False)
    stack = _stack(tmp_path, retry_policy=budget)
    with LocalPipeline.from_stack(stack, "Pipeline", glue_runner=_no_spark) as local:
        local.faults.glue_start_fails("InternalServiceException", times=4)
        local.put_object("incoming/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        assert local.notifications[0]["error"] == "Glue.InternalServiceException"
        assert local.workflow_waits(run.execution_arn) == [60, 120, 240]
        assert local.elapsed >= 60 + 120 + 240  # the waits took their virtual time


def test_fails_an_execution_past_the_workflow_timeout(tmp_path: Path) -> None:
    """The timeout counts the waiting too: Glue busy for longer than the workflow may live
    times the execution out (TIMED_OUT), with the default 40-attempt concurrency retry."""
    stack = _stack(tmp_path, workflow_timeout=Duration.minutes(10), job_timeout=Duration.minutes(5))
    with LocalPipeline.from_stack(stack, "Pipeline", glue_runner=_no_spark) as local:
        local.faults.glue_concurrency_exceeded(times=40)
        local.put_object("incoming/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "TIMED_OUT"
        assert local.glue_runs == []


def test_a_failed_run_of_the_workflow_makes_exactly_one_failed_notification(
    tmp_path: Path,
) -> None:
    """Glue's job-state event for a run the workflow started is the workflow's to notify."""
    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline", glue_runner=_no_spark) as local:
        local.fail_next_glue_run("BadData", "column missing")
        local.put_object("incoming/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        assert [n["status"] for n in local.notifications] == ["FAILED"]
        assert local.notification_attributes == [{"status": "FAILED"}]
        assert "source" not in local.notifications[0]  # the workflow's, not the rule's


def test_a_run_failed_outside_the_workflow_is_notified_with_the_status_attribute(
    tmp_path: Path,
) -> None:
    with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline", glue_runner=_no_spark) as local:
        local.fail_next_glue_run("BadData", "started by hand", state="TIMEOUT")
        run_id = local.run_glue_job_directly({"--objects": "[]"})
        assert local.wait_for_runs(timeout=300) == []  # no workflow execution
        [note] = local.notifications
        assert note["status"] == "FAILED"
        assert note["source"] == "glue-job-state-change"
        assert note["glue_job_run_id"] == run_id
        assert note["error"] == "Glue job run TIMEOUT"
        assert "started by hand" in note["cause"]
        assert local.notification_attributes == [{"status": "FAILED"}]


def test_a_failed_1000_object_batch_with_a_cause_over_32kb_still_notifies(
    tmp_path: Path,
) -> None:
    """Step Functions cuts a cause at 32,768 characters (the harness does too): the cut JSON
    must not reach States.StringToJson, which would fail where nothing can catch it."""
    from event_driven_etl.testing._stepfunctions import CAUSE_LIMIT

    def names_every_object(_script: Path, arguments: dict[str, str]) -> None:
        manifest = arguments["--manifest"]
        raise RuntimeError(f"could not read any object of {manifest}: " + "x" * 40_000)

    stack = _stack(
        tmp_path, batching=Batching(max_batch_size=1000, max_batching_window=Duration.minutes(1))
    )
    with LocalPipeline.from_stack(stack, "Pipeline", glue_runner=names_every_object) as local:
        local.deliver_immediately = False
        for i in range(1000):
            local.put_object(f"incoming/batch/{i:04}.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        assert len(run.objects) == 1000
        [note] = local.notifications
        assert note["status"] == "FAILED" and len(note["objects"]) == 0  # a manifest run
        assert note["manifest"] == run.manifest
        assert note["error"] == "States.TaskFailed"
        assert len(note["cause"]) == CAUSE_LIMIT  # cut, as Step Functions cuts it
        assert '"ErrorMessage":"RuntimeError: could not read any object' in note["cause"]


def test_identical_bytes_uploaded_again_to_an_unversioned_bucket_run_again(
    tmp_path: Path,
) -> None:
    """No version id, same ETag: only the event's sequencer tells the uploads apart."""
    from aws_cdk import aws_s3 as s3

    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "E2E")
    landing = s3.Bucket(stack, "Landing", versioned=False, enforce_ssl=True)
    EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="incoming/", source_bucket=landing)
    with LocalPipeline.from_stack(stack, "Pipeline", glue_runner=_no_spark) as local:
        first = local.put_object("incoming/a.csv", CSV)
        second = local.put_object("incoming/a.csv", CSV)
        assert "version-id" not in first["detail"]["object"]
        assert first["detail"]["object"]["etag"] == second["detail"]["object"]["etag"]
        runs = local.wait_for_runs(timeout=300)
        assert [r.status for r in runs] == ["SUCCEEDED", "SUCCEEDED"]
        local.redeliver(second)  # the same upload delivered twice is still one run
        assert len(local.wait_for_runs(timeout=300)) == 2


def test_a_crashed_invocation_s_objects_are_taken_over_by_the_redelivery(
    tmp_path: Path,
) -> None:
    """The invocation dies after claiming (marks pending): after the visibility timeout the
    records come back, the lease has ended, and the redelivery takes the objects over."""
    stack = _stack(tmp_path, batching=Batching(max_batch_size=10))
    with LocalPipeline.from_stack(stack, "Pipeline", glue_runner=_no_spark) as local:
        local.faults.trigger_crashes_before_start()
        for i in range(5):
            local.put_object(f"incoming/crash-{i}.csv", CSV)
        runs = local.wait_for_runs(timeout=300)
        assert local.elapsed >= 1800  # the records waited for their visibility timeout
        assert [r.status for r in runs] == ["SUCCEEDED"]
        assert sorted(runs[0].objects) == sorted(
            f"s3://{local.source_bucket}/incoming/crash-{i}.csv" for i in range(5)
        )
        assert local.dead_letters() == []


def test_a_duplicate_meeting_a_claim_in_flight_is_not_started_again(tmp_path: Path) -> None:
    """Invocation 1 claims {x, a} and is slow to start its execution; 2 s later, invocation 2
    gets {x again, b}. x's mark is pending but leased: invocation 2 leaves x alone, so x
    runs once. (With no lease, invocation 2 would take x over and run it twice.)"""
    import threading

    stack = _stack(tmp_path, batching=Batching(max_batch_size=2))
    with LocalPipeline.from_stack(stack, "Pipeline", glue_runner=_no_spark) as local:
        local.deliver_immediately = False
        x = local.put_object("incoming/x.csv", CSV)
        local.put_object("incoming/a.csv", CSV)
        local.faults.start_execution_slow(seconds=4)
        first = threading.Thread(target=local.flush)
        first.start()
        deadline = time.monotonic() + 60  # wait on state: invocation 1 is in its slow start
        while local.faults.start_execution_errors and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not local.faults.start_execution_errors
        local.advance(2)  # 2 virtual seconds into its 4: it holds its claim on x
        local.redeliver(x)
        local.put_object("incoming/b.csv", CSV)
        runs = local.wait_for_runs(timeout=300)
        first.join(timeout=60)
        runs = local.wait_for_runs(timeout=300)
        processed = sorted(o.rsplit("/", 1)[-1] for r in runs for o in r.objects)
        assert processed == ["a.csv", "b.csv", "x.csv"]
        assert all(r.status == "SUCCEEDED" for r in runs)


def test_a_separate_alarm_topic_hears_of_every_failed_run(tmp_path: Path) -> None:
    from aws_cdk import aws_sns as sns

    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "E2E")
    ops = sns.Topic(stack, "Ops")
    EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="incoming/", alarm_topic=ops)
    with LocalPipeline.from_stack(stack, "Pipeline", glue_runner=_no_spark) as local:
        local.fail_next_glue_run("BadData", "column missing")
        local.put_object("incoming/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "FAILED"
        sources = sorted(n.get("source", "workflow") for n in local.notifications)
        assert sources == ["glue-job-state-change", "workflow"]  # one on each topic
        assert local.notification_attributes == [{"status": "FAILED"}] * 2


def test_glue_busy_is_retried_with_waits_capped_at_5_minutes_and_jittered(tmp_path: Path) -> None:
    """The concurrency retrier as it waits in AWS (30 s x 1.5, capped at 300 s, full
    jitter), observed on the virtual clock: 12 refusals reach well past the cap."""
    stack = _stack(tmp_path)
    with LocalPipeline.from_stack(stack, "Pipeline", glue_runner=_no_spark) as local:
        local.faults.glue_concurrency_exceeded(times=12)
        local.put_object("incoming/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED"
        waits = local.workflow_waits(run.execution_arn)
    ceilings = [min(30 * 1.5**n, 300) for n in range(12)]
    assert len(waits) == 12
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(waits, ceilings))  # the cap
    assert waits != ceilings  # full jitter: each wait is drawn below its ceiling


@pytest.mark.parametrize("jitter", [True, False])
def test_the_retry_policy_s_jitter_reaches_the_waits(tmp_path: Path, jitter: bool) -> None:
    policy = RetryPolicy(max_attempts=3, interval=Duration.seconds(10), jitter=jitter)
    stack = _stack(tmp_path, retry_policy=policy)
    with LocalPipeline.from_stack(stack, "Pipeline", glue_runner=_no_spark) as local:
        local.faults.glue_start_fails("InternalServiceException", times=3)
        local.put_object("incoming/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=300)
        assert run.status == "SUCCEEDED"
        waits = local.workflow_waits(run.execution_arn)
    ceilings = [10.0, 20.0, 40.0]  # interval x backoff_rate (2) ** n
    if jitter:
        assert all(0 <= w <= c for w, c in zip(waits, ceilings)) and waits != ceilings
    else:
        assert waits == ceilings


@pytest.mark.spark
def test_the_real_file_corpus_uploaded_at_once_beside_two_cpu_hogs_ends_as_in_aws(
    tmp_path: Path,
) -> None:
    """Every file of the corpus at once, per object, default props, while two processes
    keep both cores busy: the outcome is the template's and the data's (each file lands,
    is skipped or is refused for its own reason), never Glue's concurrency limit, however
    slowly local Spark runs."""
    import subprocess
    import sys

    corpus = Path(__file__).resolve().parent.parent / "data" / "corpus"
    files = sorted(p for p in corpus.iterdir() if p.is_file() and not p.name.startswith("."))
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        with LocalPipeline.from_stack(_stack(tmp_path), "Pipeline") as local:
            local.deliver_immediately = False
            for path in files:
                local.put_object(f"incoming/{path.name}", path.read_bytes())
            local.flush()
            runs = local.wait_for_runs(timeout=1800)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert len(runs) == len(files) >= 19
    assert not [r for r in runs if "ConcurrentRunsExceeded" in (r.cause or "")]
    assert local.glue_concurrency_rejections == 0
    assert local.glue_queued_runs == len(files) - 10  # Glue's limit was met, and queued
    failed = {
        o.rsplit("/", 1)[-1]: r.cause or "" for r in runs if r.status == "FAILED" for o in r.objects
    }
    refused = {  # refused for what is in them (tests/e2e/test_real_files.py)
        "digits_headerless.csv.gz",
        "election_features_truncated.jsonl",
        "election_geojson.json.gz",
        "scotland_population_report.csv",
        "sf_temps_parquet_named.csv",
        "tips_gzip_named.csv",
        "wine_data_ragged.csv",
    }
    assert refused <= set(failed)
    # The others share one table: a file whose column contradicts the type an earlier file
    # gave it is refused for that, as on AWS; nothing fails for any other reason.
    others = {name: cause for name, cause in failed.items() if name not in refused}
    # (Which file meets which type depends on the order the runs commit in: e.g. `year` as
    # gapminder's and penguins' integers against another file's dates, either way round.)
    clash = re.compile(r"column '[^']+' holds \w+ values that are not ")
    assert all(clash.search(cause) for cause in others.values()), others


def _burst_wakeups(local: LocalPipeline, start: int, objects: int) -> int:
    """The clock's wake-ups while a burst of ``objects`` runs through ``local``."""
    from event_driven_etl.testing._time import CLOCK

    before = CLOCK.wakeups
    for i in range(start, start + objects):
        local.put_object(f"incoming/burst-{i:03}.csv", CSV)
    local.flush()
    runs = local.wait_for_runs(timeout=300)
    assert len(runs) == start + objects
    assert [r.status for r in runs if r.status != "SUCCEEDED"] == []
    return CLOCK.wakeups - before


def test_a_burst_s_clock_wake_ups_grow_linearly_with_its_executions(tmp_path: Path) -> None:
    """Capacity planning runs bursts of thousands of executions: the emulation's work must
    grow with the burst, not with its square. Each queued execution waits on the clock for
    its own Glue run; when a run ended, every waiting execution was woken to check its own
    run and wait again (n² wake-ups: 3 times the burst cost 4.6 times the wake-ups). The
    clock's wake-up count is deterministic work, not wall-clock time."""
    with LocalPipeline.from_stack(
        _stack(tmp_path), "Pipeline", glue_run_time=Duration.seconds(90), run_glue_script=False
    ) as local:
        local.deliver_immediately = False  # each burst arrives at one moment
        small = _burst_wakeups(local, 0, 25)
        large = _burst_wakeups(local, 25, 75)
    assert large <= 3.6 * small, (small, large)  # linear: 3.0; n² before: 4.6


def test_a_burst_in_flight_holds_one_thread_per_execution(tmp_path: Path) -> None:
    """A burst of 10,000 per-object executions is all in flight at once with job-run
    queuing, so the emulation's threads per execution bound the burst a machine can plan
    (``kernel.pid_max`` 32,768 here). moto ran each execution's program and each task on a
    thread of its own beside the execution's, and every queued Glue run had one: four per
    execution, and 10,000 stopped at the thread limit. Timeouts are now deadlines on the
    execution's thread and a queued run takes a thread only once it holds a slot."""
    from event_driven_etl.testing._time import CLOCK

    burst = 120
    with LocalPipeline.from_stack(
        _stack(tmp_path), "Pipeline", glue_run_time=Duration.minutes(30), run_glue_script=False
    ) as local:
        local.deliver_immediately = False  # the whole burst is in flight at one moment
        for i in range(burst):
            local.put_object(f"incoming/burst-{i:03}.csv", CSV)
        local.flush()
        runs = local.wait_for_runs(timeout=300)
        peak = CLOCK.peak_threads
    assert [r.status for r in runs].count("SUCCEEDED") == burst
    assert local.glue_queued_runs == burst - 10  # all in flight: ten ran, the rest queued
    # One per execution, one per Glue slot (10; a freed slot's thread runs the next queued
    # run) and Lambda's five SQS pollers at most. Four per execution before: about 480.
    assert burst < peak <= burst + 10 + 5, peak


def test_a_task_past_its_timeout_seconds_fails_with_states_timeout(tmp_path: Path) -> None:
    """A task's ``TimeoutSeconds`` on the virtual clock (a deadline, no thread of its own):
    the Glue task given 60 s fails with ``States.Timeout`` at 60 s when its run takes 90
    (the workflow's catch notifies it), and succeeds when the run takes 30."""
    from event_driven_etl.testing._template import load_from_assembly

    app = App(outdir=str(tmp_path / "cdk.out"))
    EventDrivenEtlPipeline(Stack(app, "Local"), "Pipeline", key_prefix="incoming/")
    assembly = app.synth().directory
    outcomes = {}
    for run_time in (90, 30):
        template = load_from_assembly(assembly, "Local")
        _set_glue_task_timeout(template.template, seconds=60)
        with LocalPipeline(
            template,
            "/Local/Pipeline",
            glue_run_time=Duration.seconds(run_time),
            run_glue_script=False,
        ) as local:
            local.put_object("incoming/a.csv", CSV)
            [run] = local.wait_for_runs(timeout=300)
            [note] = local.notifications
            outcomes[run_time] = (run.status, note["status"], note.get("error"))
    assert outcomes[90] == ("FAILED", "FAILED", "States.Timeout")
    assert outcomes[30] == ("SUCCEEDED", "SUCCEEDED", None)


def _set_glue_task_timeout(template: dict[str, object], *, seconds: int) -> None:
    """Give the workflow's ``glue:startJobRun.sync`` task a ``TimeoutSeconds``."""
    resources = template["Resources"]
    assert isinstance(resources, dict)
    machine = next(r for r in resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    sync = ':states:::glue:startJobRun.sync"'
    hits = [i for i, part in enumerate(parts) if isinstance(part, str) and sync in part]
    assert len(hits) == 1, hits
    parts[hits[0]] = parts[hits[0]].replace(sync, f'{sync},"TimeoutSeconds":{seconds}')

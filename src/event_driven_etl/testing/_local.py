"""LocalPipeline: run a synthesized EventDrivenEtlPipeline in-process, offline.

What is real: the state machine definition from the template (intrinsics resolved to the
emulated resources), the rules' event patterns and targets, the trigger handler loaded from
its synthesized asset directory, and the Glue script run on local PySpark. What moto
emulates: S3, SQS, SNS, DynamoDB, the Glue control plane and Data Catalog, and Step
Functions' interpreter. EventBridge's delivery (``_delivery``) and Lambda
(``_trigger_function``: the handler called in-process, with the asynchronous-invocation
retries or the SQS batch semantics the template configures) are emulated here. Every call
a component makes is checked against the template's policies (``_access.py``,
``_permissions.py``); every wait, and every Glue run's duration, is virtual time
(``_time.py``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Optional, Union, cast

from . import _delivery, _moto_patches, _spark, _time
from ._access import TASK_GATES, AccessGate, install_task_gates
from ._clients import emulated_client, guard_real_endpoints
from ._faults import Faults
from ._glue_emulation import ACTIVE_JOBS, GlueEmulator, GlueRunner, glue_hooks
from ._lambda_emulation import SerialClient, drain
from ._layout import PipelineLayout
from ._observation import GlueRun, Run, executions, finished_runs, objects_of
from ._output import read_table_rows
from ._permissions import Policies
from ._provision import Emulation, provision
from ._template import ACCOUNT, REGION, StackTemplate, load_from_assembly
from ._trigger_function import TriggerFunction

if TYPE_CHECKING:
    from aws_cdk import Duration, Stack

_MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}}


class LocalPipeline:
    """A synthesized pipeline running offline, for tests and demos.

    Example::

        with LocalPipeline.from_stack(stack, "Pipeline") as local:
            local.put_object("incoming/a.csv", b"id,name\\n1,x\\n")
            [run] = local.wait_for_runs()
            assert run.status == "SUCCEEDED"

    The pieces live in their own modules: :class:`~._layout.PipelineLayout` (the template,
    read once), ``_provision`` (the emulated resources), ``_delivery`` (EventBridge and
    CloudWatch), ``_trigger_function`` (Lambda), ``_glue_emulation`` (Glue runs),
    ``_access`` (IAM), ``_faults`` and ``_observation``. This class wires them together.
    """

    layout: PipelineLayout
    """The pipeline as synthesized: ids, names, ARNs and delivery settings."""

    faults: Faults
    """Fault injection: ``local.faults.glue_run_fails(...)`` and the other verbs."""

    deliver_immediately: bool
    """Per-object mode: invoke the trigger on each event at once (as Lambda would). Set
    False to hold events until :meth:`flush` or :meth:`wait_for_runs`, e.g. to start a
    whole burst at the same moment. Default: True"""

    policies: Policies
    """The template's policies as the emulation evaluates them; ``.checked`` lists every
    evaluation as ``(principal, action, resource, allowed)``. Set by :meth:`start`."""

    def __init__(
        self,
        stack: StackTemplate,
        construct_path: str,
        *,
        glue_runner: Optional[GlueRunner] = None,
        glue_run_time: Optional[Duration] = None,
        run_glue_script: bool = True,
        work_dir: Optional[Union[str, Path]] = None,
    ) -> None:
        """
        :param stack: The synthesized stack (see :meth:`from_stack`).
        :param construct_path: The pipeline's path, e.g. ``/MyStack/Pipeline``.
        :param glue_runner: Runs the Glue script. Default: - the script runs on local PySpark
        :param glue_run_time: How long each emulated Glue run holds its concurrency slot, in
            virtual time, whatever the local run took. Default: - the cost model's estimate
            (``event_driven_etl.cost.RunProfile``) for the run's objects and their sizes on
            the job's workers
        :param run_glue_script: False: runs keep their timing and concurrency but run no
            script (no Spark): their outputs are empty and their notifications say so
            (``rows`` and ``landed`` null, as without a run report); for capacity questions
            over thousands of objects. Default: True
        :param work_dir: Folder for the bucket mirrors. Default: - a temporary folder
        """
        run_seconds = None if glue_run_time is None else glue_run_time.to_seconds()
        if run_seconds is not None and run_seconds <= 0:
            raise ValueError(
                f"glue_run_time must be a positive Duration, got {run_seconds:g} seconds"
            )
        self._stack = stack
        self._glue_runner = glue_runner
        self._glue_run_seconds = run_seconds
        self._run_glue_script = bool(run_glue_script)
        self._work_dir = Path(work_dir) if work_dir else None
        self.layout = PipelineLayout.read(stack, construct_path)
        self.faults = Faults()
        self.deliver_immediately = True
        self._emulation: Optional[Emulation] = None
        self._sends_to_eventbridge: dict[str, bool] = {}
        self._mock: Any = None
        self._glue: Optional[GlueEmulator] = None
        self._env_saved: dict[str, Optional[str]] = {}
        self._tmp: Optional[tempfile.TemporaryDirectory[str]] = None

    @classmethod
    def from_stack(cls, stack: Stack, construct_id: str, **options: Any) -> LocalPipeline:
        """Synthesize ``stack``'s app and run the pipeline with id (or path) ``construct_id``."""
        from aws_cdk import Stage

        stage = Stage.of(stack)
        if stage is None:  # pragma: no cover - every stack lives in an app
            raise ValueError("the stack is not part of an App")
        assembly = stage.synth(force=True)
        artifact = assembly.get_stack_artifact(stack.artifact_id)
        template = load_from_assembly(assembly.directory, artifact.stack_name)
        return cls(template, f"/{stack.node.path}/{construct_id.strip('/')}", **options)

    @classmethod
    def from_cloud_assembly(
        cls, directory: Union[str, Path], stack_name: str, construct_id: str, **options: Any
    ) -> LocalPipeline:
        """Run a pipeline from a ``cdk.out`` directory, e.g. after ``cdk synth``."""
        template = load_from_assembly(directory, stack_name)
        return cls(template, f"/{stack_name}/{construct_id.strip('/')}", **options)

    # ------------------------------------------------------------------ what was synthesized

    @property
    def glue_version(self) -> str:
        """The job's Glue version, as synthesized (``"5.1"``)."""
        return self.layout.glue_version

    @property
    def glue_script(self) -> Path:
        """The job's script, from the cloud assembly."""
        return self.layout.glue_script

    @property
    def handler_dir(self) -> Path:
        """The trigger function's asset folder, from the cloud assembly."""
        return self.layout.handler_dir

    # ------------------------------------------------------------------ what was created

    @property
    def emulation(self) -> Emulation:
        """Where each resource is in the emulated services (after :meth:`start`)."""
        if self._emulation is None:
            raise RuntimeError("the pipeline is not running: use it in a `with` block")
        return self._emulation

    @property
    def source_bucket(self) -> str:
        """Name of the emulated source bucket (the one the rule listens to)."""
        return self.emulation.source_bucket

    @property
    def output_bucket(self) -> str:
        """Name of the emulated output bucket (empty when the job names none)."""
        return self.emulation.output_bucket

    @property
    def state_machine_arn(self) -> str:
        """ARN of the emulated workflow state machine."""
        return self.emulation.state_machine_arn

    @property
    def glue_job_name(self) -> str:
        """Name of the emulated Glue job."""
        return self.emulation.glue_job_name

    @property
    def catalog_database(self) -> Optional[str]:
        """The catalog database the job keeps its table in (None with ``catalog=False``)."""
        return self.emulation.catalog_database

    @property
    def catalog_table(self) -> Optional[str]:
        """The catalog table the job keeps (None with ``catalog=False``)."""
        return self.emulation.catalog_table

    @property
    def event_queue_url(self) -> Optional[str]:
        """URL of the emulated event queue (batching mode; None per object)."""
        return self.emulation.event_queue_url

    @property
    def lost_events(self) -> list[dict[str, Any]]:
        """Events AWS would drop: neither the rule's target nor its dead-letter queue (nor
        the function's on-failure destination, nor the job-state rule's role) admitted
        them."""
        return self._rule.lost_events + self._job_state.lost_events + self._lost

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalPipeline:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the emulation and create the pipeline's resources in it."""
        from moto import mock_aws

        _moto_patches.apply()
        guard_real_endpoints()
        _time.install()
        _time.CLOCK.reset()
        _time.CLOCK.hold()  # virtual time stands still while the test's own code runs
        self._set_environment()
        self._tmp = tempfile.TemporaryDirectory(prefix="event-driven-etl-")
        self._mirror = _spark.BucketMirror(self._work_dir or Path(self._tmp.name) / "s3")
        self._mock = mock_aws(config=cast(Any, _MOTO_CONFIG))
        self._mock.start()
        try:
            self._wire()
        except BaseException:
            self.stop()  # a half-started emulation must not outlive the error
            raise

    def _wire(self) -> None:
        layout = self.layout
        self._s3 = emulated_client("s3")
        self._sqs = SerialClient(emulated_client("sqs"))
        self._sfn = SerialClient(emulated_client("stepfunctions"))
        self._emulation = emulation = provision(layout, sqs=self._sqs)
        self.policies = Policies.from_template(
            layout.resources,
            layout.resolver,
            stack_account=self._stack.account,
            stack_region=self._stack.region,
        )
        access = self._access = AccessGate(layout.resources, layout.resolver, self.policies)
        install_task_gates()
        for machine_id, arn in (
            (layout.machine_id, emulation.state_machine_arn),
            (layout.notifier_id, emulation.notifier_arn),
        ):
            if machine_id and arn:
                TASK_GATES[arn] = access.task_gate(access.role_of(machine_id), _glue_job_arn)
        self._lost: list[dict[str, Any]] = []
        self._rule = _delivery.ObjectCreatedRule(
            emulation,
            access,
            sqs=self._sqs,
            delivery_failures=self.faults.event_delivery_errors,
        )
        self._job_state = _delivery.JobStateRule(
            layout, emulation, access, start_execution=self._sfn.start_execution
        )
        self._glue = GlueEmulator(
            job_name=emulation.glue_job_name,
            script=layout.glue_script,
            glue_version=layout.glue_version,
            runner=self._glue_runner,
            faults=self.faults,
            access=access,
            role=access.role_of(layout.job_id),
            s3=self._s3,
            mirror=self._mirror,
            on_failed=lambda run_id, state, message: self._job_state.run_ended(
                emulation.glue_job_name, run_id, state, message
            ),
            duration=self._run_duration,
            run_script=self._run_glue_script,
            queuing=layout.job_run_queuing,
            timeout=layout.job_timeout,
        )
        glue_hooks.install()
        ACTIVE_JOBS[emulation.glue_job_name] = self._glue
        self._trigger = TriggerFunction(
            layout, emulation, access, self.faults, sqs=self._sqs, lost=self._lost.append
        )

    def stop(self) -> None:
        """Stop the emulation; everything created in it is gone."""
        emulation = self._emulation
        if emulation is not None:
            for machine in (emulation.state_machine_arn, emulation.notifier_arn):
                TASK_GATES.pop(machine or "", None)
            ACTIVE_JOBS.pop(emulation.glue_job_name, None)
        if not ACTIVE_JOBS:
            glue_hooks.uninstall()
        if self._mock is not None:
            if emulation is not None:
                self._wait_quietly()
            with _time.CLOCK.released():
                for worker in self._glue.workers if self._glue else []:
                    worker.join(timeout=30)
            _time.CLOCK.reset()  # what still waits (a timed-out execution's retrier) ends
            self._mock.stop()
            self._mock = None
        self._emulation = None
        for name, value in self._env_saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._env_saved = {}
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _wait_quietly(self) -> None:
        try:
            self._wait_idle(time.monotonic() + 30, 30)
        except Exception:
            return

    def _set_environment(self) -> None:
        fake = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }
        for name, value in fake.items():
            self._env_saved.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        # Set now, before any workflow thread runs: changing os.environ while those threads
        # copy it (to create clients) is a race.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    # ------------------------------------------------------------------ events in

    def put_object(self, key: str, body: bytes, *, bucket: Optional[str] = None) -> dict[str, Any]:
        """Upload into the source bucket and emit its "Object Created" event via EventBridge
        (if the template turns EventBridge on for the bucket).

        The event is realistic: URL-encoded key, a unique sequencer, the ETag, and the
        version id when the bucket is versioned. Returns the event.
        """
        bucket = bucket or self.source_bucket
        response = self._s3.put_object(Bucket=bucket, Key=key, Body=body)
        event = _delivery.object_created(bucket, key, len(body), response)
        if bucket not in self._sends_to_eventbridge:  # the template's answer, read once
            self._sends_to_eventbridge[bucket] = _delivery.sends_to_eventbridge(self.layout, bucket)
        if self._sends_to_eventbridge[bucket]:
            self.send_event(event)
        return event

    def redeliver(self, event: Optional[dict[str, Any]] = None) -> None:
        """Deliver an event again (the last one by default), as EventBridge may."""
        event = event or self._rule.sent[-1]
        self.send_event({**event, "id": str(uuid.uuid4())})

    def send_event(self, event: dict[str, Any]) -> None:
        """Put any event on the bus; the rule decides whether the pipeline sees it.

        EventBridge delivers to the rule's target only if the target's policies let it
        (the function's permission, the queue's policy and key); otherwise the event goes
        to the target's dead-letter queue.
        """
        delivered = self._rule.send(event)
        if delivered and not self.event_queue_url and self.deliver_immediately:
            self._trigger.dispatch_per_object()

    def flush(self) -> None:
        """Deliver everything waiting (in batching mode: the pollers start now, and each
        batch waits the scaled batching window to fill)."""
        if self.event_queue_url:
            self._trigger.dispatch_batches()
        else:
            self._trigger.dispatch_per_object()

    # ------------------------------------------------------------------ results

    def wait_for_runs(self, timeout: float = 60) -> list[Run]:
        """Deliver pending events, let virtual time run until no execution is in flight and
        no Glue run holds a slot, and return all runs.

        ``timeout`` is in real seconds, a guard against a pipeline that never settles (a
        record that keeps failing without a redrive policy; a workflow that waits on
        something the clock does not drive): virtual time runs as fast as the emulation
        can step, so a 3-hour retry budget takes seconds. Raises :class:`TimeoutError` if
        events still wait for the trigger, or executions still run, after ``timeout``
        seconds.
        """
        deadline = time.monotonic() + timeout
        if not self.event_queue_url:
            self._trigger.dispatch_per_object()
        elif not self._trigger.dispatch_batches(deadline):
            raise TimeoutError(
                f"records still in the event queue after {timeout} seconds (without a "
                "redrive policy a record that keeps failing is received for ever)"
            )
        self._wait_idle(deadline, timeout)
        return self.runs()

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass (executions, Glue runs, pollers go on
        meanwhile), then return: e.g. to upload the next objects a minute later."""
        _time.CLOCK.sleep(seconds)

    @property
    def elapsed(self) -> float:
        """Virtual seconds since :meth:`start` (e.g. how long a burst took to drain)."""
        return _time.CLOCK.now()

    def _wait_idle(self, deadline: float, timeout: float) -> None:
        """Until no execution runs and no Glue run is busy; past ``deadline`` (a
        ``time.monotonic()`` value) raise, naming the caller's ``timeout``."""
        machines = [self.state_machine_arn, self.emulation.notifier_arn]
        with _time.CLOCK.released():  # the clock moves while the test's thread waits
            while True:
                running = [
                    execution
                    for machine in machines
                    if machine
                    for execution in executions(self._sfn, machine, "RUNNING")
                ]
                glue_busy = self._glue is not None and self._glue.busy()
                if not running and not glue_busy:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{len(running)} execution(s) still running after {timeout} seconds"
                    )
                time.sleep(0.1)

    def runs(self) -> list[Run]:
        """Every finished execution so far, oldest first."""
        return finished_runs(self._sfn, self._s3, self.state_machine_arn)

    def workflow_waits(self, execution_arn: str) -> list[float]:
        """Each wait of one execution's retriers and Wait states, in seconds as the workflow
        waits them in AWS (interval, backoff, ``MaxDelaySeconds`` and jitter applied), on
        the virtual clock, in order."""
        return _time.waits_of(execution_arn)

    @property
    def notifications(self) -> list[dict[str, Any]]:
        """Parsed JSON messages published to the notification topic, oldest first."""
        return self.emulation.capture.messages

    @property
    def notification_attributes(self) -> list[dict[str, Any]]:
        """The SNS message attributes of each notification (``{"status": ...}``)."""
        return self.emulation.capture.attributes

    @property
    def glue_runs(self) -> list[GlueRun]:
        """Glue job runs that ended so far, with their arguments and outcome."""
        return list(self._glue.runs) if self._glue else []

    @property
    def glue_concurrency_rejections(self) -> int:
        """StartJobRun calls Glue refused because MaxConcurrentRuns runs were running."""
        return self._glue.concurrency_rejections if self._glue else 0

    @property
    def glue_queued_runs(self) -> int:
        """Runs Glue queued (``WAITING``, with job-run queuing) because MaxConcurrentRuns
        runs were running."""
        return self._glue.queued_runs if self._glue else 0

    def _run_duration(self, arguments: dict[str, str]) -> float:
        """How long a run holds its slot: ``glue_run_time``, else the cost model's run time
        for its objects (their count and sizes) on the job's workers."""
        if self._glue_run_seconds is not None:
            return self._glue_run_seconds
        from ..cost import estimate_glue_cost

        uris = objects_of(
            self._s3,
            {
                "objects": json.loads(arguments.get("--objects") or "[]"),
                "manifest": arguments.get("--manifest") or "",
            },
        )
        sizes = []
        for uri in uris:
            bucket, _, key = str(uri).removeprefix("s3://").partition("/")
            try:
                sizes.append(int(self._s3.head_object(Bucket=bucket, Key=key)["ContentLength"]))
            except Exception:  # a missing object: the run fails on it, fast
                sizes.append(0)
        count = max(1, len(sizes))
        estimate = estimate_glue_cost(
            objects_per_day=count,
            object_size_mb=sum(sizes) / count / 1_000_000,
            objects_per_run=count,
            worker_type=self.layout.worker_type,
            number_of_workers=self.layout.number_of_workers,
        )
        return estimate.seconds_per_run

    def output_keys(self) -> list[str]:
        """Keys in the output bucket (manifests excluded), sorted."""
        keys = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.output_bucket):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return sorted(k for k in keys if not k.startswith("manifests/"))

    def read_output_rows(self, prefix: str = "processed/") -> list[dict[str, Any]]:
        """Every row of every Parquet file under ``prefix``, with every column of every file
        (``ingestion_date`` from the partition path).

        Read with pyarrow, not Spark: the files must agree on one type per column, as a
        table reader needs; a column whose type differs between files raises
        ``pyarrow.ArrowTypeError``. Files and folders whose names start with ``_`` or ``.``
        (run reports, the schema file) are not data and are left out, as Athena does.
        """
        self._mirror.pull(self._s3, [self.output_bucket])
        return read_table_rows(self._mirror.folder(self.output_bucket) / prefix)

    def catalog_table_definition(self) -> dict[str, Any]:
        """The output table as the (emulated) Glue Data Catalog holds it (``get_table``)."""

        if not (self.catalog_database and self.catalog_table):
            raise LookupError("this pipeline keeps no catalog table (catalog=False)")
        glue = emulated_client("glue")
        table: dict[str, Any] = glue.get_table(
            DatabaseName=self.catalog_database, Name=self.catalog_table
        )["Table"]
        return table

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run SQL against the output table through its catalog definition, as Athena would
        see it: DuckDB reads the table's location with the catalog's column types and its
        partition column. Name the table as ``<table>`` or ``<database>.<table>``."""
        from ._query import query_table

        table = self.catalog_table_definition()
        self._mirror.pull(self._s3, [self.output_bucket])
        location = str(table["StorageDescriptor"]["Location"])
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        return query_table(
            sql,
            database=str(self.catalog_database),
            table=table,
            folder=self._mirror.folder(bucket) / prefix,
        )

    def fire_alarm(self, name: str) -> bool:
        """Put one of the pipeline's alarms into ALARM: CloudWatch publishes the state change
        to the alarm's actions as ``cloudwatch.amazonaws.com``, and the topic's policy and
        key decide. Returns whether the message was delivered (then it is among the
        :attr:`notifications`). ``name`` is the alarm's construct id, e.g.
        ``"ExecutionsFailedAlarm"``, or its logical id."""
        return _delivery.fire_alarm(self._stack, self.layout, self._access, name)

    def dead_letters(self) -> list[dict[str, Any]]:
        """Messages in the dead-letter queue (consumed by reading)."""
        return [json.loads(b) for b in drain(self._sqs, self.emulation.dead_letter_queue_url)]

    # ------------------------------------------------------------------ fault injection

    def fail_next_glue_run(
        self,
        error: str = "GlueJobFailed",
        cause: str = "injected failure",
        *,
        after_script: bool = False,
        state: str = "FAILED",
    ) -> None:
        """The next Glue run ends FAILED with ``error: cause`` as its error message.

        With ``after_script=True`` the script runs first and writes its output, then the run
        fails (as when Glue loses the driver after the write): a retry must not add rows.
        ``state`` is the run's final state: ``"FAILED"``, ``"TIMEOUT"`` or ``"ERROR"``.
        (The same as ``faults.glue_run_fails``.)
        """
        self.faults.glue_run_fails(error, cause, after_script=after_script, state=state)

    def fail_glue_start(self, error_code: str, times: int = 1) -> None:
        """``faults.glue_start_fails``: StartJobRun fails with ``Glue.<error_code>``."""
        self.faults.glue_start_fails(error_code, times)

    def concurrent_runs_exceeded(self, times: int = 1) -> None:
        """``faults.glue_concurrency_exceeded``: Glue refuses the next StartJobRun calls."""
        self.faults.glue_concurrency_exceeded(times)

    def throttle_start_execution(self, times: int = 1) -> None:
        """``faults.start_execution_throttled``: the trigger's StartExecution is throttled."""
        self.faults.start_execution_throttled(times)

    def slow_start_execution(self, seconds: float, times: int = 1) -> None:
        """``faults.start_execution_slow``: the trigger's StartExecution takes ``seconds``."""
        self.faults.start_execution_slow(seconds, times)

    def crash_trigger_before_start(self, times: int = 1) -> None:
        """``faults.trigger_crashes_before_start``: the invocation dies holding its claims."""
        self.faults.trigger_crashes_before_start(times)

    def run_glue_job_directly(self, arguments: Optional[dict[str, str]] = None) -> str:
        """Start a run of the job outside the workflow (by hand, as from the console);
        return its run id. Its failure reaches the alarm topic through the job-state rule."""

        glue = emulated_client("glue")
        return str(
            glue.start_job_run(JobName=self.glue_job_name, Arguments=arguments or {})["JobRunId"]
        )


def _glue_job_arn(job_name: str) -> str:
    return f"arn:aws:glue:{REGION}:{ACCOUNT}:job/{job_name}"

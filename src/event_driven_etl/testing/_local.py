"""LocalPipeline: run a synthesized EventDrivenEtlPipeline in-process, offline.

What is real: the state machine definition from the template (intrinsics resolved to the
emulated resources), the rules' event patterns and targets, the trigger handler loaded from
its synthesized asset directory, and the Glue script run on local PySpark. moto emulates
S3, SQS, SNS, DynamoDB, the Glue control plane and Data Catalog, and Step Functions'
interpreter; the harness adds one module per service on top (``_s3``, ``_sqs``, ``_sns``,
``_events``, ``_lambda`` and ``_trigger``, ``_glue_emulation``, ``_stepfunctions``,
``_cloudwatch``), IAM (``_iam``: every call checked against the template's policies) and
the virtual clock (``_time``). ``_session`` runs them; this module is the facade.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Optional, Union

from .._contract import DEFAULT_OUTPUT_PREFIX
from . import _cloudwatch
from ._backfill import BackfillEmulator, BackfillResult, BackfillSettings
from ._clients import emulated_client
from ._faults import Faults
from ._glue_emulation import GlueRunner
from ._iam import Policies
from ._layout import PipelineLayout
from ._maintenance import run_maintenance
from ._observation import GlueRun, Run, finished_runs
from ._provision import Emulation
from ._session import Session
from ._sqs import drain
from ._stepfunctions import waits_of
from ._template import StackTemplate, load_from_assembly

if TYPE_CHECKING:
    from aws_cdk import Duration, Stack


class LocalPipeline:
    """A synthesized pipeline running offline, for tests and demos.

    Example::

        with LocalPipeline.from_stack(stack, "Pipeline") as local:
            local.put_object("incoming/a.csv", b"id,name\\n1,x\\n")
            [run] = local.wait_for_runs()
            assert run.status == "SUCCEEDED"

    A facade: the template is read once into a ``PipelineLayout``; a session runs moto
    and one emulation per service, wired to the pipeline; ``faults`` queues what goes wrong.
    """

    layout: PipelineLayout
    """The pipeline as synthesized: ids, names, ARNs and delivery settings."""

    faults: Faults
    """Fault injection: ``local.faults.glue_start_fails("InternalServiceException")`` and
    the other methods of :class:`Faults`."""

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
        key_policies: Optional[Mapping[str, Mapping[str, Any]]] = None,
        bucket_keys: Optional[Mapping[str, str]] = None,
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
        :param work_dir: Folder for the local copies that ``read_output_rows`` and ``query``
            read. Default: - a temporary folder
        :param key_policies: The key policies of KMS keys the template names only by ARN
            (keys you import), as policy documents by key ARN, when they are not AWS's
            default: e.g. the statement a synth warning asked you to add for CloudWatch or
            EventBridge. Default: - AWS's default key policy for each: the account's IAM
            policies decide, and no service principal may use the key
        :param bucket_keys: The SSE-KMS keys of buckets the template names only by name (a
            ``source_bucket`` you bring), as key ARNs by bucket name: reading their objects
            then needs ``kms:Decrypt`` with that key (S3 asks KMS on the reader's behalf), as
            in AWS. Default: - such buckets are taken as SSE-S3 (reads need no key)
        """
        run_seconds = None if glue_run_time is None else glue_run_time.to_seconds()
        if run_seconds is not None and run_seconds <= 0:
            raise ValueError(
                f"glue_run_time must be a positive Duration, got {run_seconds:g} seconds"
            )
        self.layout = PipelineLayout.read(stack, construct_path)
        self._stack, self._construct_path = stack, construct_path.rstrip("/")
        self.faults = Faults()
        self.deliver_immediately = True
        self._session = Session(
            stack,
            self.layout,
            self.faults,
            glue_runner=glue_runner,
            glue_run_seconds=run_seconds,
            run_glue_script=bool(run_glue_script),
            work_dir=Path(work_dir) if work_dir else None,
            key_policies=key_policies,
            bucket_keys=bucket_keys,
        )

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
        return self._session.emulation

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
        session = self._session
        return session.rule.lost_events + session.job_state.lost_events + session.lost

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
        self._session.start()
        self.policies = self._session.policies

    def stop(self) -> None:
        """Stop the emulation; everything created in it is gone."""
        self._session.stop()

    # ------------------------------------------------------------------ events in

    def put_object(
        self, key: str, body: bytes, *, bucket: Optional[str] = None, notify: bool = True
    ) -> dict[str, Any]:
        """Upload into the source bucket and emit its "Object Created" event via EventBridge
        (if the template turns EventBridge on for the bucket).

        The event is realistic: URL-encoded key, a unique sequencer, the ETag, and the
        version id when the bucket is versioned. Returns the event. ``notify=False`` stores
        the object without an event, as if it was there before the pipeline was deployed
        (see :meth:`backfill`).
        """
        event, sent = self._session.uploads.put_object(bucket or self.source_bucket, key, body)
        if sent and notify:
            self.send_event(event)
        return event

    def backfill(
        self, prefix: str = "", reprocess: bool = False, *, timeout: float = 600
    ) -> BackfillResult:
        """Run the pipeline's backfill (``pipeline.backfill`` in the stack) over ``prefix``
        as its state machine would with ``{"prefix": ..., "reprocess": ...}`` (see
        ``_backfill`` for what is emulated); returns the workflow runs it started (a list
        of :class:`Run`, one per batch) with the backfill's ``status``, ``listed``,
        ``batches`` and ``waves``. Raises :class:`BackfillRefusedError` for an
        input the state machine refuses (a prefix outside ``key_prefix``)."""
        settings = BackfillSettings.read(self._stack, self._construct_path)
        session = self._session
        emulator = BackfillEmulator(
            settings,
            s3=session.s3,
            sfn=session.sfn,
            sns=emulated_client("sns"),
            bucket=self.source_bucket,
            manifest_bucket=self.output_bucket,
            workflow_arn=self.state_machine_arn,
            settle=lambda: session.settle(timeout),
        )
        return emulator.run(prefix, reprocess)

    def redeliver(self, event: Optional[dict[str, Any]] = None) -> None:
        """Deliver an event again (the last one by default), as EventBridge may."""
        event = event or self._session.rule.sent[-1]
        self.send_event({**event, "id": str(uuid.uuid4())})

    def send_event(self, event: dict[str, Any]) -> None:
        """Put any event on the bus; the rule decides whether the pipeline sees it.

        EventBridge delivers to the rule's target only if the target's policies let it
        (the function's permission, the queue's policy and key); otherwise the event goes
        to the target's dead-letter queue.
        """
        delivered = self._session.rule.send(event)
        if delivered and not self.event_queue_url and self.deliver_immediately:
            self._session.trigger.dispatch_per_object()

    def flush(self) -> None:
        """Deliver everything waiting (in batching mode: the pollers start now, and each
        batch waits the scaled batching window to fill)."""
        self._session.trigger.flush()

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
        self._session.settle(timeout)
        return self.runs()

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass (executions, Glue runs, pollers go on
        meanwhile), then return: e.g. to upload the next objects a minute later."""
        self._session.clock.sleep(seconds)

    @property
    def elapsed(self) -> float:
        """Virtual seconds since :meth:`start` (e.g. how long a burst took to drain)."""
        return self._session.clock.now()

    def runs(self) -> list[Run]:
        """Every finished execution so far, oldest first."""
        return finished_runs(self._session.sfn, self._session.s3, self.state_machine_arn)

    def workflow_waits(self, execution_arn: str) -> list[float]:
        """Each wait of one execution's retriers and Wait states, in seconds as the workflow
        waits them in AWS (interval, backoff, ``MaxDelaySeconds`` and jitter applied), on
        the virtual clock, in order."""
        return waits_of(execution_arn)

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
        return list(self._session.glue.runs) if self._session.glue else []

    @property
    def glue_concurrency_rejections(self) -> int:
        """StartJobRun calls Glue refused because MaxConcurrentRuns runs were running."""
        return self._session.glue.concurrency_rejections if self._session.glue else 0

    @property
    def glue_queued_runs(self) -> int:
        """Runs Glue queued (``WAITING``, with job-run queuing) because MaxConcurrentRuns
        runs were running."""
        return self._session.glue.queued_runs if self._session.glue else 0

    def output_keys(self) -> list[str]:
        """Keys in the output bucket (manifests excluded), sorted."""
        return self._session.output.keys()

    def read_output_rows(self, prefix: str = DEFAULT_OUTPUT_PREFIX) -> list[dict[str, Any]]:
        """Every row of every Parquet file under ``prefix``, with every column of every file
        (``ingestion_date`` from the partition path).

        Read with pyarrow, not Spark: the files must agree on one type per column, as a
        table reader needs; a column whose type differs between files raises
        ``pyarrow.ArrowTypeError``. Files and folders whose names start with ``_`` or ``.``
        (run reports, the schema file) are not data and are left out, as Athena does.
        With ``TableFormat.ICEBERG``, the rows of the table's current snapshot (read by
        pyiceberg from the table's current metadata; no ``ingestion_date``).
        """
        return self._session.output.rows(prefix)

    def catalog_table_definition(self, name: Optional[str] = None) -> dict[str, Any]:
        """The output table as the (emulated) Glue Data Catalog holds it (``get_table``);
        with table routing, ``name`` picks one of the pipeline's tables."""
        return self._session.output.table_definition(name)

    def catalog_tables(self) -> list[str]:
        """The names of the tables in the pipeline's catalog database, sorted: its one table,
        or each table it routes objects to (once the table's first data landed)."""
        return sorted(str(t["Name"]) for t in self._session.output.table_definitions())

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run SQL against the output table through its catalog definition, as Athena would
        see it: DuckDB reads the table's location with the catalog's column types and its
        partition column (an Iceberg table: pyiceberg reads its current snapshot from the
        catalog's ``metadata_location``, and ``<table> VERSION AS OF <snapshot id>`` and
        metadata tables such as ``<table>.snapshots`` work). Name the table as ``<table>`` or
        ``<database>.<table>``; with table routing every table of the catalog database is
        there (a query may join them)."""
        return self._session.output.query(sql)

    def run_maintenance(self, *, now: Optional[datetime] = None) -> dict[str, Any]:
        """Run the Iceberg table's maintenance (``table_maintenance``) now, as its Glue
        schedule would: the maintenance script on local Spark, its catalog and S3 calls
        checked as the maintenance job's role. Its "now" (which its cut-offs count back
        from) is ``now``, else the virtual clock's, so :meth:`advance` ages batches,
        snapshots and files; the job's own timestamps (``_ingested_at``, commits, file
        times) are the wall clock's. Returns what each of Iceberg's procedures did
        (``rewrite_data_files``, ``expire_snapshots``, ``remove_orphan_files``). A run that
        fails raises its error after its FAILED state change went to the maintenance job's
        rule, whose notifier publishes it on the notification topic (:meth:`wait_for_runs`
        lets it finish)."""
        moment = now or datetime.fromtimestamp(self._session.clock.epoch(), timezone.utc)
        session = self._session
        return run_maintenance(
            self.layout,
            session.access,
            now=moment,
            on_failed=session.job_state.maintenance_run_ended,
        )

    def fire_alarm(self, name: str) -> bool:
        """Put one of the pipeline's alarms into ALARM: CloudWatch publishes the state change
        to the alarm's actions as ``cloudwatch.amazonaws.com``, and the topic's policy and
        key decide. Returns whether the message was delivered (then it is among the
        :attr:`notifications`). ``name`` is the alarm's construct id, e.g.
        ``"ExecutionsFailedAlarm"``, or its logical id."""
        stack = self._session.stack
        return _cloudwatch.fire_alarm(stack, self.layout, self._session.access, name)

    def dead_letters(self) -> list[dict[str, Any]]:
        """Messages in the dead-letter queue (consumed by reading)."""
        queue_url = self.emulation.dead_letter_queue_url
        return [json.loads(b) for b in drain(self._session.sqs, queue_url)]

    # ------------------------------------------------------------------ faults and runs by hand

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
        (The same as ``faults.glue_run_fails``; the other faults are under :attr:`faults`.)
        """
        self.faults.glue_run_fails(error, cause, after_script=after_script, state=state)

    def run_glue_job_directly(self, arguments: Optional[dict[str, str]] = None) -> str:
        """Start a run of the job outside the workflow (by hand, as from the console);
        return its run id. Its failure reaches the alarm topic through the job-state rule."""
        glue = emulated_client("glue")
        run = glue.start_job_run(JobName=self.glue_job_name, Arguments=arguments or {})
        return str(run["JobRunId"])

"""One offline run of a pipeline: moto's mock and everything the emulation hangs on it.

:class:`Session` installs the process-wide patches (:func:`fix_moto`, for the moto versions
the fixes were written against; each service's own hooks), sets fake credentials for its
duration, holds the virtual clock while the test's code runs, starts moto's mock, creates
the pipeline's resources (``_provision``) and wires the emulated services to them: IAM
(``_iam``), S3's events (``_s3``), EventBridge (``_events``), Glue (``_glue_emulation``),
the trigger function (``_trigger``). While it runs, its state machines' task gates and its
Glue job are registered in the process-wide registries the patches read
(``_stepfunctions.TASK_GATES``, ``_glue_emulation.ACTIVE_JOBS``). :meth:`Session.stop`
undoes all of it. ``LocalPipeline`` is the facade over one session.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, cast

from . import _glue_emulation, _sqs, _stepfunctions
from ._clients import SerialClient, emulated_client, guard_real_endpoints
from ._events import JobStateRule, ObjectCreatedRule
from ._faults import Faults
from ._glue_emulation import ACTIVE_JOBS, GlueEmulator, GlueRunner, glue_hooks, modelled_duration
from ._iam import AccessGate, Policies
from ._iam.gate import glue_job_arn
from ._layout import PipelineLayout
from ._observation import executions
from ._output import OutputReader
from ._provision import Emulation, provision
from ._s3 import SourceUploads
from ._spark import BucketMirror
from ._stepfunctions import TASK_GATES
from ._template import REGION, StackTemplate
from ._time import CLOCK, VirtualClock
from ._trigger import EmulatedTrigger
from ._webhdfs import S3Gateway

PATCHED_MOTO_VERSIONS = frozenset({"5.2.5"})
"""moto versions the fixes of ``fix_moto`` are known to fix."""

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
"""Set in ``os.environ`` while a session runs: nothing can reach a real account."""

_MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}}
_fixed = False


def fix_moto() -> bool:
    """Apply each service's fixes of moto (``_stepfunctions``, ``_glue_emulation``,
    ``_sqs``) once; return whether they are in effect. On a moto version not in
    :data:`PATCHED_MOTO_VERSIONS` they are skipped (newer versions may have fixed the bugs)."""
    global _fixed  # noqa: PLW0603 - patches are process-wide by nature
    if _fixed:
        return True
    import moto

    if moto.__version__ not in PATCHED_MOTO_VERSIONS:
        return False
    _stepfunctions.fix_moto()
    _glue_emulation.fix_moto()
    _sqs.fix_moto()
    _fixed = True
    return True


class Session:
    """The emulated services of one pipeline, from :meth:`start` to :meth:`stop`."""

    clock: VirtualClock = CLOCK
    """The virtual clock (one per process: moto's interpreter is process-wide)."""

    def __init__(
        self,
        stack: StackTemplate,
        layout: PipelineLayout,
        faults: Faults,
        *,
        glue_runner: Optional[GlueRunner],
        glue_run_seconds: Optional[float],
        run_glue_script: bool,
        work_dir: Optional[Path],
        key_policies: Optional[Mapping[str, Mapping[str, Any]]] = None,
        bucket_keys: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.stack = stack
        self._key_policies = dict(key_policies or {})
        self._bucket_keys = dict(bucket_keys or {})
        self._layout = layout
        self._faults = faults
        self._glue_runner = glue_runner
        self._glue_run_seconds = glue_run_seconds
        self._run_glue_script = run_glue_script
        self._work_dir = work_dir
        self._emulation: Optional[Emulation] = None
        self._mock: Any = None
        self._env_saved: dict[str, Optional[str]] = {}
        self._tmp: Optional[tempfile.TemporaryDirectory[str]] = None
        self.glue: Optional[GlueEmulator] = None
        self.gateway: Optional[S3Gateway] = None

    @property
    def emulation(self) -> Emulation:
        """Where each resource is in the emulated services."""
        if self._emulation is None:
            raise RuntimeError("the pipeline is not running: use it in a `with` block")
        return self._emulation

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        """Patch, set the environment, start moto and wire the services to the pipeline."""
        from moto import mock_aws

        fix_moto()
        guard_real_endpoints()
        _stepfunctions.install()
        self._reset_clock()
        self.clock.hold()  # virtual time stands still while the test's own code runs
        self._set_environment()
        self._tmp = tempfile.TemporaryDirectory(prefix="event-driven-etl-")
        self.mirror = BucketMirror(self._work_dir or Path(self._tmp.name) / "s3")
        self._mock = mock_aws(config=cast(Any, _MOTO_CONFIG))
        self._mock.start()
        self.gateway = S3Gateway(emulated_client("s3"))
        self.gateway.start()
        try:
            self._wire()
            self._register()
        except BaseException:
            self.stop()  # a half-started emulation must not outlive the error
            raise

    def _reset_clock(self) -> None:
        self.clock.reset()
        _stepfunctions.forget_waits()

    def _set_environment(self) -> None:
        for name, value in FAKE_CREDENTIALS.items():
            self._env_saved.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        # Set now, before any workflow thread runs: changing os.environ while those threads
        # copy it (to create clients) is a race.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    def _wire(self) -> None:
        layout = self._layout
        self.s3 = emulated_client("s3")
        self.sqs = SerialClient(emulated_client("sqs"))
        self.sfn = SerialClient(emulated_client("stepfunctions"))
        self._emulation = emulation = provision(layout, sqs=self.sqs)
        self.policies = Policies.from_template(
            layout.resources,
            layout.resolver,
            stack_account=self.stack.account,
            stack_region=self.stack.region,
        )
        for key_arn, document in self._key_policies.items():
            self.policies.declare_key_policy(key_arn, document)
        self.access = access = AccessGate(layout.resources, layout.resolver, self.policies)
        # A brought bucket is not in the template: its key is what the user declares.
        access.bucket_keys.update(self._bucket_keys)
        self.lost: list[dict[str, Any]] = []
        self.rule = ObjectCreatedRule(
            emulation, access, sqs=self.sqs, delivery_failures=self._faults.event_delivery_errors
        )
        self.job_state = JobStateRule(
            layout, emulation, access, start_execution=self.sfn.start_execution
        )
        self.glue = self._glue_emulator(emulation, access)
        self.trigger = EmulatedTrigger(
            layout, emulation, access, self._faults, sqs=self.sqs, lost=self.lost.append
        )
        self.uploads = SourceUploads(layout, self.s3)
        self.output = OutputReader(
            self.s3,
            self.mirror,
            bucket=emulation.output_bucket,
            catalog_database=emulation.catalog_database,
            catalog_table=emulation.catalog_table,
        )

    def _running_gateway(self) -> S3Gateway:
        if self.gateway is None:  # pragma: no cover - started before the services are wired
            raise RuntimeError("the S3 gateway is not running")
        return self.gateway

    def _glue_emulator(self, emulation: Emulation, access: AccessGate) -> GlueEmulator:
        layout = self._layout
        return GlueEmulator(
            job_name=emulation.glue_job_name,
            script=layout.glue_script,
            glue_version=layout.glue_version,
            runner=self._glue_runner,
            faults=self._faults,
            access=access,
            role=access.role_of(layout.job_id),
            s3=self.s3,
            gateway=self._running_gateway(),
            on_failed=lambda run_id, state, message: self.job_state.run_ended(
                emulation.glue_job_name, run_id, state, message
            ),
            duration=modelled_duration(
                self.s3,
                worker_type=layout.worker_type,
                number_of_workers=layout.number_of_workers,
                fixed_seconds=self._glue_run_seconds,
            ),
            run_script=self._run_glue_script,
            queuing=layout.job_run_queuing,
            timeout=layout.job_timeout,
        )

    def _register(self) -> None:
        """Enter the process-wide registries: the state machines' task gates, the job."""
        layout, emulation, access = self._layout, self.emulation, self.access
        for machine_id, arn in (
            (layout.machine_id, emulation.state_machine_arn),
            (layout.notifier_id, emulation.notifier_arn),
            (layout.maintenance_notifier_id, emulation.maintenance_notifier_arn),
        ):
            if machine_id and arn:
                gate = access.task_gate(access.role_of(machine_id), glue_job_arn)
                TASK_GATES[arn] = self._faults.failing_tasks(gate)
        glue_hooks.install()
        if self.glue is not None:
            ACTIVE_JOBS[emulation.glue_job_name] = self.glue

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        """Stop moto (everything created in it is gone) and undo what :meth:`start` did."""
        self._unregister()
        if self._mock is not None:
            if self._emulation is not None:
                self._wait_quietly()
            with self.clock.released():
                for worker in self.glue.workers if self.glue else []:
                    worker.join(timeout=30)
            self._reset_clock()  # what still waits (a timed-out execution's retrier) ends
            self._mock.stop()
            self._mock = None
        if self.gateway is not None:
            self.gateway.stop()
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

    def _unregister(self) -> None:
        emulation = self._emulation
        if emulation is not None:
            for machine in (
                emulation.state_machine_arn,
                emulation.notifier_arn,
                emulation.maintenance_notifier_arn,
            ):
                TASK_GATES.pop(machine or "", None)
            ACTIVE_JOBS.pop(emulation.glue_job_name, None)
        if not ACTIVE_JOBS:
            glue_hooks.uninstall()

    def _wait_quietly(self) -> None:
        try:
            self.wait_idle(time.monotonic() + 30, 30)
        except Exception:
            return

    # ------------------------------------------------------------------ waiting

    def settle(self, timeout: float) -> None:
        """Deliver pending events, then :meth:`wait_idle`; ``timeout`` in real seconds."""
        deadline = time.monotonic() + timeout
        if not self.trigger.flush(deadline):
            raise TimeoutError(
                f"records still in the event queue after {timeout} seconds (without a "
                "redrive policy a record that keeps failing is received for ever)"
            )
        self.wait_idle(deadline, timeout)

    def wait_idle(self, deadline: float, timeout: float) -> None:
        """Until no execution runs and no Glue run is busy; past ``deadline`` (a
        ``time.monotonic()`` value) raise, naming the caller's ``timeout``."""
        emulation = self.emulation
        machines = [
            emulation.state_machine_arn,
            emulation.notifier_arn,
            emulation.maintenance_notifier_arn,
        ]
        with self.clock.released():  # the clock moves while the test's thread waits
            while True:
                glue_busy = self.glue is not None and self.glue.busy()
                if not self._any_running(machines) and not glue_busy:
                    return
                if time.monotonic() > deadline:
                    running = sum(
                        e["status"] == "RUNNING"
                        for machine in machines
                        if machine
                        for e in executions(self.sfn, machine)
                    )
                    raise TimeoutError(
                        f"{running} execution(s) still running after {timeout} seconds"
                    )
                time.sleep(0.1)

    def _any_running(self, machines: list[Optional[str]]) -> bool:
        """Whether an execution of ``machines`` runs: one page, not every running execution
        (paging through thousands ten times a second would cost real time, and a page token
        of moto's status-filtered listing fails once its last execution has ended)."""
        return any(
            self.sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING", maxResults=1)[
                "executions"
            ]
            for machine in machines
            if machine
        )

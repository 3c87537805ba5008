"""The Glue control plane as LocalPipeline needs it, on top of moto's.

moto records job runs but never runs anything; these hooks route ``StartJobRun`` of a job
owned by an active LocalPipeline to that pipeline, which runs the script, and let a run's
state be set (moto's own runs advance their state on every read).

A run holds its concurrency slot for a modelled duration on the virtual clock
(``glue_run_time``, by default :class:`event_driven_etl.cost.RunProfile`'s estimate for the
run's input), whatever the local Spark run took: the script runs at the start of the slot
and takes no virtual time (``_time``). With job-run queuing, a run over
``MaxConcurrentRuns`` waits (``WAITING``) for a slot instead of being refused, oldest first:
"Jobs may enter the WAITING state if you opt into AWS Glue job run queuing ... Max concurrent
job runs per job exceeded (including ... the job limit you specified with
MaxConcurrentRuns)" (https://docs.aws.amazon.com/glue/latest/dg/job-run-statuses.html).

Its patches of moto: :data:`glue_hooks` (installed while a pipeline runs) and one fix of
moto 5.2.5 (:func:`fix_moto`): its ``UpdateTable`` ignores ``VersionId``, where AWS refuses
an update whose ``VersionId`` is not the table's current version
(``ConcurrentModificationException``); two runs that evolve the table at once must meet
that refusal offline too.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional, Protocol

from .._contract import MANIFEST_ARGUMENT, OBJECTS_ARGUMENT
from . import _iceberg, _spark
from ._faults import FAILED_RUN_STATES, Faults, GlueFailure
from ._iam import AccessGate, Principal, RoleClient
from ._observation import GlueRun, objects_of
from ._template import ACCOUNT, REGION
from ._time import CLOCK, GLUE_RUN_ENDED
from ._webhdfs import S3Gateway


def fix_moto() -> None:
    """Apply the fix (``_session.fix_moto`` applies it once, on a known moto)."""
    _patch_glue_update_table_version()


def _patch_glue_update_table_version() -> None:
    from moto.glue import responses
    from moto.glue.exceptions import GlueClientError

    original = responses.GlueResponse.update_table
    # The check and the update are one step, as in Glue: two updates from the same version
    # (Iceberg commits through moto's server, on its request threads) cannot both pass.
    lock = threading.Lock()

    def update_table(self: Any) -> Any:
        version = self.parameters.get("VersionId")
        with lock:
            if version is not None:
                name = self.parameters["TableInput"]["Name"]
                table = self.glue_backend.get_table(self.parameters["DatabaseName"], name)
                if str(version) != str(table._current_version):
                    raise GlueClientError(
                        "ConcurrentModificationException",
                        f"table {name} is at version {table._current_version}, not {version}",
                    )
            return original(self)

    responses.GlueResponse.update_table = update_table  # type: ignore[method-assign]  # moto's own


class GlueRunOwner(Protocol):
    def start_glue_run(
        self, original: Callable[..., str], job: Any, kwargs: dict[str, Any]
    ) -> str: ...


ACTIVE_JOBS: dict[str, GlueRunOwner] = {}
"""Glue job name -> the LocalPipeline that runs its job runs."""


class GlueHooks:
    """Route moto's Glue StartJobRun for jobs of an active LocalPipeline to that pipeline."""

    def __init__(self) -> None:
        self._original_start: Optional[Callable[..., str]] = None
        self._original_as_dict: Optional[Callable[..., dict[str, Any]]] = None

    def install(self) -> None:
        if self._original_start is not None:
            return
        from moto.glue import models

        original_start = models.FakeJob.start_job_run
        original_as_dict = models.FakeJobRun.as_dict
        self._original_start, self._original_as_dict = original_start, original_as_dict

        def start_job_run(job: Any, **kwargs: Any) -> str:
            owner = ACTIVE_JOBS.get(job.name)
            if owner is None:
                return str(original_start(job, **kwargs))
            return owner.start_glue_run(original_start, job, kwargs)

        def as_dict(run: Any) -> dict[str, Any]:
            data = original_as_dict(run)
            if getattr(run, "error_message", None):
                data["ErrorMessage"] = run.error_message
            return data

        setattr(models.FakeJob, "start_job_run", start_job_run)  # noqa: B010 - patching moto
        setattr(models.FakeJobRun, "as_dict", as_dict)  # noqa: B010

    def uninstall(self) -> None:
        if self._original_start is None:
            return
        from moto.glue import models

        setattr(models.FakeJob, "start_job_run", self._original_start)  # noqa: B010
        setattr(models.FakeJobRun, "as_dict", self._original_as_dict)  # noqa: B010
        self._original_start = self._original_as_dict = None


glue_hooks = GlueHooks()

_SCRIPT_THREADS: dict[int, Callable[[str, Any], Any]] = {}
"""Thread running a Glue script -> what wraps the boto3 clients it makes."""
_script_lock = threading.Lock()
_script_clients_installed = False


def install_script_clients() -> None:
    """Patch boto3 once: a client made on a thread that runs a Glue script is wrapped for
    that run (concurrent runs each register their own thread)."""
    global _script_clients_installed  # noqa: PLW0603 - one patch per process
    with _script_lock:
        if _script_clients_installed:
            return
        import boto3.session

        original = boto3.session.Session.client

        def client(session: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
            made = original(session, service_name, *args, **kwargs)
            with _script_lock:
                wrap = _SCRIPT_THREADS.get(threading.get_ident())
            return made if wrap is None else wrap(service_name, made)

        boto3.session.Session.client = client
        _script_clients_installed = True


_held_class: Optional[type] = None


def held_job_run_class() -> type:
    """moto's FakeJobRun whose state changes only when set (moto's advances on each read)."""
    global _held_class  # noqa: PLW0603 - made once, lazily, because moto is optional
    if _held_class is None:
        from moto.glue.models import FakeJobRun

        class HeldJobRun(FakeJobRun):
            @property
            def status(self) -> str:
                return str(self.__dict__.get("_held_status", "RUNNING"))

            @status.setter
            def status(self, value: str) -> None:
                self.__dict__["_held_status"] = value

        _held_class = HeldJobRun
    return _held_class


GlueRunner = Callable[[Path, dict[str, str]], None]
"""Runs a Glue script with its job arguments; raising marks the run FAILED."""

JobFailed = Callable[[str, str, str], None]
"""Called with (run id, final state, message) when a run ends other than SUCCEEDED."""


class _PendingRun(NamedTuple):
    """A run StartJobRun created: what its thread needs once it holds a slot."""

    fake_run: Any
    run_id: str
    arguments: dict[str, str]
    failure: Optional[GlueFailure]


RunDuration = Callable[[dict[str, str]], float]
"""A run's arguments -> how long (virtual seconds) it holds its slot."""


class GlueEmulator:
    """The job's runs: started by moto's StartJobRun (through :data:`glue_hooks`), each on a
    thread of its own like Glue runs, holding a slot of ``MaxConcurrentRuns`` for
    ``duration(arguments)`` virtual seconds (queued first, with job-run queuing, while every
    slot is taken), with the job role's S3 access checked on what they read and write, and
    their script run on local Spark (or by ``runner``; not at all with ``run_script=False``)."""

    def __init__(
        self,
        *,
        job_name: str,
        script: Path,
        glue_version: str,
        runner: Optional[GlueRunner],
        faults: Faults,
        access: AccessGate,
        role: Principal,
        s3: Any,
        gateway: S3Gateway,
        on_failed: JobFailed,
        duration: RunDuration,
        run_script: bool = True,
        queuing: bool = False,
        timeout: float = 2880 * 60,
    ) -> None:
        self.job_name = job_name
        self._script = script
        self._glue_version = glue_version
        self._runner = runner
        self._faults = faults
        self._access = access
        self._role = role
        self._s3 = s3
        self._gateway = gateway
        self._on_failed = on_failed
        self._duration = duration
        self._run_script_at_all = run_script
        self._queuing = queuing
        self._timeout = timeout
        self._lock = threading.RLock()
        self._queue: deque[_PendingRun] = deque()
        """Queued runs (WAITING), oldest first."""
        self.runs: list[GlueRun] = []
        """Every run that ended, in the order they ended."""
        self.workers: list[threading.Thread] = []
        self.concurrency_rejections = 0
        """StartJobRun calls Glue refused because MaxConcurrentRuns runs were running."""
        self.queued_runs = 0
        """Runs Glue queued (WAITING) because MaxConcurrentRuns runs were running."""

    def busy(self) -> bool:
        with self._lock:
            return bool(self._queue) or any(w.is_alive() for w in self.workers)

    def start_glue_run(self, original: Callable[..., str], job: Any, kwargs: dict[str, Any]) -> str:
        from moto.core.exceptions import JsonRESTError

        # One StartJobRun at a time: moto counts the running runs, then adds one; two calls
        # in between would both pass the limit.
        with self._lock:
            if self._faults.glue_start_errors:
                code = self._faults.glue_start_errors.popleft()
                raise JsonRESTError(code, f"{code} (injected by LocalPipeline)")
            failure = self._faults.glue_failures.popleft() if self._faults.glue_failures else None
            queued = False
            try:
                run_id = str(original(job, **kwargs))
            except Exception as error:
                if type(error).__name__ != "ConcurrentRunsExceededException":
                    raise
                if not self._queuing:
                    self.concurrency_rejections += 1
                    raise
                run_id, queued = self._start_queued(original, job, kwargs), True
            fake_run = next(r for r in job.job_runs if r.job_run_id == run_id)
            fake_run.__class__ = held_job_run_class()  # its state is ours to set, not moto's
            fake_run.status = "WAITING" if queued else "RUNNING"
            arguments = {str(k): str(v) for k, v in (fake_run.arguments or {}).items()}
            run = _PendingRun(fake_run, run_id, arguments, failure)
            if queued:
                # A queued run takes no thread until a slot frees (thousands may wait).
                self.queued_runs += 1
                self._queue.append(run)
                return run_id
            worker = self._worker(run)
        worker.start()
        return run_id

    def _worker(self, run: _PendingRun) -> threading.Thread:
        """Under the lock: the thread of a run that holds a slot from now. The run goes on
        after StartJobRun returns, as on Glue: while it runs it counts against the job's
        MaxConcurrentRuns, so a burst really meets Glue's limit."""
        run.fake_run.status = "RUNNING"
        worker = CLOCK.thread(self._serve_slot, args=(run,), name=f"glue-slot-{run.run_id[:12]}")
        self.workers.append(worker)
        return worker

    def _serve_slot(self, run: _PendingRun) -> None:
        """A slot's thread runs its run, then each queued run the freed slot passes to, one
        after another: a thread per slot, not per run. A new thread per successor briefly
        overlapped the ending one, so a burst's peak of threads depended on how many runs
        ended at one virtual moment."""
        successor: Optional[_PendingRun] = run
        while successor is not None:
            successor = self._finish(successor)

    @staticmethod
    def _start_queued(original: Callable[..., str], job: Any, kwargs: dict[str, Any]) -> str:
        """moto has no queuing: create the run past its limit (it waits, not counted)."""
        limit = job.execution_property.get("MaxConcurrentRuns", 1)
        job.execution_property["MaxConcurrentRuns"] = float("inf")
        try:
            return str(original(job, **kwargs))
        finally:
            job.execution_property["MaxConcurrentRuns"] = limit

    def _finish(self, run: _PendingRun) -> Optional[_PendingRun]:
        """Run ``run`` to its end; the oldest queued run, now holding the freed slot, or None."""
        fake_run, run_id, arguments, failure = run
        duration = self._duration(arguments)
        ends_at = CLOCK.now() + min(duration, self._timeout)
        status, message = "SUCCEEDED", None
        written: list[str] = []
        if self._run_script_at_all and (failure is None or failure.after_script):
            try:
                self._check_reads(arguments)
                written = self._run_script(arguments, run_id)
            except Exception as error:
                status, message = "FAILED", f"{type(error).__name__}: {error}"
        if failure is not None and status == "SUCCEEDED":
            status, message = failure.state, f"{failure.error}: {failure.cause}"
        if duration > self._timeout and status == "SUCCEEDED":  # Glue stops it at Timeout
            minutes = self._timeout / 60
            status, message = "TIMEOUT", f"Job run timed out after {minutes:g} minutes"
        CLOCK.sleep_until(ends_at)  # the slot is held for the modelled run time
        fake_run.error_message = message
        successor = None
        with self._lock:
            self.runs.append(GlueRun(run_id, arguments, status, message, written))
            fake_run.status = status
            if self._queue:  # the freed slot goes to the oldest queued run
                successor = self._queue.popleft()
                successor.fake_run.status = "RUNNING"
        GLUE_RUN_ENDED.pulse(run_id)  # after its status: its .sync task finds it final
        if status in FAILED_RUN_STATES:
            self._on_failed(run_id, status, message or "")
        return successor

    def _check_reads(self, arguments: dict[str, str]) -> None:
        """The objects of the run (and its manifest), read as the job's role."""
        manifest = arguments.get(MANIFEST_ARGUMENT) or ""
        if manifest:
            bucket, _, key = manifest.removeprefix("s3://").partition("/")
            self._access.check_s3(self._role, "s3:GetObject", bucket, key)
        inline = json.loads(arguments.get(OBJECTS_ARGUMENT) or "[]")
        for uri in objects_of(self._s3, {"objects": inline, "manifest": manifest}):
            bucket, _, key = str(uri).removeprefix("s3://").partition("/")
            self._access.check_s3(self._role, "s3:GetObject", bucket, key)

    @contextmanager
    def _clients_as_role(self) -> Iterator[None]:
        """The boto3 clients the script makes (on this thread) act as the job's role: its
        catalog and S3 calls are checked like its reads and writes through Spark."""
        install_script_clients()
        thread = threading.get_ident()
        with _script_lock:
            _SCRIPT_THREADS[thread] = lambda service, client: (
                client
                if (check := self._access.client_call_check(self._role, service)) is None
                else RoleClient(client, check)
            )
        try:
            yield
        finally:
            with _script_lock:
                _SCRIPT_THREADS.pop(thread, None)

    def _run_script(self, arguments: dict[str, str], run_id: str) -> list[str]:
        """Run the script; return the URIs it wrote (and did not delete again)."""
        if self._runner is not None:
            with self._clients_as_role():
                self._runner(self._script, arguments)
            return []
        _spark.check_spark_line(self._glue_version)
        # Glue adds its own arguments before the job's: scripts must parse them as Glue does.
        arguments = {
            "--JOB_ID": f"j_{self.job_name}",
            "--JOB_RUN_ID": run_id,
            "--JOB_NAME": self.job_name,
            "--TempDir": f"s3://aws-glue-assets-{ACCOUNT}-{REGION}/temporary/",
            "--job-bookmark-option": "job-bookmark-disable",
            **arguments,
        }
        buckets = [b["Name"] for b in self._s3.list_buckets().get("Buckets", [])]
        with _spark._lock:
            spark = _spark.spark_session()
            for bucket in buckets:
                _spark.mount_bucket(spark, bucket, self._gateway.uri(bucket))
            # Every Hadoop file system call of the run reaches S3 only if the role may make it.
            with (
                self._gateway.acting_as(self._authorize) as written,
                self._clients_as_role(),
                self._iceberg(spark, arguments),
            ):
                _spark.run_script(self._script, arguments)
        return sorted(written)

    def _authorize(self, action: str, bucket: str, key: str) -> None:
        """One S3 request of the run's Hadoop file system, as the job's role makes it."""
        if action == "s3:ListBucket":
            self._access.check_s3_list(self._role, bucket, key)
        elif action == "s3:HeadObject":
            self._access.check_s3_head(self._role, bucket, key)
        else:
            self._access.check_s3(self._role, action, bucket, key)

    def _iceberg(self, spark: Any, arguments: dict[str, str]) -> Any:
        """With Glue's native Iceberg on, the job's ``glue_catalog`` on the emulated services,
        its calls checked as the job's role (``_iceberg``)."""
        if not _iceberg.uses_iceberg(arguments):
            return nullcontext()
        return _iceberg.iceberg_run(
            spark, arguments, lambda service: self._access.client_call_check(self._role, service)
        )


def modelled_duration(
    s3: Any, *, worker_type: str, number_of_workers: int, fixed_seconds: Optional[float]
) -> RunDuration:
    """How long a run holds its slot: ``fixed_seconds`` (``glue_run_time``), else the cost
    model's run time for its objects (their count and sizes) on the job's workers."""

    def duration(arguments: dict[str, str]) -> float:
        if fixed_seconds is not None:
            return fixed_seconds
        from ..cost import estimate_glue_cost

        sizes = _object_sizes(s3, arguments)
        count = max(1, len(sizes))
        estimate = estimate_glue_cost(
            objects_per_day=count,
            object_size_mb=sum(sizes) / count / 1_000_000,
            objects_per_run=count,
            worker_type=worker_type,
            number_of_workers=number_of_workers,
        )
        return estimate.seconds_per_run

    return duration


def _object_sizes(s3: Any, arguments: dict[str, str]) -> list[int]:
    uris = objects_of(
        s3,
        {
            "objects": json.loads(arguments.get(OBJECTS_ARGUMENT) or "[]"),
            "manifest": arguments.get(MANIFEST_ARGUMENT) or "",
        },
    )
    sizes = []
    for uri in uris:
        bucket, _, key = str(uri).removeprefix("s3://").partition("/")
        try:
            sizes.append(int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"]))
        except Exception:  # a missing object: the run fails on it, fast
            sizes.append(0)
    return sizes

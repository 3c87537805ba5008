"""One run of a batch at a time: a lease naming the Glue run of the batch now going.

Every claim, lock and file of a batch is named by its batch id, which every run of the batch
shares (a retry, a redrive), and the job relies on those runs never overlapping: a run
re-claims its batch's marks as its own, takes its batch's lock at once and replaces its
batch's files. Two runs of one batch can still overlap: the workflow retries ``StartJobRun``
on Glue's internal errors, and StartJobRun takes no idempotency token, so a run may have
started when its first answer was lost
(https://docs.aws.amazon.com/glue/latest/webapi/API_StartJobRun.html); a duplicate run of
the same input has the same batch id too. The second run, taking over claims the first still
holds, would withdraw the batch's files while the first marks its objects landed: landed by
mark, missing from the table.

So before anything else a run takes ``<output>_runs/_active/<batch_id>.json``
(:data:`~event_driven_etl._contract.BATCH_RUNS_DIR`) as its Glue run (``--JOB_RUN_ID``),
with the batch lock's conditional writes (``batch_lock.take_lock``), and frees it when it
ends, failed or not. A run that finds it held by another run asks Glue how that run is
(``glue:GetJobRun`` on the job, which the job's role may call on its own job): one that
ended (``SUCCEEDED``, ``FAILED``, ``ERROR``, ``EXPIRED``, or gone) left it held by crashing,
and the lease is taken over at once, as it is from one Glue stopped (``TIMEOUT``,
``STOPPED``) once its teardown margin passed; one still going is waited for (jittered
looks, at most 10 s apart), and this run then runs as that run's re-run. The
lease also lapses after the claims' (the job timeout plus margins): a run whose state Glue
cannot tell is then taken over. A run outside Glue (no ``--JOB_RUN_ID``: a local run, the
tests) cannot ask: it takes the lease at once, as runs of one process run one batch at a
time.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

from .arguments import JobArgs
from .batch_lock import LockState, Waiter, take_lock
from .landed import TEARDOWN_MARGIN
from .mark_store import MarkStore
from .shared import contract

RUN_ENDED_STATES = frozenset({"SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR", "EXPIRED"})
"""Glue's ``JobRunState`` values of a run that has ended
(https://docs.aws.amazon.com/glue/latest/dg/job-run-statuses.html)."""

STOPPED_BY_GLUE_STATES = frozenset({"TIMEOUT", "STOPPED"})
"""Ended states of a run Glue stopped (its timeout, a ``BatchStopJobRun``): its driver may go
on for a few minutes while Glue tears it down, so it counts as ended only
:data:`TEARDOWN_MARGIN` after Glue's ``CompletedOn``."""

RunEnded = Callable[[str], bool]
"""Whether the Glue run with this id has ended."""


def batch_run_uri(output: str, batch_id: str) -> str:
    return f"{output}{contract.BATCH_RUNS_DIR}/{batch_id}.json"


def glue_run_ended(
    job_name: str,
    region: Optional[str] = None,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> RunEnded:
    """Ask Glue (``GetJobRun``) whether a run of ``job_name`` has ended (one Glue stopped:
    :data:`TEARDOWN_MARGIN` ago); a run Glue no longer knows has. The client is made on
    the first question (most runs find their batch's lease free and ask none)."""
    clients: list[Any] = []

    def ended(run_id: str) -> bool:
        if not clients:
            import boto3  # in Glue's runtime

            clients.append(boto3.client("glue", region_name=region or None))
        client = clients[0]
        try:
            run = client.get_job_run(JobName=job_name, RunId=run_id)
        except client.exceptions.EntityNotFoundException:
            return True
        state = str(run["JobRun"]["JobRunState"])
        if state in STOPPED_BY_GLUE_STATES:
            completed = run["JobRun"].get("CompletedOn") or clock()
            return bool(clock() - completed > TEARDOWN_MARGIN)
        return state in RUN_ENDED_STATES

    return ended


@contextmanager
def one_run_of_the_batch(
    store: MarkStore,
    job: JobArgs,
    *,
    lease: timedelta,
    ended: Optional[RunEnded] = None,
    waiter: Waiter = Waiter(),
) -> Iterator[str]:
    """Hold the batch's run lease for the body (waiting while another run of the batch
    goes on: ``ended`` tells, default Glue's answer); yield this run's id. Freed at the
    end, even when the body fails."""
    run_id = job.job_run_id or f"local-{uuid.uuid4().hex}"
    if ended is None:
        ended = glue_run_ended(job.job_name, _region(job)) if job.job_run_id else _outside_glue
    told: set[str] = set()

    def holder_ended(held: LockState) -> bool:
        if ended(held.holder):
            return True
        if held.holder not in told:  # once per run waited for: the job's log says why
            told.add(held.holder)
            print(json.dumps({"level": "INFO", "message": _waiting(job.batch_id, held)}))
        return False

    held = take_lock(
        store,
        batch_run_uri(job.output, job.batch_id),
        run_id,
        lease,
        waiter,
        ended=holder_ended,
    )
    try:
        yield run_id
    finally:
        try:
            held.release()
        except Exception as error:  # keep the body's outcome: the lease lapses anyway
            print(json.dumps({"level": "WARNING", "message": f"run lease not freed: {error}"}))


def _outside_glue(_run_id: str) -> bool:
    return True


def _region(job: JobArgs) -> Optional[str]:
    return job.catalog.region if job.catalog is not None else None


def _waiting(batch_id: str, held: LockState) -> str:
    return (
        f"another run of batch {batch_id} ({held.holder}) is going: this run waits for it "
        "to end, then runs as its re-run"
    )

"""Iceberg table maintenance offline (``TableMaintenance``): the maintenance job's run, on
demand, as its Glue schedule would start it.

The run is the script's own ``maintain`` with the job's synthesized default arguments (its
``--conf`` makes ``glue_catalog`` Iceberg's ``GlueCatalog`` with ``S3FileIO``, pointed at
the emulated services as for the pipeline's job, ``_iceberg``), on the local Spark session,
every catalog and S3 call checked as the **maintenance job's role**. Its "now" is the virtual
clock's, so ``local.advance(...)`` ages the table's batches, snapshots and files.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Optional

from .._contract import MAINTENANCE_SNAPSHOT_RETENTION_ARGUMENT
from . import _iceberg, _spark

if TYPE_CHECKING:
    from ._iam import AccessGate
    from ._layout import PipelineLayout


def maintenance_job_id(layout: PipelineLayout) -> Optional[str]:
    """The logical id of the pipeline's maintenance job (None without ``table_maintenance``)."""
    for logical_id, resource in layout.resources.items():
        if resource.get("Type") != "AWS::Glue::Job":
            continue
        arguments = resource.get("Properties", {}).get("DefaultArguments", {})
        if MAINTENANCE_SNAPSHOT_RETENTION_ARGUMENT in arguments:
            return str(logical_id)
    return None


RunEnded = Callable[[str, str, str, str], None]
"""(job name, run id, state, message) of a run that did not succeed: Glue's "Job State
Change" event, for the maintenance job's own rule (``_events.JobStateRule``)."""


def run_maintenance(
    layout: PipelineLayout, access: AccessGate, *, now: datetime, on_failed: RunEnded
) -> dict[str, Any]:
    """One maintenance run at ``now``; returns what each procedure did (see
    ``event_driven_etl_job.maintenance.maintain``). A run that raises (an ``AccessDenied``
    the role's policies decide included) ends FAILED as on Glue: ``on_failed`` gets its
    state change (its rule and notifier publish it), then the error is raised."""
    job_id = maintenance_job_id(layout)
    if job_id is None:
        raise RuntimeError("the pipeline has no table maintenance: set table_maintenance=...")
    try:
        return _run(layout, access, job_id, now)
    except Exception as error:
        job_name = str(layout.resolver.resolve({"Ref": job_id}))
        message = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        on_failed(job_name, f"jr_{uuid.uuid4().hex}", "FAILED", message)
        raise


def _run(layout: PipelineLayout, access: AccessGate, job_id: str, now: datetime) -> dict[str, Any]:
    from ..runtime.glue.event_driven_etl_job import maintenance

    defaults = layout.resources[job_id]["Properties"]["DefaultArguments"]
    arguments = {str(k): str(layout.resolver.resolve(v)) for k, v in defaults.items()}
    role = access.role_of(job_id)
    parsed = {name.removeprefix("--"): value for name, value in arguments.items()}
    with _spark._lock:
        spark = _spark.spark_session()
        check_for = lambda service: access.client_call_check(role, service)  # noqa: E731
        with _iceberg.iceberg_run(spark, arguments, check_for):
            return maintenance.maintain(spark, parsed, now=now)

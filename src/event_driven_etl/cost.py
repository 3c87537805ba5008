"""A small cost model for the pipeline's Glue runs: DPU-hours and dollars per day.

Glue bills Spark jobs (Glue 2.0 and later) per second of run time with a one-minute
minimum per run, per DPU (a G.1X worker is 1 DPU, G.2X 2 DPU). So the number of runs
matters more than the data: one run per object pays the minimum for every object, a batch
pays it once. The prices are inputs: pass your region's (the defaults are us-east-1's
published list prices) and the run-time figures you measure.

Importing this module does not load aws-cdk-lib (nor start jsii's Node.js process).

Example::

    from event_driven_etl.cost import estimate_glue_cost

    per_object = estimate_glue_cost(objects_per_day=10_000, object_size_mb=1.0)
    batched = estimate_glue_cost(objects_per_day=10_000, object_size_mb=1.0, objects_per_run=100)
    per_object.dollars_per_day, batched.dollars_per_day   # (146.67, 1.47)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ValidationError

__all__ = ["GlueCostEstimate", "GluePrices", "RunProfile", "estimate_glue_cost"]


@dataclass(frozen=True)
class GluePrices:
    """Glue's prices and billing rules (defaults: us-east-1 list prices)."""

    standard_per_dpu_hour: float = 0.44
    """Dollars per DPU-hour, STANDARD execution class."""

    flex_per_dpu_hour: float = 0.29
    """Dollars per DPU-hour, FLEX execution class."""

    minimum_billed_seconds: float = 60.0
    """Each run is billed for at least this long (Glue 2.0 and later: one minute)."""


@dataclass(frozen=True)
class RunProfile:
    """How long a run of the built-in script takes: fixed start-up plus per object plus per MB.

    The defaults are conservative figures for small CSV objects on Glue 5 G.1X workers;
    replace them with what your job's run history shows.
    """

    startup_seconds: float = 10.0
    """Billed time before the first object is read (Spark start, argument parsing)."""

    seconds_per_object: float = 0.05
    """Per object: content check, listing, per-object row counts."""

    mb_per_second_per_dpu: float = 20.0
    """Read, type and write throughput of one DPU."""


@dataclass(frozen=True)
class GlueCostEstimate:
    """What a day of runs costs."""

    runs_per_day: int
    """Glue runs a day: one per object, or one per batch of ``objects_per_run``."""
    seconds_per_run: float
    """Run time of one run, before the billing minimum."""
    dpu_hours_per_day: float
    """Billed DPU-hours a day (each run at least the billing minimum)."""
    dollars_per_day: float
    """Billed dollars a day, at the prices given, rounded to the cent."""

    @property
    def dollars_per_month(self) -> float:
        """30 days."""
        return round(self.dollars_per_day * 30, 2)


_DPU_PER_WORKER = {"G.1X": 1.0, "G.2X": 2.0, "G.4X": 4.0, "G.8X": 8.0}


def estimate_glue_cost(
    *,
    objects_per_day: int,
    object_size_mb: float,
    objects_per_run: int = 1,
    worker_type: str = "G.1X",
    number_of_workers: int = 2,
    flex: bool = False,
    prices: GluePrices = GluePrices(),
    profile: RunProfile = RunProfile(),
) -> GlueCostEstimate:
    """Glue DPU-hours and dollars per day for ``objects_per_day`` objects of
    ``object_size_mb`` each, ``objects_per_run`` to a run (1: per object; the batch size
    with ``Batching``), on ``number_of_workers`` workers of ``worker_type``.

    :raises ValidationError: for a count below 1, a negative size or an unknown worker type.
    """
    problems = []
    for name, value in (
        ("objects_per_day", objects_per_day),
        ("objects_per_run", objects_per_run),
        ("number_of_workers", number_of_workers),
    ):
        if not isinstance(value, int) or value < 1:
            problems.append(f"{name}={value!r}: must be a whole number of at least 1")
    if object_size_mb < 0:
        problems.append(f"object_size_mb={object_size_mb!r}: must be 0 or more")
    if worker_type not in _DPU_PER_WORKER:
        problems.append(f"worker_type={worker_type!r}: must be one of {', '.join(_DPU_PER_WORKER)}")
    if problems:
        raise ValidationError("estimate_glue_cost", problems)
    runs = math.ceil(objects_per_day / objects_per_run)
    dpus = _DPU_PER_WORKER[worker_type] * number_of_workers
    per_run = min(objects_per_run, objects_per_day)
    seconds = (
        profile.startup_seconds
        + per_run * profile.seconds_per_object
        + per_run * object_size_mb / (profile.mb_per_second_per_dpu * dpus)
    )
    billed_hours = runs * max(seconds, prices.minimum_billed_seconds) / 3600
    dpu_hours = billed_hours * dpus
    price = prices.flex_per_dpu_hour if flex else prices.standard_per_dpu_hour
    return GlueCostEstimate(
        runs_per_day=runs,
        seconds_per_run=round(seconds, 3),
        dpu_hours_per_day=round(dpu_hours, 3),
        dollars_per_day=round(dpu_hours * price, 2),
    )

"""The cost model's figures for a few inputs, worked out by hand in the comments."""

from __future__ import annotations

import pytest

from event_driven_etl import ValidationError
from event_driven_etl.cost import GluePrices, RunProfile, estimate_glue_cost


def test_per_object_runs_each_pay_the_billing_minimum() -> None:
    # 10,000 runs x 60 s (10.075 s of work, billed 60) x 2 DPU = 333.333 DPU-h x $0.44
    estimate = estimate_glue_cost(objects_per_day=10_000, object_size_mb=1.0)
    assert estimate.runs_per_day == 10_000
    assert estimate.seconds_per_run == 10.075
    assert estimate.dpu_hours_per_day == 333.333
    assert estimate.dollars_per_day == 146.67
    assert estimate.dollars_per_month == 4400.1


def test_batching_pays_the_minimum_once_per_batch() -> None:
    # 100 runs x 60 s (10 + 100 x 0.05 + 100 MB / 40 MB/s = 17.5 s, billed 60) x 2 DPU
    estimate = estimate_glue_cost(objects_per_day=10_000, object_size_mb=1.0, objects_per_run=100)
    assert estimate.runs_per_day == 100
    assert estimate.seconds_per_run == 17.5
    assert estimate.dpu_hours_per_day == 3.333
    assert estimate.dollars_per_day == 1.47


def test_flex_uses_the_flex_price() -> None:
    # 3.333 DPU-h x $0.29
    estimate = estimate_glue_cost(
        objects_per_day=10_000, object_size_mb=1.0, objects_per_run=100, flex=True
    )
    assert estimate.dollars_per_day == 0.97


def test_large_objects_are_billed_for_their_run_time() -> None:
    # 10 runs of 1 object of 5,000 MB on 10 G.2X (20 DPU): 10 + 0.05 + 5000/400 = 22.55 s
    # -> billed 60 s; with a slower profile (2 MB/s/DPU): 10.05 + 125 = 135.05 s
    fast = estimate_glue_cost(
        objects_per_day=10, object_size_mb=5000, worker_type="G.2X", number_of_workers=10
    )
    assert fast.seconds_per_run == 22.55 and fast.dpu_hours_per_day == pytest.approx(
        3.333, abs=1e-3
    )
    slow = estimate_glue_cost(
        objects_per_day=10,
        object_size_mb=5000,
        worker_type="G.2X",
        number_of_workers=10,
        profile=RunProfile(mb_per_second_per_dpu=2.0),
        prices=GluePrices(standard_per_dpu_hour=0.5),
    )
    # 10 x 135.05 s x 20 DPU / 3600 = 7.503 DPU-h x $0.50
    assert slow.seconds_per_run == 135.05
    assert slow.dpu_hours_per_day == 7.503
    assert slow.dollars_per_day == 3.75


def test_fails_impossible_inputs_all_at_once() -> None:
    with pytest.raises(ValidationError) as raised:
        estimate_glue_cost(objects_per_day=0, object_size_mb=-1, worker_type="G.3X")
    assert len(raised.value.problems) == 3
    assert "objects_per_day=0: must be a whole number of at least 1" in str(raised.value)

"""Synth time of N EventDrivenEtlPipelines against the pipeline written by hand (38 of its 46
resources: see handwritten_stack.py for what the baseline lacks).

    .venv/bin/python benchmarks/synth.py [--repetitions 10]

Both variants run in this one process, alternating, after a warm-up, so the jsii/node
start-up (about 2.5 s) is paid once and not measured. Prints the median seconds per
build+synth for N = 1 and 10, their ratio (target: at most 1.2) and how time grows with N.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aws_cdk import App, Stack
from handwritten_stack import add_handwritten_pipeline

from event_driven_etl import EventDrivenEtlPipeline

Builder = Callable[[Stack, int], None]


def library(stack: Stack, n: int) -> None:
    for i in range(n):
        EventDrivenEtlPipeline(stack, f"Pipeline{i}", key_prefix="incoming/")


def handwritten(stack: Stack, n: int) -> None:
    for i in range(n):
        add_handwritten_pipeline(stack, f"Pipeline{i}")


def build_and_synth(builder: Builder, n: int) -> float:
    with tempfile.TemporaryDirectory() as outdir:
        started = time.perf_counter()
        app = App(outdir=outdir)
        stack = Stack(app, "Bench")
        builder(stack, n)
        template = app.synth().get_stack_by_name("Bench").template
        elapsed = time.perf_counter() - started
    assert template["Resources"]
    return elapsed


def measure(n: int, repetitions: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"library": [], "handwritten": []}
    for _ in range(repetitions):
        times["library"].append(build_and_synth(library, n))
        times["handwritten"].append(build_and_synth(handwritten, n))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repetitions", type=int, default=10)
    args = parser.parse_args()
    build_and_synth(library, 1)  # warm-up: jsii kernel, assets, imports
    build_and_synth(handwritten, 1)
    results = {n: measure(n, args.repetitions) for n in (1, 10)}
    print(f"synth benchmark, {args.repetitions} repetitions each, medians (seconds)")
    print(f"{'N':>3} {'library':>9} {'handwritten':>12} {'ratio':>6}")
    for n, medians in results.items():
        ratio = medians["library"] / medians["handwritten"]
        print(f"{n:>3} {medians['library']:>9.3f} {medians['handwritten']:>12.3f} {ratio:>6.2f}")
    growth = results[10]["library"] / results[1]["library"]
    print(f"library time N=10 / N=1: {growth:.1f} (linear would be about 10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

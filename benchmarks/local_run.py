"""The offline demo end to end, and the harness's own overhead.

    .venv/bin/python benchmarks/local_run.py

Measures, in one run: (1) the README demo (`examples/basic/run_local.py` in a fresh
process: CDK synth, emulated AWS, Spark start, two Glue runs); (2) the same pipeline with
the Glue script replaced by a no-op runner (harness overhead only); (3) a bare process that
only imports aws_cdk (the floor every CDK app pays). Target for (1): under 60 s here.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}

NO_SPARK = """
import sys, time
sys.path.insert(0, "examples/basic")
from pathlib import Path
from aws_cdk import App
from app import build
from event_driven_etl.testing import LocalPipeline
with LocalPipeline.from_stack(build(App()), "Pipeline", glue_runner=lambda s, a: None) as local:
    for sample in sorted(Path("examples/basic/sample_data").iterdir()):
        local.put_object(f"incoming/{sample.name}", sample.read_bytes())
    assert all(r.status == "SUCCEEDED" for r in local.wait_for_runs())
"""


def timed(command: list[str], repetitions: int) -> float:
    durations = []
    for _ in range(repetitions):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=ENV, check=True, capture_output=True)
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def main() -> int:
    python = sys.executable
    floor = timed([python, "-c", "import aws_cdk; aws_cdk.App()"], 3)
    harness = timed([python, "-c", NO_SPARK], 3)
    demo = timed([python, "examples/basic/run_local.py"], 3)
    print("local run benchmark (medians of 3 fresh processes, seconds)")
    print(f"  start Python + jsii (App()):   {floor:6.1f}")
    print(f"  pipeline offline, no Spark:    {harness:6.1f}  ({harness / floor:.1f}x the floor)")
    print(f"  README demo, Spark included:   {demo:6.1f}  ({demo / harness:.1f}x the no-Spark run)")
    return 0 if demo < 60 else 1


if __name__ == "__main__":
    sys.exit(main())

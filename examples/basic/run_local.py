"""Run examples/basic offline: upload the sample data and show what the pipeline did.

    python examples/basic/run_local.py

Emulated AWS (moto) plus the real synthesized artifacts: the state machine definition,
the rule's event pattern, the trigger handler and the built-in Glue script on local Spark.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from app import build  # type: ignore[import-not-found]  # noqa: E402 - this folder, on sys.path
from aws_cdk import App  # noqa: E402

from event_driven_etl.testing import LocalPipeline  # noqa: E402

# The trigger handler and the Glue script log JSON lines to stdout, as Lambda and Glue want
# (CloudWatch Logs reads them there). Offline they run in this process, so while the
# pipeline works, stdout is stderr and the demo's own report goes to the real stdout.
REPORT = sys.stdout


def show(*values: object) -> None:
    print(*values, file=REPORT, flush=True)


def print_resources(template_file: Path) -> None:
    """What `cdk deploy` would create: resource types and counts of the synthesized stack."""
    resources = json.loads(template_file.read_text())["Resources"]
    counts = Counter(r["Type"] for r in resources.values())
    show(f"synthesized {len(resources)} resources:")
    for kind, count in sorted(counts.items()):
        show(f"  {count:>2} {kind}")
    show()


def main() -> int:
    with tempfile.TemporaryDirectory() as outdir, contextlib.redirect_stdout(sys.stderr):
        stack = build(App(outdir=outdir))
        with LocalPipeline.from_stack(stack, "Pipeline") as local:
            print_resources(Path(outdir) / f"{stack.artifact_id}.template.json")
            samples = sorted((HERE / "sample_data").iterdir())
            for sample in samples:
                local.put_object(f"incoming/{sample.name}", sample.read_bytes())
                show(f"uploaded   s3://{local.source_bucket}/incoming/{sample.name}")
            runs = local.wait_for_runs(timeout=300)
            show()
            for run in runs:
                show(f"execution  {run.name}: {run.status}")
            show()
            for note in local.notifications:
                show("notification", json.dumps(note, indent=2))
            show()
            show("output files:")
            for key in local.output_keys():
                show(f"  s3://{local.output_bucket}/{key}")
            rows = local.read_output_rows()
            counts = Counter(r["_source_object"].rsplit("/", 1)[-1] for r in rows)
            show(f"\nParquet rows written: {len(rows)}")
            for name, count in sorted(counts.items()):
                show(f"  {count} rows from {name}")
            for row in rows[:3]:
                show("  e.g.", {k: str(v) for k, v in row.items()})
            table = local.catalog_table_definition()
            show(f"\ncatalog table {local.catalog_database}.{table['Name']}:")
            for column in table["StorageDescriptor"]["Columns"]:
                show(f"  {column['Name']}: {column['Type']}")
            sql = f"SELECT _source_object, count(*) AS n FROM {table['Name']} GROUP BY 1 ORDER BY 1"
            show(f"\n{sql}")
            for result in local.query(sql):
                show("  ", result)
            ok = runs and all(r.status == "SUCCEEDED" for r in runs) and len(runs) == len(samples)
            return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The built-in job ships its stages as a package with ``--extra-py-files``: the zip Glue
gets is complete on its own (no ``event_driven_etl`` on Glue), and the role reads that one
object."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3

from event_driven_etl import GlueEtlJob
from event_driven_etl._glue_package import PACKAGE_NAME, PACKAGE_SOURCE
from event_driven_etl.glue_job import _BUILT_IN_SCRIPT
from event_driven_etl.testing._spark import python_path, shipped_python_files

from ..helpers import resources_of_type, template_of

# Runs in a fresh interpreter: only the zip may provide the job, and importing the library
# (installed in this environment) fails, as it would on Glue.
IMPORT_FROM_THE_ZIP_ONLY = """
import importlib, importlib.abc, json, pkgutil, runpy, sys

class NoLibrary(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "event_driven_etl":
            raise ImportError(f"{name} is not installed on Glue")
        return None

sys.meta_path.insert(0, NoLibrary())
zip_path, script, package = sys.argv[1:4]
sys.path.insert(0, zip_path)
entry = runpy.run_path(script, run_name="glue_script")  # the entry's imports, not its run
imported = importlib.import_module(package)
modules = sorted(m.name for m in pkgutil.iter_modules(imported.__path__))
for name in modules:
    importlib.import_module(f"{package}.{name}")
shared = importlib.import_module(f"{package}.shared")
print(json.dumps({
    "main": entry["main"].__module__,
    "modules": modules,
    "contract": shared.contract.__name__,
    "runs_dir": shared.contract.RUNS_DIR,
    "from_zip": all(m.__file__.startswith(zip_path) for n, m in sys.modules.items()
                    if n.split(".")[0] == package),
}))
"""


def _glue_job(stack: Stack, **props: Any) -> GlueEtlJob:
    return GlueEtlJob(
        stack,
        "GlueJob",
        source_bucket=s3.Bucket(stack, "In"),
        output_bucket=s3.Bucket(stack, "Out"),
        **props,
    )


def _job(stack: Stack) -> dict[str, Any]:
    [job] = resources_of_type(template_of(stack), "AWS::Glue::Job").values()
    return dict(job["Properties"])


def _built_in_job(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    outdir = tmp_path / "cdk.out"
    app = App(outdir=str(outdir))
    stack = Stack(app, "PackageStack")
    GlueEtlJob(
        stack,
        "GlueJob",
        source_bucket=s3.Bucket(stack, "In"),
        output_bucket=s3.Bucket(stack, "Out"),
    )
    properties = _job(stack)
    app.synth()
    return outdir, properties


def _key(location: Any) -> str:
    """The object key at the end of an ``s3://`` URI the template joins from tokens."""
    parts = location["Fn::Join"][1] if isinstance(location, dict) else [location]
    return str(parts[-1]).rsplit("/", 1)[-1]


def test_the_zip_glue_gets_holds_every_module_the_job_imports(tmp_path: Path) -> None:
    outdir, job = _built_in_job(tmp_path)
    key = _key(job["DefaultArguments"]["--extra-py-files"])
    assert key.endswith(".zip")
    [zipped] = shipped_python_files(outdir, f"s3://assets/{key}")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            IMPORT_FROM_THE_ZIP_ONLY,
            str(zipped),
            str(_BUILT_IN_SCRIPT),
            PACKAGE_NAME,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["main"] == f"{PACKAGE_NAME}.job" and found["from_zip"]
    assert found["contract"] == f"{PACKAGE_NAME}._contract" and found["runs_dir"] == "_runs"
    shipped = {m for m in found["modules"] if m != "_contract"}
    assert shipped == {p.stem for p in PACKAGE_SOURCE.glob("*.py") if p.stem != "__init__"}


@pytest.mark.spark
def test_the_harness_runs_the_job_from_the_shipped_zip_only(spark: Any, tmp_path: Path) -> None:
    """What the offline run imports is what Glue gets: the zip, afresh for each run."""
    outdir, job = _built_in_job(tmp_path)
    key = _key(job["DefaultArguments"]["--extra-py-files"])
    [zipped] = shipped_python_files(outdir, f"s3://assets/{key}")
    with python_path([zipped]):
        stages = importlib.import_module(f"{PACKAGE_NAME}.job")
        assert str(stages.__file__).startswith(str(zipped))
    assert PACKAGE_NAME not in sys.modules and str(zipped) not in sys.path


def test_the_package_asset_holds_sources_only(tmp_path: Path) -> None:
    outdir, job = _built_in_job(tmp_path)
    digest = _key(job["DefaultArguments"]["--extra-py-files"]).removesuffix(".zip")
    staged = outdir / f"asset.{digest}"
    files = sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file())
    expected = sorted(f"{PACKAGE_NAME}/{p.name}" for p in PACKAGE_SOURCE.glob("*.py"))
    assert files == sorted([*expected, f"{PACKAGE_NAME}/_contract.py"])


def test_the_role_reads_the_package_object_only(stack: Stack) -> None:
    GlueEtlJob(
        stack,
        "GlueJob",
        source_bucket=s3.Bucket(stack, "In"),
        output_bucket=s3.Bucket(stack, "Out"),
    )
    key = _key(_job(stack)["DefaultArguments"]["--extra-py-files"])
    [policy] = resources_of_type(template_of(stack), "AWS::IAM::Policy").values()
    resources = [
        json.dumps(r)
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for r in (statement["Resource"] if isinstance(statement["Resource"], list) else [])
        if "cdk-hnb659fds-assets" in json.dumps(r)
    ]
    object_resources = [r for r in resources if not r.endswith('assets-111111111111-eu-west-1"]]}')]
    assert any(r.endswith(f'/{key}"]]}}') for r in object_resources)
    assert all(r.endswith(('.zip"]]}', '.py"]]}')) for r in object_resources), object_resources


def test_a_custom_script_ships_no_package(stack: Stack, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("print('custom')\n")
    _glue_job(stack, script=glue.Code.from_asset(str(script)))
    assert "--extra-py-files" not in _job(stack)["DefaultArguments"]

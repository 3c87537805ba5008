"""The built-in job's stages as a CDK asset shipped with ``--extra-py-files``.

Glue runs ``runtime/glue/etl_job.py`` and puts each ``--extra-py-files`` zip on its Python
path; a directory asset is uploaded as ``<hash>.zip``, so the staged directory holds the
package directory itself (``event_driven_etl_job/``) at its root. ``event_driven_etl`` is not
installed on Glue: the package gets its own copy of ``_contract.py`` here, at synth (the one
definition stays ``event_driven_etl/_contract.py``; see the package's ``shared`` module).

The constructs never import the package: this module only copies its files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from aws_cdk import Stage
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

PACKAGE_NAME = "event_driven_etl_job"
"""The package's import name on Glue's Python path (unlikely to meet another's)."""

PACKAGE_SOURCE = Path(__file__).parent / "runtime" / "glue" / PACKAGE_NAME
CONTRACT_SOURCE = Path(__file__).parent / "_contract.py"
STAGING_FOLDER = "event-driven-etl-job-package"
"""In the cloud assembly's folder: the asset's source (CDK stages it as ``asset.<hash>``; no
``.`` in the name, which CDK would keep as an extension)."""


def stage_job_package(target: Path) -> Path:
    """Write the asset's content into ``target`` (replacing what is there): the package's
    modules and its copy of the contract, nothing else (no ``__pycache__``: the asset's hash,
    and so ``cdk diff``, depend only on the sources). Returns ``target``."""
    shutil.rmtree(target, ignore_errors=True)
    package = target / PACKAGE_NAME
    package.mkdir(parents=True)
    for module in sorted(PACKAGE_SOURCE.glob("*.py")):
        shutil.copyfile(module, package / module.name)
    shutil.copyfile(CONTRACT_SOURCE, package / "_contract.py")
    return target


def job_package(scope: Construct, construct_id: str = "JobPackage") -> glue.Code:
    """The package as an asset of ``scope``, read through ``Code.from_bucket`` so the job's
    role may read that one object (``Code.from_asset`` grants the whole assets bucket).

    The asset's source is staged in the cloud assembly's folder, which outlives the app: with
    asset staging turned off (``cdk synth --no-staging``) the CLI publishes from it later."""
    stage = Stage.of(scope)
    if stage is None:  # pragma: no cover - every construct that synthesizes is in an App
        raise ValueError("the built-in job's package needs an App to stage it in")
    source = stage_job_package(Path(stage.asset_outdir) / STAGING_FOLDER)
    asset = s3_assets.Asset(scope, construct_id, path=str(source))
    return glue.Code.from_bucket(asset.bucket, asset.s3_object_key)

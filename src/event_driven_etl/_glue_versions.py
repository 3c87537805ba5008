"""Glue versions the ``glue_version`` prop accepts: aws-cdk-lib's and the newer ones of ours.

aws-cdk-lib 2.275's ``glue.GlueVersion`` is an enum that stops at ``V6_0`` and has no
``of()`` in Python, so Glue 6.1 needs a value of ours; the job is built with the L2 as
Glue 6.0 (the newest it knows, with the same rules) and the L1's ``GlueVersion`` is then
written as ``"6.1"``.
"""

from __future__ import annotations

import enum
from typing import Union

from aws_cdk import aws_glue as glue

from ._docs import public


@public
class NewerGlueVersion(enum.Enum):
    """Glue versions newer than aws-cdk-lib's ``glue.GlueVersion`` knows, accepted wherever
    a ``glue_version`` prop is (``EventDrivenEtlPipeline``, ``GlueEtlJob``)."""

    V6_1 = "6.1"
    """Glue 6.1: Spark 4.1.3, Python 3.14, Amazon Corretto 17. On 6.1 a job created without
    a worker type runs on Graviton (arm64) workers; the construct always sets the worker type,
    so ``worker_type`` (default G.1X) decides."""


GlueVersionValue = Union[glue.GlueVersion, NewerGlueVersion]
"""What a ``glue_version`` prop accepts."""

# Glue 6.1 is built with the L2 as 6.0: same Spark line, job command and worker rules
# (https://docs.aws.amazon.com/glue/latest/dg/migrating-version-61.html).
_L2_VERSION = {NewerGlueVersion.V6_1: glue.GlueVersion.V6_0}


def l2_glue_version(version: GlueVersionValue) -> glue.GlueVersion:
    """The aws-cdk-lib value to build the L2 job with."""
    return _L2_VERSION[version] if isinstance(version, NewerGlueVersion) else version


def cfn_override(version: GlueVersionValue) -> str | None:
    """The L1 job's ``GlueVersion`` when the L2 cannot write it itself, else None."""
    return version.value if isinstance(version, NewerGlueVersion) else None


def glue_version_name(version: object) -> str | None:
    """The value as written in code (``GlueVersion.V5_1``, ``NewerGlueVersion.V6_1``), or
    None when it is neither kind."""
    if isinstance(version, NewerGlueVersion):
        return f"NewerGlueVersion.{version.name}"
    if isinstance(version, glue.GlueVersion):
        return f"GlueVersion.{version.name}"
    return None

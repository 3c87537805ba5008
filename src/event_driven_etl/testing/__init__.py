"""Run a synthesized pipeline offline: ``from event_driven_etl.testing import LocalPipeline``.

Needs the ``testing`` extra (``pip install 'event-driven-etl[testing]'``: moto, boto3,
pyspark 3.5, the Spark of Glue 5.x; install ``pyspark==4.1.1`` over it for Glue 6.0,
``pyspark==4.1.3`` for Glue 6.1) and,
to run the Glue script on local Spark, Java 17. Never uses real AWS credentials: the
emulation sets fake ones for its own duration.
"""

from ._backfill import BackfillRefusedError, BackfillResult
from ._faults import Faults
from ._local import LocalPipeline
from ._observation import GlueRun, Run
from ._spark import SparkLineWarning
from ._template import PipelineNotFoundError

__all__ = [
    "BackfillRefusedError",
    "BackfillResult",
    "Faults",
    "GlueRun",
    "LocalPipeline",
    "PipelineNotFoundError",
    "Run",
    "SparkLineWarning",
]

"""event-driven-etl: an event-driven ETL pipeline (S3 -> Lambda -> Step Functions -> Glue -> SNS)
as one AWS CDK v2 construct, secure by default and runnable offline.

.. code-block:: python

    from event_driven_etl import EventDrivenEtlPipeline

    pipeline = EventDrivenEtlPipeline(self, "Pipeline", key_prefix="incoming/")
"""

from .errors import ValidationError
from .glue_job import GlueEtlJob
from .pipeline import EventDrivenEtlPipeline
from .retry import Batching, RetryPolicy
from .state_machine import EtlStateMachine
from .trigger import TriggerFunction

__version__ = "0.1.0"

__all__ = [
    "Batching",
    "EtlStateMachine",
    "EventDrivenEtlPipeline",
    "GlueEtlJob",
    "RetryPolicy",
    "TriggerFunction",
    "ValidationError",
    "__version__",
]

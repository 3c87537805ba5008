"""event-driven-etl: an event-driven ETL pipeline (S3 -> Lambda -> Step Functions -> Glue -> SNS)
as one AWS CDK v2 construct, secure by default and runnable offline.

```python
from event_driven_etl import EventDrivenEtlPipeline

pipeline = EventDrivenEtlPipeline(self, "Pipeline", key_prefix="incoming/")
```

The constructs are imported on first use: `import event_driven_etl.cost` (a pure-Python
cost model) does not load aws-cdk-lib, so it never starts jsii's Node.js process.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import ValidationError

if TYPE_CHECKING:
    from ._glue_versions import NewerGlueVersion
    from .glue_job import GlueEtlJob
    from .pipeline import EventDrivenEtlPipeline
    from .retry import Batching, RetryPolicy
    from .state_machine import EtlStateMachine
    from .table_format import TableFormat
    from .table_maintenance import TableMaintenance
    from .tables import Tables
    from .trigger import TriggerFunction

__version__ = "0.1.0"
"""The package's version (semantic versioning: see the README's "Versioning" section)."""

# Public name -> the module defining it. Importing those modules imports aws-cdk-lib,
# which starts jsii's Node.js process (about a second), so they load when first asked for.
_CONSTRUCTS = {
    "Backfill": "backfill",
    "Batching": "retry",
    "EtlStateMachine": "state_machine",
    "EventDrivenEtlPipeline": "pipeline",
    "GlueEtlJob": "glue_job",
    "NewerGlueVersion": "_glue_versions",
    "RetryPolicy": "retry",
    "Tables": "tables",
    "TableFormat": "table_format",
    "TableMaintenance": "table_maintenance",
    "TriggerFunction": "trigger",
}

__all__ = [
    "Backfill",
    "Batching",
    "EtlStateMachine",
    "EventDrivenEtlPipeline",
    "GlueEtlJob",
    "NewerGlueVersion",
    "RetryPolicy",
    "TableFormat",
    "TableMaintenance",
    "Tables",
    "TriggerFunction",
    "ValidationError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _CONSTRUCTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # Each public class names this package as its module (``_docs.public``), so docs and
    # help() show ``event_driven_etl.RetryPolicy`` however the class was first imported.
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

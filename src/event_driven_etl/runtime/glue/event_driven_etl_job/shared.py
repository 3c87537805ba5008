"""The contract values the job shares with the constructs, from their one definition.

``event_driven_etl/_contract.py`` defines them (pyspark-free, CDK-free). Imported from the
library (tests, the offline harness's helpers), the job reads that module; shipped to Glue,
where ``event_driven_etl`` is not installed, the package carries a copy of it as
``_contract.py`` beside this file, made when the construct stages the package's asset
(``event_driven_etl/_glue_package.py``). Nothing in the source tree writes that copy.
"""

from __future__ import annotations

try:  # imported from the library: the constructs' own module
    from .... import _contract as contract
except ImportError:  # shipped to Glue: relative imports end at this package, the copy is here
    from . import _contract as contract  # type: ignore[attr-defined, no-redef]  # only in the asset

__all__ = ["contract"]

"""The Iceberg table maintenance script, the file the maintenance Glue job runs
(``ScriptLocation``; see ``TableMaintenance``): compaction of old batches' small files,
snapshot expiry and orphan file removal through Iceberg's Spark procedures.

Like ``etl_job.py``, it imports the package ``event_driven_etl_job`` that the construct ships
with ``--extra-py-files``; imported as ``event_driven_etl.runtime.glue.maintenance_job``
(tests, the offline harness), the library's own copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING or __package__:  # imported from the library
    from .event_driven_etl_job.maintenance import main

    __all__ = ["main"]
else:  # run as Glue's script: the package came with --extra-py-files
    from event_driven_etl_job.maintenance import main

    __all__ = ["main"]

if __name__ == "__main__":
    main()

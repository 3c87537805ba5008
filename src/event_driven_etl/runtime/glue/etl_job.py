"""The built-in Glue (Spark) script, the file Glue runs (``ScriptLocation``): land new S3
objects as one typed, partitioned Parquet table.

The stages live in the package ``event_driven_etl_job`` beside this file, which the construct
ships to Glue with ``--extra-py-files`` (see its ``__init__`` for the stages and the data
contract). Run by Glue (or the offline harness) as a script, this file imports that package
from the job's Python path; imported as ``event_driven_etl.runtime.glue.etl_job`` (tests),
the library's own copy. ``main(argv)`` takes Glue-style argv (``--name value``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING or __package__:  # imported from the library
    from .event_driven_etl_job.job import main

    __all__ = ["main"]
else:  # run as Glue's script: the package came with --extra-py-files
    from event_driven_etl_job.job import main

    __all__ = ["main"]

if __name__ == "__main__":
    main()

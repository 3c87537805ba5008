"""The Glue control plane as LocalPipeline needs it, on top of moto's.

moto records job runs but never runs anything; these hooks route ``StartJobRun`` of a job
owned by an active LocalPipeline to that pipeline, which runs the script, and let a run's
state be set (moto's own runs advance their state on every read).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Protocol


class GlueRunOwner(Protocol):
    def start_glue_run(
        self, original: Callable[..., str], job: Any, kwargs: dict[str, Any]
    ) -> str: ...


ACTIVE_JOBS: dict[str, GlueRunOwner] = {}
"""Glue job name -> the LocalPipeline that runs its job runs."""


class GlueHooks:
    """Route moto's Glue StartJobRun for jobs of an active LocalPipeline to that pipeline."""

    def __init__(self) -> None:
        self._original_start: Optional[Callable[..., str]] = None
        self._original_as_dict: Optional[Callable[..., dict[str, Any]]] = None

    def install(self) -> None:
        if self._original_start is not None:
            return
        from moto.glue import models

        original_start = models.FakeJob.start_job_run
        original_as_dict = models.FakeJobRun.as_dict
        self._original_start, self._original_as_dict = original_start, original_as_dict

        def start_job_run(job: Any, **kwargs: Any) -> str:
            owner = ACTIVE_JOBS.get(job.name)
            if owner is None:
                return str(original_start(job, **kwargs))
            return owner.start_glue_run(original_start, job, kwargs)

        def as_dict(run: Any) -> dict[str, Any]:
            data = original_as_dict(run)
            if getattr(run, "error_message", None):
                data["ErrorMessage"] = run.error_message
            return data

        setattr(models.FakeJob, "start_job_run", start_job_run)  # noqa: B010 - patching moto
        setattr(models.FakeJobRun, "as_dict", as_dict)  # noqa: B010

    def uninstall(self) -> None:
        if self._original_start is None:
            return
        from moto.glue import models

        setattr(models.FakeJob, "start_job_run", self._original_start)  # noqa: B010
        setattr(models.FakeJobRun, "as_dict", self._original_as_dict)  # noqa: B010
        self._original_start = self._original_as_dict = None


glue_hooks = GlueHooks()
_held_class: Optional[type] = None


def held_job_run_class() -> type:
    """moto's FakeJobRun whose state changes only when set (moto's advances on each read)."""
    global _held_class  # noqa: PLW0603 - made once, lazily, because moto is optional
    if _held_class is None:
        from moto.glue.models import FakeJobRun

        class HeldJobRun(FakeJobRun):
            @property
            def status(self) -> str:
                return str(self.__dict__.get("_held_status", "RUNNING"))

            @status.setter
            def status(self, value: str) -> None:
                self.__dict__["_held_status"] = value

        _held_class = HeldJobRun
    return _held_class

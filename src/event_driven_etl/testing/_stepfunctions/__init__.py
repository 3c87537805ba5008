"""Step Functions as the harness runs it: moto's interpreter, fixed (:mod:`.fixes`), waiting
on the virtual clock (:mod:`.clock`), each task's call checked as the machine's role
(:mod:`.gates`)."""

from . import clock, gates
from .clock import forget_waits, waits_of
from .fixes import CAUSE_LIMIT, fix_moto, step_functions_cause
from .gates import TASK_GATES


def install() -> None:
    """The harness's own patches of the interpreter (any moto version; idempotent): the
    virtual clock and the task gates."""
    clock.install()
    gates.install_task_gates()


__all__ = [
    "CAUSE_LIMIT",
    "TASK_GATES",
    "fix_moto",
    "forget_waits",
    "install",
    "step_functions_cause",
    "waits_of",
]

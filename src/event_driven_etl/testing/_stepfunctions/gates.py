"""Each task of an emulated state machine calls its service as the machine's role: before
the call, the machine's gate (``AccessGate.task_gate``) checks it; a denial fails the task
as AWS fails it."""

from __future__ import annotations

import threading
from typing import Any

from .._iam import AccessDeniedError, TaskGate, access_denied_error

TASK_GATES: dict[str, TaskGate] = {}
"""State machine ARN -> the check its task states pass before each call (registered by
``_session`` while its pipeline runs)."""
_installed = False
_install_lock = threading.Lock()


def install_task_gates() -> None:
    """Patch moto's interpreter once: before a task calls its service, the state machine's
    gate (if any) checks the call; a denial fails the task as AWS fails it."""
    global _installed  # noqa: PLW0603 - one patch per process
    with _install_lock:
        if _installed:
            return
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
            state_task_service as module,
        )

        cls = module.StateTaskService
        original = cls._before_eval_execution

        def before_eval_execution(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
            machine = str(env.states.context_object.context_object_data["StateMachine"]["Id"])
            gate = TASK_GATES.get(machine)
            if gate is not None:
                parameters = kwargs.get("raw_parameters", args[1] if len(args) > 1 else {})
                try:
                    gate(str(self.resource.resource_arn), parameters or {})
                except AccessDeniedError as denied:
                    raise access_denied_error(denied, str(self.resource.resource_arn)) from None
            original(self, env, *args, **kwargs)

        cls._before_eval_execution = before_eval_execution  # type: ignore[method-assign]  # patching moto
        _installed = True

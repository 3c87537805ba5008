"""moto's Step Functions interpreter on the virtual clock (``_time.CLOCK``).

The interpreter sleeps and waits in a few places, patched here once per process: the
retrier (``time.sleep``), the Wait state, ``Program.eval`` (the execution timeout) and
``ExecutionState._evaluate_with_timeout`` (a task's timeout), both kept by a deadline on the
execution's own thread where moto starts a thread for each (so an execution in flight holds
one thread, and a burst of 10,000 fits the machine),
``StateTaskServiceCallback._eval_sync`` (the ``.sync`` poll, woken by its own run's end) and
``ExecutionWorker.start`` (an execution's thread is an actor; its definition parsed once
per state machine, not per execution). Map and Parallel states are not patched: their workers
wait on moto's own events, so a template using them would stall the clock (``wait_for_runs``
then raises ``TimeoutError``; the pipeline's workflow uses neither). Each wait of a retrier
or a Wait state is recorded per execution (:func:`waits_of`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable, Optional

from .._time import CLOCK, GLUE_RUN_ENDED, DeadlineExceeded, Signal

SYNC_POLL_SECONDS = 3600.0
"""How often (virtual seconds) a ``.sync`` task checks its run besides the
:data:`GLUE_RUN_ENDED` pulse of its run's id (which every emulated run sends when it ends):
only a run of a job no LocalPipeline owns needs it, and frequent checks of thousands of
waiting runs would cost real time."""

_lock = threading.Lock()
_waits: dict[str, list[float]] = {}
"""Execution ARN -> each wait of its retriers and Wait states, in virtual seconds."""
_installed = False


def waits_of(execution_arn: str) -> list[float]:
    """Each wait one execution's retriers and Wait states took, in virtual seconds (as in
    AWS: interval, backoff, cap and jitter applied), in order."""
    with _lock:
        return list(_waits.get(execution_arn, []))


def forget_waits() -> None:
    """Forget every execution's waits (with the clock's reset: a new session)."""
    with _lock:
        _waits.clear()


def _execution_of(env: Any) -> str:
    try:
        return str(env.states.context_object.context_object_data["Execution"]["Id"])
    except (AttributeError, KeyError, TypeError):  # pragma: no cover - unexpected moto build
        return ""


def _record(env: Any, seconds: float) -> None:
    with _lock:
        _waits.setdefault(_execution_of(env), []).append(max(seconds, 0.0))


_state = threading.local()


class _RetrierClock:
    """Stands in for the ``time`` module inside moto's retrier."""

    @staticmethod
    def sleep(seconds: float) -> None:
        _record(getattr(_state, "env", None), seconds)
        CLOCK.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def install() -> None:
    """Patch moto's interpreter to wait on the virtual clock (idempotent)."""
    global _installed  # noqa: PLW0603 - the interpreter is process-wide
    if _installed:
        return
    _patch_retrier()
    _patch_wait_state()
    _patch_program_timeout()
    _patch_task_timeout()
    _patch_sync_wait()
    _patch_execution_thread()
    _installed = True


def _patch_retrier() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    vars(retrier_decl)["time"] = _RetrierClock()
    original = retrier_decl.RetrierDecl._eval_body

    def retrier_eval_body(self: Any, env: Any) -> None:
        _state.env = env
        try:
            original(self, env)
        finally:
            _state.env = None

    retrier_decl.RetrierDecl._eval_body = retrier_eval_body  # type: ignore[method-assign]  # patching moto


def _patch_wait_state() -> None:
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        _record(env, wait_seconds)
        CLOCK.sleep(wait_seconds)

    wait_function.WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]  # patching moto


def _patch_program_timeout() -> None:
    from moto.stepfunctions.parser.asl.component.program import program

    def program_eval(self: Any, env: Any) -> None:
        timeout = self.timeout_seconds.timeout_seconds if self.timeout_seconds else None
        env.next_state_name = self.start_at.start_at_name
        # On the execution's own thread (moto starts one more per execution): Step Functions'
        # TimeoutSeconds is a deadline on the virtual clock (see VirtualClock.deadline).
        try:
            with CLOCK.deadline(timeout) as deadline:
                super(program.Program, self).eval(env)
        except DeadlineExceeded as exceeded:
            if exceeded.deadline is not deadline:
                raise
            # An execution still running when its TimeoutSeconds passes is TIMED_OUT,
            # whatever it was waiting for; moto's body then records ExecutionTimedOut (its
            # loop does not run again: the execution is no longer running).
            if env.is_running():
                env.set_timed_out()
            self._eval_body(env)

    program.Program.eval = program_eval  # type: ignore[method-assign]  # patching moto


def _patch_task_timeout() -> None:
    import copy

    from moto.stepfunctions.parser.asl.component.state.exec import execute_state

    cls = execute_state.ExecutionState
    timeout_error = vars(execute_state)["EvalTimeoutError"]

    def evaluate_with_timeout(self: Any, env: Any) -> None:
        # moto's own, with the timeout kept by a deadline instead of a thread and an Event.
        self.timeout.eval(env=env)
        timeout_seconds: int = env.stack.pop()
        frame = env.open_frame()
        frame.states.reset(input_value=env.states.get_input())
        frame.stack = copy.deepcopy(env.stack)
        # On the calling thread (moto starts one per task): the task's TimeoutSeconds is a
        # deadline on the virtual clock (see VirtualClock.deadline).
        try:
            with CLOCK.deadline(timeout_seconds) as deadline:
                self._eval_execution(frame)
                output = frame.stack[-1]
        except DeadlineExceeded as exceeded:
            if exceeded.deadline is not deadline:
                raise  # the execution's own timeout: it unwinds the whole program
            raise timeout_error() from None
        finally:
            frame.set_ended()
            env.close_frame(frame)
        env.stack.append(output)
        if not self._is_language_query_jsonpath():
            env.states.set_result(output)
        if self.assign_decl:
            self.assign_decl.eval(env=env)
        if self.result_selector:
            self.result_selector.eval(env=env)
        if self.result_path:
            self.result_path.eval(env)
        else:
            env.states.reset(input_value=env.stack.pop())

    cls._evaluate_with_timeout = evaluate_with_timeout  # type: ignore[method-assign]  # patching moto


def _patch_sync_wait() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as module,
    )

    cls = module.StateTaskServiceCallback
    original = cls._eval_sync

    def eval_sync(  # noqa: PLR0917 - moto's signature
        self: Any,
        env: Any,
        sync_resolver: Optional[Callable[[], Any]],
        timeout_seconds: Optional[int],
        callback_endpoint: Any,
        heartbeat_endpoint: Any,
    ) -> Any:
        if callback_endpoint is not None:  # pragma: no cover - the pipeline has no callbacks
            return original(
                self, env, sync_resolver, timeout_seconds, callback_endpoint, heartbeat_endpoint
            )
        run_id = str(getattr(sync_resolver, _RUN_ID, ""))
        result = None
        try:
            while env.is_running() and sync_resolver is not None:
                # Its own run's signal, taken before the check: no pulse is missed, and no
                # other run's end wakes this task (see KeyedSignals).
                ended = GLUE_RUN_ENDED.of(run_id) if run_id else Signal()
                generation = ended.generation
                result = sync_resolver()
                if result:
                    break
                CLOCK.wait(ended, generation, SYNC_POLL_SECONDS)
        finally:
            if run_id:
                GLUE_RUN_ENDED.forget(run_id)
        return result

    cls._eval_sync = eval_sync  # type: ignore[method-assign]  # patching moto
    _patch_glue_sync_resolver()


_RUN_ID = "_glue_run_id"
"""The attribute naming the Glue run a ``.sync`` resolver polls."""


def _patch_glue_sync_resolver() -> None:
    """Name on moto's ``glue:startJobRun.sync`` resolver the run it polls, so that its task
    waits for that run's end alone."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_glue as module,
    )

    cls = module.StateTaskServiceGlue
    original = cls._sync_to_start_job_run

    def sync_to_start_job_run(self: Any, env: Any, *args: Any, **kwargs: Any) -> Any:
        started = env.stack[-1] if env.stack else None  # StartJobRun's output, popped next
        resolver = original(self, env, *args, **kwargs)
        if isinstance(started, dict) and resolver is not None:
            setattr(resolver, _RUN_ID, started.get("JobRunId", ""))
        return resolver

    cls._sync_to_start_job_run = sync_to_start_job_run  # type: ignore[method-assign]  # patching moto


def _patch_execution_thread() -> None:
    from moto.stepfunctions.parser.backend import execution_worker

    def start(self: Any) -> None:
        worker = CLOCK.thread(self._execution_logic)
        vars(execution_worker)["TMP_THREADS"].append(worker)
        worker.start()

    def evaluation_entrypoint(self: Any) -> Any:
        return _program_of(self._evaluation_details.state_machine_details.definition)

    execution_worker.ExecutionWorker.start = start  # type: ignore[method-assign]  # patching moto
    execution_worker.ExecutionWorker._get_evaluation_entrypoint = evaluation_entrypoint  # type: ignore[method-assign]  # patching moto


_programs: dict[str, Any] = {}
"""Definition -> its parsed program, shared by the executions of a state machine."""
_SHARED_PROGRAMS = 16


def _program_of(definition: str) -> Any:
    """The parsed program of ``definition``: parsed once, not once per execution (moto's
    ANTLR parse is most of the real time an execution's start costs: a burst of thousands
    would spend minutes parsing one definition). The parsed states keep no state of an
    execution (that is in its ``Environment``), except Parallel's branches and Map's
    iterations, so a definition with either is parsed per execution as moto does."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    with _lock:
        program = _programs.get(definition)
    if program is not None:
        return program
    program = AmazonStateLanguageParser.parse(definition)[0]
    if _shareable(definition):
        with _lock:
            if len(_programs) >= _SHARED_PROGRAMS:  # a session's few machines at a time
                _programs.clear()
            _programs[definition] = program
    return program


def _shareable(definition: str) -> bool:
    try:
        parsed = json.loads(definition)
    except ValueError:
        return False
    return not any(state in {"Map", "Parallel"} for state in _state_types(parsed))


def _state_types(node: Any) -> Iterator[str]:
    """Every state's ``Type`` in a definition, nested ones too."""
    if isinstance(node, dict):
        if isinstance(node.get("Type"), str):
            yield node["Type"]
        for value in node.values():
            yield from _state_types(value)
    elif isinstance(node, list):
        for value in node:
            yield from _state_types(value)

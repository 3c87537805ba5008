"""Fixes to moto 5.2.5's Step Functions interpreter (moto's Glue and SQS fixes live with
their services: ``_glue_emulation``, ``_sqs``; ``_session`` applies them all, for the moto
versions it knows).

Its Glue ``.sync`` integration has two bugs:

1. ``StateTaskServiceCallback._eval_integration_pattern`` calls
   ``callback_endpoint.interrupt_all()`` in a ``finally`` even when there is no callback
   endpoint (``None`` for every ``.sync`` task), so every Glue task fails with
   ``'NoneType' object has no attribute 'interrupt_all'``.
2. The Glue job run it returns (and puts in the failure cause) holds ``datetime`` values,
   which its JSON encoder cannot serialise.

its ``aws-sdk:s3:getObject`` differs from Step Functions in two ways:

3. it returns ``Body`` as a stream object (Step Functions returns the text), and
4. it names S3 errors ``s3.NoSuchKeyException`` (Step Functions: ``S3.NoSuchKeyException``).

and its failed Glue run's cause is not what Step Functions reports:

5. Step Functions serialises the JobRun compactly with its keys in alphabetical order
   (``Arguments`` before ``JobRunState``) and cuts every cause at 32,768 characters; moto
   writes ``", "``-separated JSON in shape order and never cuts. The cut matters: a failure
   path that parses a long cause must not be green offline and broken on AWS.

Four more are for speed only:

6. Its ``.sync`` tasks check the job run's state every 0.5 s of real time; the check runs
   every 0.1 s instead (``.clock`` replaces the wait itself with one on the virtual clock,
   woken when a run ends; this only matters where that patch is not installed).
7. ``CreateStateMachine`` parses the definition to validate it (about 150 ms with its
   ANTLR parser) and throws the result away; a definition that was valid once is not
   parsed again for validation. Each execution still parses its own.
8. Its service tasks make a new boto3 client for every call (0.3 s each on a loaded
   machine: a burst's 40 concurrency retries per execution spent minutes on it); the
   client of a region, service and credentials is made once and reused (boto3 clients
   are thread-safe).
9. Every JSONPath it evaluates (``json_path.extract_json``: each ``.$`` field, each
   retry's parameters) builds a new jsonpath_ng parser, PLY tables included: about a fifth
   of a per-object burst's time. A path is parsed once (the parsed expression keeps no
   state of a search).
"""

from __future__ import annotations

import inspect
import textwrap
from datetime import datetime
from typing import Any

_BUGGY_LINE = "callback_endpoint.interrupt_all()"
_FIXED_LINE = "if callback_endpoint is not None: callback_endpoint.interrupt_all()"


def fix_moto() -> None:
    """Apply the fixes (``_session.fix_moto`` applies them once, on a known moto)."""
    _patch_interrupt_all()
    _patch_glue_datetimes()
    _patch_aws_sdk_s3()
    _patch_glue_failure_cause()
    _patch_sync_poll_interval()
    _patch_definition_validation_memo()
    _patch_task_client_reuse()
    _patch_json_path_memo()


def _patch_interrupt_all() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as module,
    )

    cls = module.StateTaskServiceCallback
    source = textwrap.dedent(inspect.getsource(cls._eval_integration_pattern))
    if _BUGGY_LINE not in source:  # pragma: no cover - only on an unexpected moto build
        return
    namespace: dict[str, Any] = {}
    exec(
        compile(source.replace(_BUGGY_LINE, _FIXED_LINE), inspect.getfile(cls), "exec"),
        vars(module),
        namespace,
    )
    cls._eval_integration_pattern = namespace["_eval_integration_pattern"]  # type: ignore[method-assign]  # patching moto


class _JsonSafeGlueClient:
    """Returns job runs with timestamps as epoch milliseconds, as Step Functions does."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_job_run(self, **kwargs: Any) -> Any:
        return _epoch_millis(self._client.get_job_run(**kwargs))


def _epoch_millis(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _epoch_millis(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_epoch_millis(v) for v in value]
    return value


def _patch_glue_datetimes() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_glue as module,
    )

    cls = module.StateTaskServiceGlue
    original = cls._get_glue_client

    def json_safe_client(resource_runtime_part: Any, state_credentials: Any) -> Any:
        return _JsonSafeGlueClient(original(resource_runtime_part, state_credentials))

    cls._get_glue_client = staticmethod(json_safe_client)  # type: ignore[method-assign]  # patching moto


def _patch_aws_sdk_s3() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as module,
    )

    module._SERVICE_ERROR_NAMES["s3"] = "S3"
    cls = module.StateTaskServiceAwsSdk
    original = cls._eval_service_task

    def eval_service_task(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        original(self, env, *args, **kwargs)
        response = env.stack[-1] if env.stack else None
        if isinstance(response, dict) and hasattr(response.get("Body"), "read"):
            response["Body"] = response["Body"].read().decode("utf-8")
        if isinstance(response, dict):
            env.stack[-1] = _epoch_millis(response)

    cls._eval_service_task = eval_service_task  # type: ignore[method-assign]  # moto's own


CAUSE_LIMIT = 32_768
"""Step Functions' longest error cause, in characters; longer causes are cut."""


def step_functions_cause(value: Any) -> str:
    """A cause as Step Functions writes it: compact JSON, sorted keys, cut at the limit."""
    import json

    text = json.dumps(_epoch_millis(value), separators=(",", ":"), sort_keys=True)
    return text[:CAUSE_LIMIT]


def _patch_glue_failure_cause() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_glue as module,
    )

    vars(module)["to_json_str"] = lambda obj, separators=None: step_functions_cause(obj)


SYNC_POLL_SECONDS = 0.1
"""How often a ``.sync`` task checks its job run (moto: 0.5 s)."""


def _patch_sync_poll_interval() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as module,
    )

    vars(module)["_DELAY_SECONDS_SYNC_CONDITION_CHECK"] = SYNC_POLL_SECONDS


def _patch_definition_validation_memo() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    validate = StepFunctionsParserBackend._validate_definition
    valid: set[str] = set()

    def validate_once(definition: str) -> None:
        if definition in valid:
            return
        validate(definition)  # raises InvalidDefinition: not remembered
        valid.add(definition)

    setattr(  # noqa: B010 - patching moto
        StepFunctionsParserBackend, "_validate_definition", staticmethod(validate_once)
    )


def _patch_task_client_reuse() -> None:
    import importlib
    import threading

    from moto.stepfunctions.parser.asl.utils import boto_client

    from .._clients import SerialClient

    make = boto_client.boto_client_for
    made: dict[tuple[str, str, str], Any] = {}
    lock = threading.Lock()

    def reused_client(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, repr(state_credentials))
        with lock:
            if key not in made:
                # One request at a time with the harness's other callers: moto's S3 answers
                # through one shared response object that concurrent requests would overwrite.
                made[key] = SerialClient(make(region, service, state_credentials))
            return made[key]

    prefix = "moto.stepfunctions.parser.asl.component.state.exec.state_task"
    for module in (
        f"{prefix}.service.state_task_service_glue",
        f"{prefix}.service.state_task_service_aws_sdk",
        f"{prefix}.service.state_task_service_sns",
        f"{prefix}.service.state_task_service_sfn",
        f"{prefix}.service.state_task_service_dynamodb",
        f"{prefix}.service.state_task_service_sqs",
        f"{prefix}.lambda_eval_utils",
    ):
        namespace = vars(importlib.import_module(module))
        if "boto_client_for" in namespace:
            namespace["boto_client_for"] = reused_client


def _patch_json_path_memo() -> None:
    import functools

    from moto.stepfunctions.parser.asl.utils import json_path

    module = vars(json_path)
    if not hasattr(module["parse"], "cache_info"):  # once per process
        module["parse"] = functools.lru_cache(maxsize=4096)(module["parse"])

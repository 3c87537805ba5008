"""EventBridge as the template wires it: the default bus's rules and their targets.

(S3 puts its "Object Created" events on the bus through ``_s3``; CloudWatch publishes
alarms through ``_cloudwatch``.)

- EventBridge delivers a matching event to the rule's target (shaped by the target's
  ``Input``, ``InputPath`` or ``InputTransformer``) if the target's policies let it; a
  denied delivery goes straight to the target's dead-letter queue, a failing one is
  retried under the target's ``RetryPolicy`` first (:class:`ObjectCreatedRule`).
- Glue's "Job State Change" events start the notifier workflow through their rule, with
  the rule target's role (:class:`JobStateRule`).

What no policy or setting admits is lost, as in AWS, and listed in ``lost_events``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import deque
from typing import Any, Callable, Optional, cast

from .._contract import EVENTBRIDGE_MAX_RETRY_ATTEMPTS
from ._iam import AccessDeniedError, AccessGate
from ._layout import PipelineLayout
from ._provision import Emulation
from ._template import ACCOUNT, REGION

EVENT_SIZE_LIMIT = 262_144
"""EventBridge's largest event, and Lambda's largest asynchronous payload: 256 KB."""


def event(
    source: str, detail_type: str, *, detail: dict[str, Any], resources: Optional[list[str]] = None
) -> dict[str, Any]:
    """An EventBridge event as AWS services put them on the default bus."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": resources or [],
        "detail": detail,
    }


def pattern_matcher(pattern: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """Whether an event matches a rule's pattern, the pattern compiled once (moto's
    matcher: its TestEventPattern API answers nothing)."""
    from moto.events.models import EventPattern

    compiled = EventPattern.load(json.dumps(pattern))
    return lambda candidate: bool(compiled.matches_event(cast(Any, candidate)))


class UnsupportedTargetInputError(ValueError):
    """The rule target's input is shaped in a way the emulation does not apply."""


def target_input(target: dict[str, Any], candidate: dict[str, Any]) -> Any:
    """What EventBridge hands the target: the event, or what the target's ``Input``,
    ``InputPath`` (``$`` or a dotted path) or ``InputTransformer`` makes of it."""
    if "Input" in target:
        return json.loads(str(target["Input"]))
    if "InputPath" in target:
        path = str(target["InputPath"])
        if not re.fullmatch(r"\$(\.[A-Za-z0-9_-]+)*", path):
            raise UnsupportedTargetInputError(f"InputPath {path!r}: only $ and $.a.b paths")
        value: Any = candidate
        for part in path.split(".")[1:]:
            value = value.get(part) if isinstance(value, dict) else None
        return value
    if "InputTransformer" in target:
        from moto.events.utils import EventTemplateParser

        transformer = target["InputTransformer"]
        template = str(transformer.get("InputTemplate") or "")
        # The whole event as put (moto's parser would add the ingestion time to it).
        template = template.replace("<aws.events.event.json>", json.dumps(candidate))
        return EventTemplateParser.parse(
            input_template=template or None,  # type: ignore[arg-type]  # moto's hint omits None
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=cast(Any, {**candidate, "ingestion-time": str(candidate.get("time", ""))}),
        )
    return candidate


class ObjectCreatedRule:
    """The rule that hands object-created events to the trigger (its queue, or the
    function), delivering as the synthesized target says.

    A delivery the target's policies deny is not retried: it goes to the target's
    dead-letter queue at once (``ERROR_CODE`` ``NO_PERMISSIONS``). A delivery that fails
    for a transient reason (``faults.event_delivery_fails``) is retried up to the target's
    ``RetryPolicy.MaximumRetryAttempts`` times, then dead-lettered with
    ``EXHAUSTED_RETRY_CONDITION``. An event over 256 KB cannot be put on the bus.
    """

    def __init__(
        self,
        emulation: Emulation,
        access: AccessGate,
        *,
        sqs: Any,
        delivery_failures: deque[str],
    ) -> None:
        self._emulation = emulation
        self._access = access
        self._sqs = sqs
        self._delivery_failures = delivery_failures
        self.target = emulation.rule_target
        self.retry_attempts = int(
            self.target.get("RetryPolicy", {}).get(
                "MaximumRetryAttempts", EVENTBRIDGE_MAX_RETRY_ATTEMPTS
            )
        )
        self.lost_events: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self._matches = pattern_matcher(emulation.rule_pattern)

    def send(self, candidate: dict[str, Any]) -> bool:
        """Put an event on the bus; return whether the rule delivered it to its target."""
        size = len(json.dumps(candidate).encode("utf-8"))
        if size > EVENT_SIZE_LIMIT:
            raise ValueError(
                f"an event of {size} bytes: EventBridge's PutEvents takes at most "
                f"{EVENT_SIZE_LIMIT} (and Lambda's asynchronous invocation as much)"
            )
        self.sent.append(candidate)
        if not self._matches(candidate):
            return False
        target_arn = str(self.target["Arn"])
        try:
            self._access.check_event_delivery(self._emulation.rule_arn, target_arn)
        except AccessDeniedError as denied:
            self._dead_letter(candidate, "NO_PERMISSIONS", str(denied), retries=0)
            return False
        failures = 0
        while self._delivery_failures:
            code = self._delivery_failures.popleft()
            failures += 1
            if failures > self.retry_attempts:
                self._dead_letter(
                    candidate,
                    code,
                    "the target kept failing",
                    retries=self.retry_attempts,
                    exhausted="MaximumRetryAttempts",
                )
                return False
        self._sqs.send_message(
            QueueUrl=self._emulation.event_queue_url or self._emulation.delivery_queue_url,
            MessageBody=json.dumps(target_input(self.target, candidate)),
        )
        return True

    def _dead_letter(
        self,
        candidate: dict[str, Any],
        code: str,
        message: str,
        *,
        retries: int,
        exhausted: Optional[str] = None,
    ) -> None:
        """EventBridge's dead-letter delivery: the event, with why in its attributes; it
        too must be allowed by the dead-letter queue's policy and key."""
        dead_letter_arn = self.target.get("DeadLetterConfig", {}).get("Arn")
        if not dead_letter_arn:
            self.lost_events.append(candidate)
            return
        try:
            self._access.check_event_delivery(self._emulation.rule_arn, str(dead_letter_arn))
        except AccessDeniedError:
            self.lost_events.append(candidate)
            return
        attributes = {
            "ERROR_CODE": code,
            "ERROR_MESSAGE": message[:1000],
            "RULE_ARN": self._emulation.rule_arn,
            "TARGET_ARN": str(self.target["Arn"]),
            "RETRY_ATTEMPTS": str(retries),
        }
        if exhausted:
            attributes["EXHAUSTED_RETRY_CONDITION"] = exhausted
        self._sqs.send_message(
            QueueUrl=self._emulation.dead_letter_queue_url,
            MessageBody=json.dumps(candidate),
            MessageAttributes={
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
            },
        )


class JobStateRule:
    """Glue's "Job State Change" rule: a failed run's event starts the notifier workflow,
    as the rule target's role (which must be allowed ``states:StartExecution``)."""

    def __init__(
        self,
        layout: PipelineLayout,
        emulation: Emulation,
        access: AccessGate,
        *,
        start_execution: Callable[..., Any],
    ) -> None:
        self._emulation = emulation
        self._access = access
        self._start_execution = start_execution
        self._role = None
        self._maintenance_role = None
        self.lost_events: list[dict[str, Any]] = []
        if layout.notifier_id:
            self._role = access.rule_target_role(layout.notifier_id)
        if layout.maintenance_notifier_id:
            self._maintenance_role = access.rule_target_role(layout.maintenance_notifier_id)

    def run_ended(self, job_name: str, run_id: str, state: str, message: str) -> None:
        """A run of the pipeline's job ended ``state``: its rule's notifier, if it matches."""
        emulation = self._emulation
        self._deliver(
            (emulation.notifier_arn, emulation.job_state_pattern, self._role),
            job_name,
            run_id,
            state,
            message,
        )

    def maintenance_run_ended(self, job_name: str, run_id: str, state: str, message: str) -> None:
        """A run of the table maintenance job ended ``state``: its own rule and notifier."""
        emulation = self._emulation
        self._deliver(
            (
                emulation.maintenance_notifier_arn,
                emulation.maintenance_job_state_pattern,
                self._maintenance_role,
            ),
            job_name,
            run_id,
            state,
            message,
        )

    def _deliver(
        self, target: tuple[Any, Any, Any], job_name: str, run_id: str, state: str, message: str
    ) -> None:
        notifier, pattern, role = target
        if notifier is None or pattern is None:
            return
        candidate = event(
            "aws.glue",
            "Glue Job State Change",
            detail={
                "jobName": job_name,
                "severity": "ERROR",
                "state": state,
                "jobRunId": run_id,
                "message": message,
            },
        )
        if not pattern_matcher(pattern)(candidate):
            return
        if role is not None:
            try:
                self._access.policies.check(role, "states:StartExecution", notifier)
            except AccessDeniedError:
                self.lost_events.append(candidate)
                return
        self._start_execution(
            stateMachineArn=notifier, name=candidate["id"], input=json.dumps(candidate)
        )

"""The backfill state machine, offline: moto's interpreter has no Distributed Map with an
S3 ``ItemReader``, so this module runs the synthesized definition's settings itself.

Read from the template (never restated here): the prefix check (``Prefix allowed?``), the
reader's listing, ``ItemBatcher`` (``MaxItemsPerBatch``, ``MaxInputBytesPerBatch``, applied
to the ``ItemSelector``'s items), ``MaxConcurrency``, ``ToleratedFailurePercentage`` and the
per-object choice (``Object wanted?``). As in AWS: ``ListObjectsV2`` pages of 1,000 keys,
batches in listing order, at most ``MaxConcurrency`` workflow executions at a time (started
in waves of that size: each wave settles before the next starts), and the Map Run fails
once the failed batches pass the tolerated percentage (no new batch starts). The end is
the definition's notification (``source: backfill``, with the Map Run's totals).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ._observation import Run, finished_runs
from ._template import REGION, StackTemplate

LIST_PAGE_SIZE = 1000
"""Keys per ``ListObjectsV2`` page (S3's most)."""


class BackfillRefusedError(ValueError):
    """The backfill's input was refused (the state machine's ``Backfill refused`` state)."""


@dataclass(frozen=True)
class BackfillSettings:
    """The backfill state machine's settings, as synthesized."""

    allowed: Optional[str]
    """``StringMatches`` pattern a prefix must match (None: any prefix)."""
    batch_size: int
    batch_bytes: Optional[int]
    max_concurrency: int
    tolerated_failure_percentage: float
    leave_patterns: tuple[tuple[str, bool], ...]
    """Per object: (pattern, negated) choices that leave it out."""
    topic_logical_id: Optional[str]
    pipeline_name: str
    manifest_key_format: str
    """Each batch's manifest key, ``{}`` for the batch's (child execution's) name."""

    @classmethod
    def read(cls, stack: StackTemplate, pipeline_path: str) -> BackfillSettings:
        logical_id = stack.logical_id(f"{pipeline_path}/Backfill/StateMachine/Resource")
        if logical_id is None:
            raise LookupError(
                f"no backfill at {pipeline_path}: use pipeline.backfill in the stack (it is "
                "created on first use)"
            )
        raw = stack.resources[logical_id]["Properties"]["DefinitionString"]
        states = _definition(raw)["States"]
        process = states["Process objects"]
        batcher = process.get("ItemBatcher", {})
        inner = process["ItemProcessor"]["States"]["Select objects"]["ItemProcessor"]["States"]
        leave = tuple(
            (c["Not"]["StringMatches"], True) if "Not" in c else (c["StringMatches"], False)
            for c in inner["Object wanted?"]["Choices"]
        )
        batch_input = process["ItemProcessor"]["States"]["Batch input"]["Parameters"]
        key_format = re.search(r"States.Format\('([^']*)'", batch_input["manifest_key.$"])
        if key_format is None:  # pragma: no cover - the construct always writes one
            raise ValueError("the backfill's batch input names no manifest key")
        allowed = states.get("Prefix allowed?", {}).get("Choices", [{}])[0].get("StringMatches")
        topic = states["Notify backfill finished"]["Parameters"]["TopicArn"]
        return cls(
            allowed=allowed,
            batch_size=int(batcher.get("MaxItemsPerBatch", 1)),
            batch_bytes=batcher.get("MaxInputBytesPerBatch"),
            max_concurrency=int(process.get("MaxConcurrency", 0)) or 1000,
            tolerated_failure_percentage=float(process.get("ToleratedFailurePercentage", 0)),
            leave_patterns=leave,
            topic_logical_id=topic.get("Ref") if isinstance(topic, dict) else None,
            pipeline_name=states["Notify backfill finished"]["Parameters"]["Message"]["pipeline"],
            manifest_key_format=key_format.group(1),
        )


def _definition(raw: Any) -> dict[str, Any]:
    """The definition JSON, references replaced by their logical ids (as placeholders)."""
    if isinstance(raw, str):
        return dict(json.loads(raw))
    pieces = raw["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else json.dumps(p).replace('"', "'") for p in pieces)
    parsed: dict[str, Any] = json.loads(text)
    # A TopicArn is one whole reference: keep it as {"Ref": logical id}.
    for state in parsed["States"].values():
        arn = state.get("Parameters", {}).get("TopicArn")
        if isinstance(arn, str) and arn.startswith("{'Ref'"):
            state["Parameters"]["TopicArn"] = {"Ref": arn.split("'")[3]}
    return parsed


def string_matches(value: str, pattern: str) -> bool:
    """Step Functions' ``StringMatches``: ``*`` any characters, ``\\*`` and ``\\\\`` literal."""
    regex = "".join(
        re.escape(token[1])
        if token.startswith("\\")
        else (".*" if token == "*" else re.escape(token))
        for token in re.findall(r"\\.|\*|[^\\*]+", pattern)
    )
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


class BackfillResult(list[Run]):
    """What one offline backfill did: the workflow runs it started, one per batch, oldest
    first (it *is* that list), and how it got there."""

    status: str
    """``SUCCEEDED``, or ``FAILED`` once the failed batches passed the tolerated percentage."""
    listed: int
    """Objects the listing returned (folder markers and other suffixes included)."""
    batches: list[list[str]]
    """Each batch's objects as written to its manifest (after the per-object choice)."""
    waves: list[int]
    """Executions started per wave (each at most ``MaxConcurrency``)."""

    def __init__(self) -> None:
        super().__init__()
        self.status = "SUCCEEDED"
        self.listed = 0
        self.batches = []
        self.waves = []

    @property
    def runs(self) -> list[Run]:
        """The runs, as a plain list."""
        return list(self)


class BackfillEmulator:
    """Runs a backfill against the session's emulated S3, Step Functions and SNS."""

    def __init__(
        self,
        settings: BackfillSettings,
        *,
        s3: Any,
        sfn: Any,
        sns: Any,
        bucket: str,
        manifest_bucket: str,
        workflow_arn: str,
        settle: Callable[[], None],
    ) -> None:
        self.settings = settings
        self._s3, self._sfn, self._sns = s3, sfn, sns
        self._bucket, self._workflow = bucket, workflow_arn
        self._manifest_bucket = manifest_bucket
        self._settle = settle

    def run(self, prefix: Any, reprocess: Any) -> BackfillResult:
        self._check_input(prefix, reprocess)
        result = BackfillResult()
        failed = 0
        batches = list(self._batches(prefix, result))
        started: list[str] = []
        for first in range(0, len(batches), self.settings.max_concurrency):
            wave = [b for b in batches[first : first + self.settings.max_concurrency] if b]
            arns = [self._start(objects, reprocess) for objects in wave]
            result.waves.append(len(arns))
            result.batches += wave
            started += arns
            self._settle()
            failed += sum(1 for arn in arns if self._status(arn) != "SUCCEEDED")
            if failed * 100 > self.settings.tolerated_failure_percentage * len(batches):
                result.status = "FAILED"
                break
        runs = {r.execution_arn: r for r in finished_runs(self._sfn, self._s3, self._workflow)}
        result.extend(runs[a] for a in started if a in runs)
        self._notify(prefix, reprocess, result, len(batches), failed)
        return result

    def _check_input(self, prefix: Any, reprocess: Any) -> None:
        allowed = self.settings.allowed
        if (
            not isinstance(prefix, str)
            or not isinstance(reprocess, bool)
            or (allowed is not None and not string_matches(prefix, allowed))
        ):
            raise BackfillRefusedError(
                f"BackfillInputError: prefix {prefix!r} (reprocess {reprocess!r}) refused; "
                f"a prefix must match {allowed!r}"
            )

    def _listing(self, prefix: str) -> Iterator[dict[str, Any]]:
        token: Optional[str] = None
        while True:
            page = self._s3.list_objects_v2(
                Bucket=self._bucket,
                Prefix=prefix,
                MaxKeys=LIST_PAGE_SIZE,
                **({"ContinuationToken": token} if token else {}),
            )
            yield from page.get("Contents", [])
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]

    def _batches(self, prefix: str, result: BackfillResult) -> Iterator[list[str]]:
        """Batches of the ItemSelector's items, by count and bytes; each batch's objects
        after the per-object choice (an empty batch starts no workflow)."""
        batch: list[dict[str, str]] = []
        size = 0
        for item in self._listing(prefix):
            result.listed += 1
            selected = {"bucket": self._bucket, "key": item["Key"]}
            item_bytes = len(json.dumps(selected))
            limit = self.settings.batch_bytes
            if batch and (
                len(batch) >= self.settings.batch_size or (limit and size + item_bytes > limit)
            ):
                yield self._wanted(batch)
                batch, size = [], 0
            batch.append(selected)
            size += item_bytes
        if batch:
            yield self._wanted(batch)

    def _wanted(self, batch: list[dict[str, str]]) -> list[str]:
        def leave(key: str) -> bool:
            return any(
                string_matches(key, pattern) != negated
                for pattern, negated in self.settings.leave_patterns
            )

        return [f"s3://{i['bucket']}/{i['key']}" for i in batch if not leave(i["key"])]

    def _start(self, objects: list[str], reprocess: bool) -> str:
        """Write the batch's manifest (``States.JsonToString`` of the batch) and start the
        workflow on it; the workflow execution is named with a UUID, as by the task."""
        key = self.settings.manifest_key_format.replace("{}", str(uuid.uuid4()))
        body = json.dumps({"objects": objects, "reprocess": reprocess})
        self._s3.put_object(Bucket=self._manifest_bucket, Key=key, Body=body)
        payload = {"manifest": f"s3://{self._manifest_bucket}/{key}"}
        response = self._sfn.start_execution(
            stateMachineArn=self._workflow, name=str(uuid.uuid4()), input=json.dumps(payload)
        )
        return str(response["executionArn"])

    def _status(self, arn: str) -> str:
        return str(self._sfn.describe_execution(executionArn=arn)["status"])

    def _notify(
        self, prefix: str, reprocess: bool, result: BackfillResult, batches: int, failed: int
    ) -> None:
        topic = self.settings.topic_logical_id
        if topic is None:
            return
        message: Mapping[str, Any] = {
            "pipeline": self.settings.pipeline_name,
            "status": result.status,
            "source": "backfill",
            "objects": [],
            "manifest": "",
            "prefix": prefix,
            "reprocess": reprocess,
            "totals": {
                "objects_listed": result.listed,
                "batches": batches,
                "batches_failed": failed,
            },
        }
        self._sns.publish(
            TopicArn=f"arn:aws:sns:{REGION}:{_account(self._workflow)}:{topic}",
            Message=json.dumps(message),
            MessageAttributes={"status": {"DataType": "String", "StringValue": result.status}},
        )


def _account(arn: str) -> str:
    return arn.split(":")[4]

"""S3 as the pipeline's source: an upload's "Object Created" event, put on EventBridge's
default bus only when the template turns EventBridge on for the bucket."""

from __future__ import annotations

import itertools
import uuid
from typing import Any
from urllib.parse import quote_plus

from ._events import event
from ._layout import PipelineLayout
from ._template import ACCOUNT

_sequencer = itertools.count(1)


class SourceUploads:
    """Uploads into the emulated buckets, each with the event S3 would send (if any)."""

    def __init__(self, layout: PipelineLayout, s3: Any) -> None:
        self._layout = layout
        self._s3 = s3
        self._sends_to_eventbridge: dict[str, bool] = {}

    def put_object(self, bucket: str, key: str, body: bytes) -> tuple[dict[str, Any], bool]:
        """Upload; return the "Object Created" event and whether S3 sends it to EventBridge
        (the template's answer, read once per bucket)."""
        response = self._s3.put_object(Bucket=bucket, Key=key, Body=body)
        created = object_created(bucket, key, len(body), response)
        if bucket not in self._sends_to_eventbridge:
            self._sends_to_eventbridge[bucket] = sends_to_eventbridge(self._layout, bucket)
        return created, self._sends_to_eventbridge[bucket]


def object_created(
    bucket: str, key: str, size: int, put_response: dict[str, Any]
) -> dict[str, Any]:
    """S3's "Object Created" event for a PutObject: URL-encoded key, a unique sequencer, the
    ETag, and the version id when the bucket is versioned."""
    detail_object: dict[str, Any] = {
        "key": quote_plus(key, safe="/"),
        "size": size,
        "etag": put_response["ETag"].strip('"'),
        "sequencer": f"{next(_sequencer):018X}",
    }
    if put_response.get("VersionId") and put_response["VersionId"] != "null":
        detail_object["version-id"] = put_response["VersionId"]
    return event(
        "aws.s3",
        "Object Created",
        resources=[f"arn:aws:s3:::{bucket}"],
        detail={
            "version": "0",
            "bucket": {"name": bucket},
            "object": detail_object,
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": ACCOUNT,
            "reason": "PutObject",
        },
    )


def sends_to_eventbridge(layout: PipelineLayout, bucket: str) -> bool:
    """Whether the template turns on EventBridge for ``bucket`` (on the bucket itself, or
    through CDK's bucket-notifications custom resource for a bucket it imports)."""
    resolver = layout.resolver
    for logical_id, resource in layout.resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::S3::Bucket":
            if resolver.physical.get(logical_id) != bucket:
                continue
            config = props.get("NotificationConfiguration", {})
            if config.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
                return True
        elif resource["Type"] == "Custom::S3BucketNotifications":
            if str(resolver.resolve(props.get("BucketName"))) != bucket:
                continue
            if "EventBridgeConfiguration" in props.get("NotificationConfiguration", {}):
                return True
    return False

"""Parse EventBridge "Object Created" events from S3 into object references.

Plain Python with no dependencies, so the trigger Lambda, the constructs (for
event patterns) and the offline harness share one definition of an object's
identity and of how S3 encodes keys.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, unquote_plus

#: Step Functions allows 80 characters in an execution name.
MAX_EXECUTION_NAME_LENGTH = 80

_HASH_LENGTH = 40
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


class MalformedEventError(ValueError):
    """The event is not an S3 "Object Created" event this pipeline can process."""


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object version, as named by one "Object Created" event.

    ``key`` is decoded: exactly as the object is stored in S3.
    """

    bucket: str
    key: str
    size: int | None = None
    etag: str = ""
    version_id: str = ""
    sequencer: str = ""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def identity(self) -> str:
        """A string that is equal for two deliveries of one upload and differs between uploads.

        Built from the object itself (bucket, key, version id, sequencer, etag), never from the
        EventBridge event id, which differs between redeliveries of the same upload.
        """
        return "\x1f".join((self.bucket, self.key, self.version_id, self.sequencer, self.etag))

    @property
    def is_folder_marker(self) -> bool:
        """The zero-byte ``key/`` objects that consoles create for "folders"."""
        return self.key.endswith("/") and not self.size


def encode_key(key: str) -> str:
    """Encode a key as S3 writes it into event notifications (``+`` for a space)."""
    return quote_plus(key, safe="/")


def decode_key(key: str) -> str:
    """Decode an event's key once, as AWS Lambda Powertools does."""
    return unquote_plus(key)


def parse_object_created(event: Any) -> ObjectRef:
    """Return the object an EventBridge S3 "Object Created" event names.

    Raises :class:`MalformedEventError` naming the field that is missing or wrong.
    """
    if not isinstance(event, Mapping):
        raise MalformedEventError(f"event must be a JSON object, got {type(event).__name__}")
    if event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        raise MalformedEventError(
            "event is not an S3 'Object Created' event: "
            f"source={event.get('source')!r}, detail-type={event.get('detail-type')!r}"
        )
    detail = _mapping(event, "detail")
    bucket = _mapping(detail, "bucket", "detail")
    obj = _mapping(detail, "object", "detail")
    bucket_name = bucket.get("name")
    raw_key = obj.get("key")
    if not isinstance(bucket_name, str) or not bucket_name:
        raise MalformedEventError("detail.bucket.name must be a non-empty string")
    if not isinstance(raw_key, str) or not raw_key:
        raise MalformedEventError("detail.object.key must be a non-empty string")
    size = obj.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise MalformedEventError(
            f"detail.object.size must be a non-negative integer, got {size!r}"
        )
    return ObjectRef(
        bucket=bucket_name,
        key=decode_key(raw_key),
        size=size,
        etag=str(obj.get("etag") or ""),
        version_id=str(obj.get("version-id") or ""),
        sequencer=str(obj.get("sequencer") or ""),
    )


def _mapping(parent: Mapping[str, Any], field: str, path: str = "") -> Mapping[str, Any]:
    value = parent.get(field)
    if not isinstance(value, Mapping):
        name = f"{path}.{field}" if path else field
        raise MalformedEventError(f"{name} must be a JSON object, got {value!r}")
    return value


def execution_name(objects: list[ObjectRef]) -> str:
    """A valid, deterministic Step Functions execution name for a set of objects.

    Equal for equal object sets (in any order, with repeats), distinct for distinct sets
    (160-bit hash of the sorted identities), at most 80 characters of ``[A-Za-z0-9_-]``.
    The readable part is the last key segment of the first object, for the console.
    """
    if not objects:
        raise ValueError("execution_name needs at least one object")
    identities = sorted({o.identity for o in objects})
    digest = hashlib.sha256("\x1e".join(identities).encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    first = min(objects, key=lambda o: o.identity)
    label = _UNSAFE_NAME_CHARS.sub("-", first.key.rsplit("/", 1)[-1]).strip("-") or "object"
    if len(identities) > 1:
        label = f"batch{len(identities)}-{label}"
    room = MAX_EXECUTION_NAME_LENGTH - _HASH_LENGTH - 1
    return f"{label[:room]}-{digest}"

"""Conditional writes of the object marks: create only if absent, replace only if unchanged.

Two runs holding the same object (a live run and a backfill batch) must not both land it,
so a run claims each object by creating its mark only if no mark exists, and takes over
another's mark only if it is still the one it read. S3 does both with conditional
PutObject requests
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html):
``If-None-Match: *`` fails with 412 PreconditionFailed when the key exists, ``If-Match:
<etag>`` with 412 when the object changed; a concurrent conditional write of the same key
may fail with 409 ConditionalRequestConflict (retry). They need only ``s3:PutObject``.

Hadoop's file system has no conditional create, so the marks go through boto3 (in Glue's
runtime). Glue's bundled botocore may predate the ``IfNoneMatch``/``IfMatch`` parameters
(botocore 1.35.x, 2024), so the headers are always added by a ``before-call`` hook: one
path on every botocore, the same one the offline tests run.

Hadoop's writes carry the job's security configuration (SSE-KMS with the output key); a
plain PutObject gets only the bucket's default encryption, and a bucket policy that denies
PutObject without SSE-KMS headers would refuse every mark. So with an output key (the
``--output_kms_key_arn`` argument) each mark is put with ``ServerSideEncryption=aws:kms``
and that key
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/specifying-kms-encryption.html).
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any, Optional, Protocol

from .storage import Storage

_PRECONDITION_FAILED = ("PreconditionFailed", "412")
_LOST = (*_PRECONDITION_FAILED, "NoSuchKey", "404")
"""A conditional write that did not happen: the mark exists or changed (412), or it was
removed since it was read (404)."""

_CONFLICT = ("ConditionalRequestConflict", "409")
"""Another conditional write of the mark was under way: S3 asks to retry, and the retry
finds out which write won (412 if the other one did)."""

_CONFLICT_ATTEMPTS = 6
_CONFLICT_BACKOFF_SECONDS = 0.05
"""The first wait, doubling and jittered, before a write that met a 409 is tried again."""


class MarkStore(Protocol):
    def create(self, uri: str, text: str) -> Optional[str]:
        """Write ``text`` at ``uri`` if nothing is there: its ETag, or None if a mark is."""

    def read(self, uri: str) -> Optional[tuple[str, str]]:
        """The mark's text and ETag, or None when there is none."""

    def replace(self, uri: str, text: str, etag: str) -> Optional[str]:
        """Write ``text`` at ``uri`` if the mark there still has ``etag``: the new ETag,
        or None if it changed (or is gone)."""


_POOL_CONNECTIONS = 20
"""The client's connection pool: at least the claims' threads (``landed._CONCURRENT_CALLS``),
so that none waits for, or drops, a connection (botocore's default is 10)."""


def mark_store(
    storage: Storage, output: str, *, region: Optional[str] = None, kms_key: str = ""
) -> MarkStore:
    """Conditional writes on S3 (in ``region``, encrypted with ``kms_key`` when given); a
    local table (tests, a local run) goes through Hadoop."""
    if output.startswith(("s3://", "s3a://", "s3n://")):
        return S3MarkStore(region=region, kms_key=kms_key)
    return LocalMarkStore(storage)


def s3_client(region: Optional[str]) -> Any:
    """One boto3 S3 client for the marks: the job's region, a pool for the claims' threads."""
    import boto3  # in Glue's runtime (and the offline harness's)
    from botocore.config import Config

    return boto3.client(
        "s3", region_name=region or None, config=Config(max_pool_connections=_POOL_CONNECTIONS)
    )


class S3MarkStore:
    """Marks through one boto3 S3 client (thread-safe: the claims run 16 at a time), made
    on the calling thread (the harness checks the clients the script's thread makes).

    ``kms_key``: the output key's ARN; the marks are put with SSE-KMS under it (else the
    bucket's default encryption applies)."""

    def __init__(
        self, client: Any = None, *, region: Optional[str] = None, kms_key: str = ""
    ) -> None:
        self._client = client if client is not None else s3_client(region)
        self._encryption = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key} if kms_key else {}
        )
        client = self._client
        self._conditions = threading.local()
        client.meta.events.register("before-call.s3.PutObject", self._add_condition)

    def _add_condition(self, params: dict[str, Any], **_: Any) -> None:
        headers = getattr(self._conditions, "headers", None)
        if headers:
            params.setdefault("headers", {}).update(headers)

    def _put(self, uri: str, text: str, headers: dict[str, str]) -> Optional[str]:
        """The conditional write, tried again on a 409; None when it did not happen (a
        conflict that outlasts the retries too: the caller reads the mark again)."""
        for attempt in range(_CONFLICT_ATTEMPTS):
            try:
                return self._put_once(uri, text, headers)
            except _ConflictError:
                time.sleep(random.uniform(0, _CONFLICT_BACKOFF_SECONDS * 2**attempt))
        return None

    def _put_once(self, uri: str, text: str, headers: dict[str, str]) -> Optional[str]:
        bucket, key = _split(uri)
        self._conditions.headers = headers
        try:
            answer = self._client.put_object(
                Bucket=bucket, Key=key, Body=text.encode("utf-8"), **self._encryption
            )
        except Exception as error:
            if _error_code(error) in _LOST:
                return None
            if _error_code(error) in _CONFLICT:
                raise _ConflictError() from error
            raise
        finally:
            self._conditions.headers = None
        return str(answer["ETag"])

    def create(self, uri: str, text: str) -> Optional[str]:
        return self._put(uri, text, {"If-None-Match": "*"})

    def replace(self, uri: str, text: str, etag: str) -> Optional[str]:
        return self._put(uri, text, {"If-Match": etag})

    def read(self, uri: str) -> Optional[tuple[str, str]]:
        bucket, key = _split(uri)
        try:
            answer = self._client.get_object(Bucket=bucket, Key=key)
        except Exception as error:
            if _error_code(error) in ("NoSuchKey", "404"):
                return None
            raise
        return answer["Body"].read().decode("utf-8"), str(answer["ETag"])


class _ConflictError(Exception):
    """A 409 ConditionalRequestConflict: retry the write."""


_local_lock = threading.Lock()
"""A local table's marks are written by the runs of one process: checked and written
under this lock, one at a time, as S3 conditions a write."""


class LocalMarkStore:
    """Marks of a table outside S3 (a local path, written by one process's runs): a check
    before the write, under a lock; the text stands for the ETag."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def create(self, uri: str, text: str) -> Optional[str]:
        with _local_lock:
            if self._storage.read_text(uri) is not None:
                return None
            self._storage.write_text(uri, text)
            return text

    def read(self, uri: str) -> Optional[tuple[str, str]]:
        # Under the lock too: a local file is written in place (truncated, then filled), so
        # a read beside a write could see it empty or half written; an S3 PUT is atomic.
        with _local_lock:
            text = self._storage.read_text(uri)
        return None if text is None else (text, text)

    def replace(self, uri: str, text: str, etag: str) -> Optional[str]:
        with _local_lock:
            if self._storage.read_text(uri) != etag:
                return None
            self._storage.write_text(uri, text)
            return text


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key


def _error_code(error: BaseException) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))

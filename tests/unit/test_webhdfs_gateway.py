"""The WebHDFS gateway over the emulated S3 (``testing/_webhdfs.py``), through its HTTP API
as Hadoop's client calls it: S3's semantics (no rename, no directories) and every request
checked before it reaches S3. The Spark end-to-end tests are in
``tests/e2e/test_script_calls_offline.py``; these pin the edges fast, without Spark."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from event_driven_etl.testing._webhdfs import S3Gateway

BUCKET = "data"


class DeniedError(Exception):
    """What the role's check raises."""


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Gateway]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        served = S3Gateway(s3)
        served.start()
        try:
            yield served
        finally:
            served.stop()


def _call(gateway: S3Gateway, method: str, path: str, op: str, **query: str) -> tuple[int, bytes]:
    parameters = "&".join([f"op={op}", *(f"{k}={v}" for k, v in query.items())])
    url = f"http://{gateway.address}/webhdfs/v1/{BUCKET}/{path}?{parameters}"
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request) as response:  # follows OPEN/CREATE's 307
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _json(gateway: S3Gateway, method: str, path: str, op: str, **query: str) -> Any:
    status, body = _call(gateway, method, path, op, **query)
    return status, json.loads(body) if body else None


def _put(gateway: S3Gateway, path: str, data: bytes) -> int:
    # urllib does not follow a 307 for PUT: ask for the datanode URL, then send the data.
    status, located = _json(gateway, "PUT", path, "CREATE", noredirect="true", overwrite="true")
    assert status == 200
    request = urllib.request.Request(located["Location"], data=data, method="PUT")
    with urllib.request.urlopen(request) as response:
        return int(response.status)


def _keys(gateway: S3Gateway) -> list[str]:
    listed = gateway.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def test_a_file_written_is_an_object_and_reads_back_by_range(gateway: S3Gateway) -> None:
    assert _put(gateway, "out/a.txt", b"hello world") == 201
    assert _keys(gateway) == ["out/a.txt"]
    status, data = _call(gateway, "GET", "out/a.txt", "OPEN", offset="6", length="5")
    assert (status, data) == (200, b"world")
    _, found = _json(gateway, "GET", "out/a.txt", "GETFILESTATUS")
    assert found["FileStatus"]["type"] == "FILE" and found["FileStatus"]["length"] == 11


def test_a_directory_is_a_prefix_and_mkdirs_writes_no_object(gateway: S3Gateway) -> None:
    assert _json(gateway, "PUT", "out/empty", "MKDIRS") == (200, {"boolean": True})
    assert _keys(gateway) == []
    _, found = _json(gateway, "GET", "out/empty", "GETFILESTATUS")
    assert found["FileStatus"]["type"] == "DIRECTORY"
    _put(gateway, "out/sub/b.txt", b"b")
    _, listed = _json(gateway, "GET", "out", "LISTSTATUS")
    names = {s["pathSuffix"]: s["type"] for s in listed["FileStatuses"]["FileStatus"]}
    assert names == {"empty": "DIRECTORY", "sub": "DIRECTORY"}


def test_a_rename_is_a_copy_and_a_delete_of_every_object(gateway: S3Gateway) -> None:
    _put(gateway, "stage/x/1.parquet", b"1")
    _put(gateway, "stage/x/2.parquet", b"2")
    assert _json(gateway, "PUT", "stage/x", "RENAME", destination=f"/{BUCKET}/final/x") == (
        200,
        {"boolean": True},
    )
    assert _keys(gateway) == ["final/x/1.parquet", "final/x/2.parquet"]
    actions = [a for a, _, k in gateway.calls if k.startswith(("stage/x/", "final/x/"))]
    assert actions.count("s3:PutObject") >= 2 and actions.count("s3:DeleteObject") == 2


def test_fails_a_rename_onto_an_existing_file(gateway: S3Gateway) -> None:
    """Hadoop's S3 file system refuses it (HADOOP-13823); a local rename would overwrite."""
    _put(gateway, "a.txt", b"new")
    _put(gateway, "b.txt", b"old")
    assert _json(gateway, "PUT", "a.txt", "RENAME", destination=f"/{BUCKET}/b.txt") == (
        200,
        {"boolean": False},
    )
    assert gateway.s3.get_object(Bucket=BUCKET, Key="b.txt")["Body"].read() == b"old"


def test_fails_to_delete_a_directory_that_holds_objects_unless_recursive(
    gateway: S3Gateway,
) -> None:
    _put(gateway, "d/a.txt", b"a")
    status, error = _json(gateway, "DELETE", "d", "DELETE", recursive="false")
    assert status == 403
    assert error["RemoteException"]["exception"] == "PathIsNotEmptyDirectoryException"
    assert _json(gateway, "DELETE", "d", "DELETE", recursive="true") == (200, {"boolean": True})
    assert _keys(gateway) == []


def test_fails_a_denied_write_before_it_reaches_s3(gateway: S3Gateway) -> None:
    def deny_puts(action: str, bucket: str, key: str) -> None:
        if action == "s3:PutObject":
            raise DeniedError(f"not authorized to perform: {action} on {bucket}/{key}")

    with gateway.acting_as(deny_puts) as written:
        status, _ = _json(gateway, "PUT", "out/a.txt", "CREATE", noredirect="true")
        assert status == 200  # the redirect itself writes nothing
        _, located = _json(gateway, "PUT", "out/a.txt", "CREATE", noredirect="true")
        request = urllib.request.Request(located["Location"], data=b"x", method="PUT")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request)
        assert refused.value.code == 403
        assert b"AccessControlException" in refused.value.read()
    assert _keys(gateway) == [] and written == set()


def test_fails_a_missing_key_as_access_denied_without_list_bucket(gateway: S3Gateway) -> None:
    """S3 says "not found" only to a caller that may list the bucket (GetObject,
    "Permissions"): without s3:ListBucket, a missing key is AccessDenied."""

    def no_listing(action: str, bucket: str, key: str) -> None:
        if action == "s3:ListBucket":
            raise DeniedError(f"not authorized to perform: {action}")

    with gateway.acting_as(no_listing):
        status, error = _json(gateway, "GET", "missing.txt", "GETFILESTATUS")
        assert status == 403, error
    status, error = _json(gateway, "GET", "missing.txt", "GETFILESTATUS")
    assert status == 404 and error["RemoteException"]["exception"] == "FileNotFoundException"


def test_every_request_is_checked_with_the_callers_action(gateway: S3Gateway) -> None:
    seen: list[tuple[str, str]] = []

    def record(action: str, bucket: str, key: str) -> None:
        seen.append((action, key))

    _put(gateway, "t/a.txt", b"a")
    with gateway.acting_as(record) as written:
        _put(gateway, "t/b.txt", b"b")
        _call(gateway, "GET", "t/a.txt", "OPEN")
        _json(gateway, "GET", "t", "LISTSTATUS")
        _json(gateway, "DELETE", "t/a.txt", "DELETE")
    assert ("s3:PutObject", "t/b.txt") in seen
    assert ("s3:GetObject", "t/a.txt") in seen
    assert ("s3:ListBucket", "t/") in seen
    assert ("s3:DeleteObject", "t/a.txt") in seen
    assert written == {f"s3://{BUCKET}/t/b.txt"}

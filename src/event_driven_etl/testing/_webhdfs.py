"""The emulated S3 as a Hadoop file system: a WebHDFS endpoint over the emulated buckets.

Spark and the Glue script reach ``s3://bucket/...`` through Hadoop's FileSystem API. Offline,
``s3://bucket`` is mounted on ``webhdfs://127.0.0.1:<port>/bucket`` (Hadoop's own WebHDFS client
is in every Spark distribution), and this server answers each call from the emulated S3 itself,
with S3's semantics, after checking it with the caller's role:

- every call is checked before it reaches S3, as S3 checks a request: reading an object needs
  ``s3:GetObject``, a listing ``s3:ListBucket`` (with its ``s3:prefix``), writing ``s3:PutObject``,
  deleting ``s3:DeleteObject``; a missing key is ``FileNotFoundException`` only to a caller that
  may list the bucket, else ``AccessDenied`` (Amazon S3 API Reference, GetObject/HeadObject
  "Permissions");
- S3 has no rename: a rename is a copy of each object, then a delete of the source (so it needs
  read, write and delete), and it is refused onto an existing file, as Hadoop's S3 file system
  does (HADOOP-13823) and unlike a local rename, which overwrites;
- S3 has no directories: a "directory" is a key prefix; ``mkdirs`` makes none in S3 (it is
  remembered here until its prefix holds an object or it is deleted), so the buckets hold
  only the objects a run wrote, as S3 does.

WebHDFS REST API: https://hadoop.apache.org/docs/stable/hadoop-project-dist/hadoop-hdfs/WebHDFS.html
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, quote, unquote, urlsplit

from ._clients import SERVICE_LOCK

Authorize = Callable[[str, str, str], None]
"""``(action, bucket, key_or_prefix)``: raises when the current caller may not make the call."""

_PREFIX = "/webhdfs/v1"
_BLOCK = 128 * 1024 * 1024


class GatewayError(Exception):
    """A WebHDFS ``RemoteException``: its HTTP status and Java exception class."""

    def __init__(self, status: int, java_class: str, message: str) -> None:
        super().__init__(message)
        self.status, self.java_class = status, java_class


def _not_found(bucket: str, key: str) -> GatewayError:
    return GatewayError(
        404, "java.io.FileNotFoundException", f"No such file or directory: s3://{bucket}/{key}"
    )


@dataclass
class S3Gateway:
    """The WebHDFS endpoint over the emulated S3 (see the module's docstring)."""

    s3: Any
    """A boto3 S3 client of the emulation."""
    authorize: Optional[Authorize] = None
    """Checks each call as the current caller; None: the harness's own calls, unchecked."""
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    """Every S3 action the gateway made or refused: ``(action, bucket, key)``."""
    _dirs: set[tuple[str, str]] = field(default_factory=set)
    _written: Optional[set[str]] = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: Optional[ThreadingHTTPServer] = None

    # ------------------------------------------------------------------ life

    def start(self) -> None:
        gateway = self

        class Handler(_Handler):
            owner = gateway

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="s3-webhdfs", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def address(self) -> str:
        if self._server is None:
            raise RuntimeError("the gateway is not running")
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def uri(self, bucket: str) -> str:
        """Where Hadoop finds ``bucket`` (the mount target of ``s3://bucket``)."""
        return f"webhdfs://{self.address}/{bucket}"

    @contextmanager
    def acting_as(self, authorize: Authorize) -> Iterator[set[str]]:
        """Calls check with ``authorize`` meanwhile; yields the URIs written (and not deleted
        again) meanwhile."""
        written: set[str] = set()
        with self._lock:
            self.authorize, self._written = authorize, written
        try:
            yield written
        finally:
            with self._lock:
                self.authorize, self._written = None, None

    def _record(self, bucket: str, key: str, *, exists: bool) -> None:
        with self._lock:
            if self._written is not None:
                uri = f"s3://{bucket}/{key}"
                (self._written.add if exists else self._written.discard)(uri)

    # ------------------------------------------------------------------ checks

    def _check(self, action: str, bucket: str, key: str) -> None:
        with self._lock:
            self.calls.append((action, bucket, key))
        if self.authorize is not None:
            try:
                self.authorize(action, bucket, key)
            except GatewayError:
                raise
            except Exception as error:
                raise GatewayError(
                    403, "org.apache.hadoop.security.AccessControlException", str(error)
                ) from error

    # ------------------------------------------------------------------ S3 model

    def _head(self, bucket: str, key: str) -> Optional[dict[str, Any]]:
        """A HEAD of ``key``: it needs ``s3:GetObject`` whether the key exists or not."""
        if not key:
            return None
        self._check("s3:HeadObject", bucket, key)
        try:
            return dict(self.s3.head_object(Bucket=bucket, Key=key))
        except Exception as error:
            if _code(error) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _keys(self, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def _is_dir(self, bucket: str, key: str) -> bool:
        """Whether ``key`` names a directory: the bucket, a remembered ``mkdirs`` or a prefix
        that holds an object. Checked as S3 would answer: a listing."""
        if not key:
            return True
        prefix = key.rstrip("/") + "/"
        self._check("s3:ListBucket", bucket, prefix)
        if (bucket, prefix) in self._dirs:
            return True
        page = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        return bool(page.get("Contents"))

    def status(self, bucket: str, key: str) -> dict[str, Any]:
        """GETFILESTATUS: a HEAD of the key (``s3:GetObject``), else a listing of its prefix."""
        key = key.rstrip("/")
        head = self._head(bucket, key)
        if head is not None:
            return _file_status("", head["ContentLength"], head["LastModified"].timestamp())
        if self._is_dir(bucket, key):
            return _dir_status("")
        raise _not_found(bucket, key)

    def list(self, bucket: str, key: str) -> list[dict[str, Any]]:
        """LISTSTATUS: the files and directories directly under ``key`` (a file: itself)."""
        key = key.rstrip("/")
        prefix = f"{key}/" if key else ""
        self._check("s3:ListBucket", bucket, prefix)
        entries: dict[str, dict[str, Any]] = {}
        for item in self._keys(bucket, prefix):
            rest = item["Key"][len(prefix) :]
            name, slash, _ = rest.partition("/")
            if not name:
                continue
            if slash:
                entries.setdefault(name, _dir_status(name))
            else:
                entries[name] = _file_status(name, item["Size"], item["LastModified"].timestamp())
        with self._lock:
            for b, directory in self._dirs:
                if b == bucket and directory.startswith(prefix) and directory != prefix:
                    name = directory[len(prefix) :].split("/", 1)[0]
                    entries.setdefault(name, _dir_status(name))
        if entries or (bucket, prefix) in self._dirs or not key:
            return [entries[n] for n in sorted(entries)]
        head = self._head(bucket, key)
        if head is not None:
            # WebHDFS lists a file as itself, with an empty path suffix.
            return [_file_status("", head["ContentLength"], head["LastModified"].timestamp())]
        raise _not_found(bucket, key)

    def read(self, bucket: str, key: str, offset: int, length: Optional[int]) -> bytes:
        """OPEN: one (ranged) GetObject, no HEAD before it (S3 bounds the range itself)."""
        self._check("s3:GetObject", bucket, key)
        if length == 0:
            return b""
        last = "" if length is None else str(offset + length - 1)
        ranged = {"Range": f"bytes={offset}-{last}"} if offset or last else {}
        try:
            response = self.s3.get_object(Bucket=bucket, Key=key, **ranged) if key else None
        except Exception as error:
            if _code(error) == "InvalidRange":  # from at or past the end: nothing to read
                return b""
            if _code(error) not in ("404", "NoSuchKey", "NotFound"):
                raise
            response = None
        if response is None:
            # S3 says NoSuchKey only to a caller that may list (else AccessDenied): the check
            # a listing of the key's prefix makes, without the listing (its answer is unused).
            self._check("s3:ListBucket", bucket, key.rstrip("/") + "/" if key else "")
            raise _not_found(bucket, key)
        return bytes(response["Body"].read())

    def write(self, bucket: str, key: str, body: bytes, *, overwrite: bool) -> None:
        """CREATE: a PutObject (refused onto an existing file unless ``overwrite``)."""
        self._check("s3:PutObject", bucket, key)
        if not overwrite and self._head(bucket, key) is not None:
            raise GatewayError(
                403,
                "org.apache.hadoop.fs.FileAlreadyExistsException",
                f"s3://{bucket}/{key} already exists",
            )
        self.s3.put_object(Bucket=bucket, Key=key, Body=body)
        self._record(bucket, key, exists=True)
        self._forget_dirs_above(bucket, key)

    def mkdirs(self, bucket: str, key: str) -> bool:
        """MKDIRS: nothing in S3; remembered so that the empty directory lists."""
        parts = [p for p in key.split("/") if p]
        with self._lock:
            for depth in range(1, len(parts) + 1):
                self._dirs.add((bucket, "/".join(parts[:depth]) + "/"))
        return True

    def delete(self, bucket: str, key: str, *, recursive: bool) -> bool:
        """DELETE: a DeleteObject of the file, or of every object under the directory."""
        key = key.rstrip("/")
        head = self._head(bucket, key)
        if head is not None:
            self._check("s3:DeleteObject", bucket, key)
            self.s3.delete_object(Bucket=bucket, Key=key)
            self._record(bucket, key, exists=False)
            return True
        if not self._is_dir(bucket, key):
            return False
        prefix = f"{key}/" if key else ""
        children = [item["Key"] for item in self._keys(bucket, prefix)]
        if children and not recursive:
            raise GatewayError(
                403,
                "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException",
                f"s3://{bucket}/{key} is not empty",
            )
        for child in children:
            self._check("s3:DeleteObject", bucket, child)
            self.s3.delete_object(Bucket=bucket, Key=child)
            self._record(bucket, child, exists=False)
        with self._lock:
            self._dirs = {
                (b, d) for b, d in self._dirs if not (b == bucket and d.startswith(prefix))
            }
        return True

    def rename(self, bucket: str, source: str, target: str) -> bool:
        """RENAME: copy each object, then delete it; false onto an existing file (HDFS and
        S3A semantics), into a directory that exists (as ``mv``)."""
        source, target = source.rstrip("/"), target.rstrip("/")
        head = self._head(bucket, source)
        if self._head(bucket, target) is not None:
            return False
        if target and self._is_dir(bucket, target) and not target.startswith(source):
            target = f"{target}/{source.rsplit('/', 1)[-1]}"
            if self._head(bucket, target) is not None:
                return False
        if head is not None:
            self._move(bucket, source, target)
            return True
        if not self._is_dir(bucket, source):
            return False
        prefix = f"{source}/"
        for item in list(self._keys(bucket, prefix)):
            self._move(bucket, item["Key"], target + "/" + item["Key"][len(prefix) :])
        with self._lock:
            moved = {(b, d) for b, d in self._dirs if b == bucket and d.startswith(prefix)}
            self._dirs -= moved
            self._dirs |= {(b, f"{target}/{d[len(prefix) :]}") for b, d in moved}
            self._dirs.add((bucket, f"{target}/"))
        return True

    def _move(self, bucket: str, source: str, target: str) -> None:
        self._check("s3:GetObject", bucket, source)
        self._check("s3:PutObject", bucket, target)
        self._check("s3:DeleteObject", bucket, source)
        self.s3.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": source})
        self.s3.delete_object(Bucket=bucket, Key=source)
        self._record(bucket, target, exists=True)
        self._record(bucket, source, exists=False)
        self._forget_dirs_above(bucket, target)

    def _forget_dirs_above(self, bucket: str, key: str) -> None:
        """A directory holding an object is a prefix in S3: no need to remember it."""
        with self._lock:
            self._dirs = {(b, d) for b, d in self._dirs if not (b == bucket and key.startswith(d))}


def _code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _file_status(name: str, length: int, modified: float) -> dict[str, Any]:
    return {
        "accessTime": 0,
        "blockSize": _BLOCK,
        "childrenNum": 0,
        "fileId": 0,
        "group": "supergroup",
        "length": int(length),
        "modificationTime": int(modified * 1000),
        "owner": "glue",
        "pathSuffix": name,
        "permission": "644",
        "replication": 1,
        "storagePolicy": 0,
        "type": "FILE",
    }


def _no_blocks(length: int) -> dict[str, Any]:
    return {
        "fileLength": length,
        "isUnderConstruction": False,
        "locatedBlocks": [],
        "lastLocatedBlock": None,
        "isLastBlockComplete": True,
    }


def _dir_status(name: str) -> dict[str, Any]:
    return {**_file_status(name, 0, 0.0), "permission": "755", "type": "DIRECTORY"}


@dataclass(frozen=True)
class _Request:
    method: str
    op: str
    bucket: str
    key: str
    query: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    """One WebHDFS request: ``/webhdfs/v1/<bucket>/<key>?op=...``."""

    owner: S3Gateway
    protocol_version = "HTTP/1.1"
    # A response is its headers and its body, written apart: with Nagle's algorithm the body
    # waits for the client's delayed ACK (about 40 ms a request, thousands per Spark run).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: Spark makes thousands of calls."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)[len(_PREFIX) :].lstrip("/")
        bucket, _, key = path.partition("/")
        request = _Request(
            method=method,
            op=parse_qs(url.query).get("op", [""])[-1].upper(),
            bucket=bucket,
            key=key,
            query={k: v[-1] for k, v in parse_qs(url.query).items()},
            body=self._body(),
        )
        try:
            handler = _OPERATIONS.get(request.op)
            if handler is None:
                raise GatewayError(
                    400,
                    "java.lang.UnsupportedOperationException",
                    f"{method} {request.op} is not emulated",
                )
            # moto answers S3 through one shared response object (``S3ResponseInstance``),
            # which concurrent requests would overwrite: Spark's tasks call at once, so each
            # request that reaches S3 runs alone, as the harness's other callers' do
            # (``SERVICE_LOCK``). The rest (a redirect, the home directory, a remembered
            # directory) answer without waiting: a third of a Spark run's requests.
            if _reaches_s3(request):
                with SERVICE_LOCK:
                    handler(self, request)
            else:
                handler(self, request)
        except GatewayError as error:
            self._remote_exception(error.status, error.java_class, str(error))
        except Exception as error:  # the emulation's own failure: an IOException to Spark
            self._remote_exception(500, "java.io.IOException", f"{type(error).__name__}: {error}")

    def _remote_exception(self, status: int, java_class: str, message: str) -> None:
        exception = {
            "exception": java_class.rsplit(".", 1)[-1],
            "javaClassName": java_class,
            "message": message,
        }
        self._json(status, {"RemoteException": exception})

    # ------------------------------------------------------------------ operations

    def _get_file_status(self, request: _Request) -> None:
        self._json(200, {"FileStatus": self.owner.status(request.bucket, request.key)})

    def _list_status(self, request: _Request) -> None:
        listing = self.owner.list(request.bucket, request.key)
        self._json(200, {"FileStatuses": {"FileStatus": listing}})

    def _list_status_batch(self, request: _Request) -> None:
        listing = self.owner.list(request.bucket, request.key)
        after = request.query.get("startafter", "")
        listing = [s for s in listing if s["pathSuffix"] > after] if after else listing
        partial = {"FileStatuses": {"FileStatus": listing}}
        self._json(200, {"DirectoryListing": {"partialListing": partial, "remainingEntries": 0}})

    def _open(self, request: _Request) -> None:
        if "datanode" not in request.query:
            self._redirect(request.query)
            return
        length = int(request.query["length"]) if "length" in request.query else None
        offset = int(request.query.get("offset", "0"))
        self._bytes(200, self.owner.read(request.bucket, request.key, offset, length))

    def _create(self, request: _Request) -> None:
        if "datanode" not in request.query:
            self._redirect(request.query)
            return
        overwrite = request.query.get("overwrite", "false").lower() == "true"
        self.owner.write(request.bucket, request.key, request.body, overwrite=overwrite)
        self._bytes(201, b"")

    def _mkdirs(self, request: _Request) -> None:
        self._json(200, {"boolean": self.owner.mkdirs(request.bucket, request.key)})

    def _delete(self, request: _Request) -> None:
        recursive = request.query.get("recursive", "false").lower() == "true"
        deleted = self.owner.delete(request.bucket, request.key, recursive=recursive)
        self._json(200, {"boolean": deleted})

    def _rename(self, request: _Request) -> None:
        target_bucket, _, target = request.query["destination"].lstrip("/").partition("/")
        if target_bucket != request.bucket:
            raise GatewayError(400, "java.io.IOException", "a rename cannot leave its bucket")
        self._json(200, {"boolean": self.owner.rename(request.bucket, request.key, target)})

    def _home(self, request: _Request) -> None:
        self._json(200, {"Path": "/user/glue"})

    def _accept(self, request: _Request) -> None:
        """Permissions, owners and times: S3 keeps none of them."""
        self._bytes(200, b"")

    def _block_locations(self, request: _Request) -> None:
        """S3 has no blocks, nor hosts to read them from: none."""
        length = self.owner.status(request.bucket, request.key)["length"]
        if request.op == "GETFILEBLOCKLOCATIONS":
            self._json(200, {"BlockLocations": {"BlockLocation": []}})
        else:
            self._json(200, {"LocatedBlocks": _no_blocks(length)})

    def _redirect(self, query: dict[str, str]) -> None:
        """WebHDFS sends data operations to a datanode: here, to the same server."""
        parameters = "&".join(f"{k}={quote(v)}" for k, v in {**query, "datanode": "true"}.items())
        location = f"http://{self.owner.address}{urlsplit(self.path).path}?{parameters}"
        if query.get("noredirect", "false").lower() == "true":
            self._json(200, {"Location": location})
            return
        self.send_response(307)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json(self, status: int, document: Any) -> None:
        self._bytes(status, json.dumps(document).encode(), "application/json")

    def _bytes(self, status: int, data: bytes, kind: str = "application/octet-stream") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


_WITHOUT_S3 = frozenset({"GETHOMEDIRECTORY", "MKDIRS", "SETPERMISSION", "SETOWNER", "SETTIMES"})
"""Operations answered without a call to S3 (checks and the gateway's state take its lock)."""


def _reaches_s3(request: _Request) -> bool:
    """Whether answering ``request`` calls the emulated S3: not for the operations above, nor
    for an OPEN or CREATE before its redirect to the "datanode" (the same server)."""
    if request.op in _WITHOUT_S3:
        return False
    return request.op not in ("OPEN", "CREATE") or "datanode" in request.query


_OPERATIONS: dict[str, Callable[[_Handler, _Request], None]] = {
    "GETFILESTATUS": _Handler._get_file_status,
    "LISTSTATUS": _Handler._list_status,
    "LISTSTATUS_BATCH": _Handler._list_status_batch,
    "OPEN": _Handler._open,
    "CREATE": _Handler._create,
    "MKDIRS": _Handler._mkdirs,
    "DELETE": _Handler._delete,
    "RENAME": _Handler._rename,
    "GETHOMEDIRECTORY": _Handler._home,
    "SETPERMISSION": _Handler._accept,
    "SETOWNER": _Handler._accept,
    "SETTIMES": _Handler._accept,
    "GET_BLOCK_LOCATIONS": _Handler._block_locations,
    "GETFILEBLOCKLOCATIONS": _Handler._block_locations,
}
"""The WebHDFS operations Hadoop's client makes for Spark and the Glue script."""

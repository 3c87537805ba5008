"""Iceberg offline, on the code path Glue runs: Iceberg's own ``GlueCatalog`` and ``S3FileIO``,
in local Spark's JVM, call the emulated Glue and S3 through a moto server in this process.

moto's server serves the same in-memory backends as the harness's ``mock_aws`` (they are
process-wide), so what Iceberg commits through the server is what boto3 sees in the mock, and
the reverse. The job's ``--conf`` (the ``glue_catalog`` settings Glue's Iceberg page
documents) configures the session as on Glue; only the endpoints, path-style addressing, the
region and the fake credentials are added. Every request Iceberg makes is checked against the
job role's policies (``AccessGate.client_call_check``), as the boto3 clients of the script are:
a denied call is answered ``AccessDenied``, as AWS would.

The jars (the Spark runtime of the running pyspark's line and ``iceberg-aws-bundle``: Glue 5.1's
Iceberg 1.10.0 on Spark 3.5, Glue 6.0's Iceberg 1.11.0 on Spark 4.1) are fetched by
``scripts/setup`` into ``.cache/jars`` (or ``$EVENT_DRIVEN_ETL_JARS``); the session loads them
when it starts.

``query_iceberg`` reads the table as a reader outside Spark does: pyiceberg loads the table's
current metadata (the catalog's ``metadata_location``) through the same moto server, scans it to
Arrow, and DuckDB runs the SQL (``_iceberg_query``).
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional
from urllib.parse import parse_qs, unquote

from .._contract import ICEBERG_CATALOG
from .._iceberg_conf import parse_glue_conf_argument
from ._template import REGION

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ICEBERG_BY_SPARK_LINE = {
    "3.5": ("1.10.0", "iceberg-spark-runtime-3.5_2.12"),
    "4.1": ("1.11.0", "iceberg-spark-runtime-4.1_2.13"),
}
"""Spark line -> (the Iceberg release Glue ships on it with ``--datalake-formats iceberg``, its
Spark runtime artifact). Glue 5.1 (Spark 3.5): Iceberg 1.10.0 ("Using the Iceberg framework in
AWS Glue", https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-etl-format-iceberg.html);
Glue 6.0 (Spark 4.1, Scala 2.13): Iceberg 1.11.0 ("Migrating AWS Glue for Spark jobs to AWS Glue
version 6.0", https://docs.aws.amazon.com/glue/latest/dg/migrating-version-60.html). Glue 6.1
(Spark 4.1.3) runs the same 4.1 runtime offline."""
EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
_CATALOG = f"spark.sql.catalog.{ICEBERG_CATALOG}"
_FAKE_KEY = "testing"

CallCheck = Callable[[str, Mapping[str, Any]], None]
CheckFor = Callable[[str], Optional[CallCheck]]
"""Service name -> the check of its calls as the job's role (None: not checked)."""


def jars_dir() -> Path:
    """Where ``scripts/setup`` caches the jars (``$EVENT_DRIVEN_ETL_JARS`` overrides)."""
    given = os.environ.get("EVENT_DRIVEN_ETL_JARS")
    return Path(given) if given else Path(__file__).resolve().parents[3] / ".cache" / "jars"


def _spark_line() -> str:
    """The running pyspark's line (``"3.5"``, ``"4.1"``)."""
    import pyspark

    return ".".join(pyspark.__version__.split(".")[:2])


def iceberg_jar_names(spark_line: Optional[str] = None) -> tuple[str, ...]:
    """The jars Iceberg needs on ``spark_line`` (default: the running pyspark's), or () on a
    line Glue ships no Iceberg runtime for here."""
    found = ICEBERG_BY_SPARK_LINE.get(spark_line or _spark_line())
    if found is None:
        return ()
    version, runtime = found
    return (f"{runtime}-{version}.jar", f"iceberg-aws-bundle-{version}.jar")


def iceberg_jars(spark_line: Optional[str] = None) -> list[Path]:
    """The cached Iceberg jars of ``spark_line`` (default: the running pyspark's), or [] when
    one is missing."""
    paths = [jars_dir() / name for name in iceberg_jar_names(spark_line)]
    return paths if paths and all(p.is_file() for p in paths) else []


def session_settings() -> dict[str, str]:
    """Settings a local session needs from its start for Iceberg (the jars of the running
    Spark line, the SQL extensions) when the jars are cached, else none."""
    jars = iceberg_jars()
    if not jars:
        return {}
    return {"spark.jars": ",".join(str(j) for j in jars), "spark.sql.extensions": EXTENSIONS}


def uses_iceberg(arguments: Mapping[str, str]) -> bool:
    """Whether a job run's arguments turn Glue's native Iceberg on."""
    formats = arguments.get("--datalake-formats", "")
    return "iceberg" in [f.strip() for f in formats.split(",")]


# ------------------------------------------------------------------ the server


class _Server:
    """One moto server per process (the backends are process-wide), started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._endpoint: Optional[str] = None
        self.check_for: Optional[CheckFor] = None
        """The checks of the run in progress (None: calls are not checked)."""

    def endpoint(self) -> str:
        with self._lock:
            if self._endpoint is None:
                self._endpoint = self._start()
            return self._endpoint

    def _start(self) -> str:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        app = DomainDispatcherApplication(create_backend_app)
        server = make_server(
            "127.0.0.1", 0, self._gated(app), threaded=True, request_handler=QuietHandler
        )
        threading.Thread(target=server.serve_forever, daemon=True, name="moto-server").start()
        host, port = server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _gated(self, app: Any) -> Callable[..., Any]:
        def gated(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            check_for = self.check_for
            if check_for is not None:
                denied = _denied(environ, check_for)
                if denied is not None:
                    return _deny(environ, start_response, denied)
            return app(environ, start_response)

        return gated


SERVER = _Server()


def _denied(environ: dict[str, Any], check_for: CheckFor) -> Optional[str]:
    """Why the request is denied to the job's role, or None when it is allowed."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    try:
        if target.startswith("AWSGlue."):
            check = check_for("glue")
            if check is not None:
                body = _body(environ)
                check(target.split(".", 1)[1], json.loads(body or b"{}"))
        else:
            check = check_for("s3")
            if check is not None:
                for api, params in _s3_calls(environ):
                    check(api, params)
    except PermissionError as error:
        return str(error)
    return None


def _body(environ: dict[str, Any]) -> bytes:
    """The request's body, read once and put back for moto."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _s3_calls(environ: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The S3 API call(s) of a path-style request, as boto3 would name them."""
    method = environ["REQUEST_METHOD"]
    bucket, _, key = unquote(environ.get("PATH_INFO", "")).lstrip("/").partition("/")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if not key:
        if method == "POST" and "delete" in query:
            keys = re.findall(rb"<Key>(.*?)</Key>", _body(environ))
            return [("DeleteObjects", {"Bucket": bucket, "Key": k.decode()}) for k in keys]
        api = "ListObjectsV2" if method == "GET" else f"{method.title()}Bucket"
        return [(api, {"Bucket": bucket})]
    apis = {
        "GET": "GetObject",
        "HEAD": "HeadObject",
        "DELETE": "AbortMultipartUpload" if "uploadId" in query else "DeleteObject",
        "PUT": "UploadPart" if "partNumber" in query else "PutObject",
        "POST": "CreateMultipartUpload" if "uploads" in query else "CompleteMultipartUpload",
    }
    return [(apis.get(method, method), {"Bucket": bucket, "Key": key})]


def _deny(environ: dict[str, Any], start_response: Callable[..., Any], why: str) -> list[bytes]:
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("AWSGlue."):
        body = json.dumps({"__type": "AccessDeniedException", "message": why}).encode()
        content_type = "application/x-amz-json-1.1"
    else:
        text = why.replace("&", "&amp;").replace("<", "&lt;")
        body = f"<Error><Code>AccessDenied</Code><Message>{text}</Message></Error>".encode()
        content_type = "application/xml"
    start_response("403 Forbidden", [("Content-Type", content_type)])
    return [body]


# ------------------------------------------------------------------ the session


def local_settings(endpoint: str) -> dict[str, str]:
    """What only the offline catalog adds to Glue's: the emulated endpoints, path-style S3,
    the region and fake credentials."""
    return {
        f"{_CATALOG}.glue.endpoint": endpoint,
        f"{_CATALOG}.s3.endpoint": endpoint,
        f"{_CATALOG}.s3.path-style-access": "true",
        f"{_CATALOG}.client.region": REGION,
        f"{_CATALOG}.s3.access-key-id": _FAKE_KEY,
        f"{_CATALOG}.s3.secret-access-key": _FAKE_KEY,
    }


def configure_catalog(spark: SparkSession, settings: Mapping[str, str]) -> None:
    """The ``glue_catalog`` of ``settings`` (a job's ``--conf``) on the local session, pointed
    at the emulated services. The SQL extensions must have been loaded at the session's start."""
    loaded = spark.conf.get("spark.sql.extensions", "") or ""
    if EXTENSIONS not in loaded:
        raise RuntimeError(
            "the local Spark session has no Iceberg: run scripts/setup (it caches "
            f"{', '.join(iceberg_jar_names()) or 'no runtime for this Spark line'} in "
            f"{jars_dir()}) before the first Spark run of the process"
        )
    jvm = spark.sparkContext._jvm
    if jvm is not None:  # the Glue client reads its credentials from Java's system properties
        for name, value in (("aws.accessKeyId", _FAKE_KEY), ("aws.secretAccessKey", _FAKE_KEY)):
            jvm.java.lang.System.setProperty(name, value)
        jvm.java.lang.System.setProperty("aws.region", REGION)
    for key, value in {**settings, **local_settings(SERVER.endpoint())}.items():
        if key != "spark.sql.extensions":
            spark.conf.set(key, value)


@contextmanager
def iceberg_run(
    spark: SparkSession, arguments: Mapping[str, str], check_for: Optional[CheckFor]
) -> Iterator[None]:
    """A job run with Glue's Iceberg configuration (its ``--conf``), its catalog and S3 calls
    checked as the job's role (``check_for``)."""
    configure_catalog(spark, parse_glue_conf_argument(arguments.get("--conf", "")))
    SERVER.check_for = check_for
    try:
        yield
    finally:
        SERVER.check_for = None


def file_io_properties() -> dict[str, str]:
    """pyiceberg's FileIO settings that read the table's files from the emulated S3 (the same
    moto server Iceberg's S3FileIO writes through)."""
    return {
        "s3.endpoint": SERVER.endpoint(),
        "s3.region": REGION,
        "s3.access-key-id": _FAKE_KEY,
        "s3.secret-access-key": _FAKE_KEY,
        "s3.force-virtual-addressing": "false",
    }


def query_iceberg(sql: str, *, database: str, table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``sql`` over the Iceberg table ``table`` (a Glue ``Table``), read from its current
    metadata (its ``metadata_location``) by pyiceberg and run on DuckDB (``_iceberg_query``):
    names resolve in ``database`` (``orders`` and ``db.orders`` both work); ``orders VERSION
    AS OF <snapshot id>`` and metadata tables (``orders.snapshots``) are there too."""
    from ._iceberg_query import load_table, query_table

    loaded = load_table(table, file_io_properties())
    return query_table(sql, database=database, name=str(table["Name"]), table=loaded)


def iceberg_rows(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of the Iceberg table's current snapshot, read by pyiceberg."""
    from ._iceberg_query import current_rows, load_table

    return current_rows(load_table(table, file_io_properties()))

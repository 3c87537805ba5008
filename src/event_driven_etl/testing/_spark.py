"""Run a Glue script on local Spark, with ``s3://bucket/...`` mapped to the emulated S3.

Hadoop's ``ViewFileSystemOverloadScheme`` takes over the ``s3`` scheme: each bucket is a
mount table whose fallback link is the bucket on the emulated S3's WebHDFS endpoint
(``_webhdfs``), which checks every call with the job's role. So the script reads and writes
the same ``s3://`` URIs it would on Glue, unchanged. (:class:`BucketMirror` keeps local
copies for the harness's own readers: pyarrow and DuckDB.)
"""

from __future__ import annotations

import atexit
import importlib
import os
import runpy
import shutil
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_lock = threading.RLock()
_session: SparkSession | None = None
_SCHEMES = ("s3", "s3a", "s3n")


SPARK_LINES = {"5.0": "3.5", "5.1": "3.5", "6.0": "4.1", "6.1": "4.1"}
"""Glue version -> the Spark line (major.minor) it runs, for the versions proven offline."""


class SparkLineWarning(UserWarning):
    """The local Spark is not the line the job's Glue version runs (results may differ)."""


def check_spark_line(glue_version: str) -> None:
    """Warn when the installed pyspark is not the Spark line of ``glue_version``."""
    import warnings

    try:
        import pyspark
    except ImportError:  # pragma: no cover - the testing extra brings it
        return
    wanted = SPARK_LINES.get(glue_version)
    local = ".".join(pyspark.__version__.split(".")[:2])
    if wanted is not None and local != wanted:
        warnings.warn(
            f"the job runs on Glue {glue_version} (Spark {wanted}) but local Spark is "
            f"pyspark {pyspark.__version__}: install pyspark=={wanted}.* for a faithful run",
            SparkLineWarning,
            stacklevel=3,
        )


def spark_session() -> SparkSession:
    """One local Spark session per process (starting the JVM takes seconds)."""
    global _session  # noqa: PLW0603 - one JVM per process
    with _lock:
        if _session is None:
            try:
                from pyspark.sql import SparkSession
            except ImportError as error:  # pragma: no cover - depends on the install
                raise RuntimeError(
                    "running the Glue script locally needs pyspark 3.5: "
                    "pip install 'event-driven-etl[testing]'"
                ) from error
            # Local runs bind to loopback only (no other address is reachable here anyway).
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            builder = (
                SparkSession.builder.master("local[2]")
                .appName("event-driven-etl-local")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.shuffle.partitions", "2")
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
            )
            for scheme in _SCHEMES:
                builder = builder.config(
                    f"spark.hadoop.fs.{scheme}.impl",
                    "org.apache.hadoop.fs.viewfs.ViewFileSystemOverloadScheme",
                ).config(f"spark.hadoop.fs.{scheme}.impl.disable.cache", "true")
            # The raw local file system writes no .crc side files and takes keys with ':' that
            # the checksummed one cannot name a side file for (local file: paths in tests).
            builder = builder.config(
                "spark.hadoop.fs.viewfs.overload.scheme.target.file.impl",
                "org.apache.hadoop.fs.RawLocalFileSystem",
            ).config("spark.hadoop.fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem")
            # Buckets are mounted on the emulated S3's WebHDFS endpoint (``_webhdfs``), whose
            # client is Hadoop's own. S3 has no block locations for Spark to ask for.
            builder = builder.config(
                "spark.hadoop.fs.viewfs.overload.scheme.target.webhdfs.impl",
                "org.apache.hadoop.hdfs.web.WebHdfsFileSystem",
            ).config("spark.sql.sources.ignoreDataLocality", "true")
            # The s3 file systems are built anew per call (their cache is off: a bucket's mount
            # changes between runs) and never closed. With ViewFileSystem's inner cache each
            # built its own WebHDFS client too: a GETHOMEDIRECTORY round trip, and an
            # SSLFactory whose "SSL Certificates Store Monitor" timer thread keeps the client
            # and its trust store alive: thousands per 2,000-object backfill, until local
            # Spark ran out of heap (issue #22). The WebHDFS clients come from Hadoop's
            # FileSystem cache instead: one per gateway (its port is in the cache key).
            builder = builder.config("spark.hadoop.fs.viewfs.enable.inner.cache", "false")
            # Iceberg's runtime and SQL extensions load with the session (when cached).
            from ._iceberg import session_settings

            for key, value in session_settings().items():
                builder = builder.config(key, value)
            _session = builder.getOrCreate()
            _session.sparkContext.setLogLevel("ERROR")
        return _session


def mount_bucket(spark: SparkSession, bucket: str, target: str) -> None:
    """Make ``s3://bucket/...`` read and write ``target/...`` (a Hadoop file system URI)."""
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    conf.set(f"fs.viewfs.mounttable.{bucket}.linkFallback", target)


def run_script(script: Path, arguments: Mapping[str, str]) -> None:
    """Run a Glue script as Glue does: ``python script.py --name value ...`` in this process,
    with the job's ``--extra-py-files`` on its Python path.

    Runs one script at a time (``sys.argv`` is process-wide). The script's exceptions
    propagate; ``SystemExit(0)`` counts as success.
    """
    argv = [str(script)]
    for name, value in arguments.items():
        argv += [name, value]
    python_files = shipped_python_files(script.parent, arguments.get("--extra-py-files", ""))
    with _lock, python_path(python_files):
        saved = sys.argv
        sys.argv = argv
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exit_:
            if exit_.code not in (None, 0):
                raise RuntimeError(f"script exited with status {exit_.code}") from exit_
        finally:
            sys.argv = saved


def shipped_python_files(assembly: Path, extra_py_files: str) -> list[Path]:
    """The local files of a job's ``--extra-py-files`` (comma-separated ``s3://`` URIs of
    assets in the cloud assembly ``assembly``), as Glue would fetch them: a directory asset
    zipped as ``cdk-assets`` uploads it (``<hash>.zip``), a file asset as it is."""
    files = []
    for uri in filter(None, (u.strip() for u in extra_py_files.split(","))):
        name = uri.rsplit("/", 1)[-1]
        digest, _, extension = name.partition(".")
        staged = assembly / f"asset.{digest}"
        if staged.is_dir() and extension == "zip":
            files.append(zipped_asset(staged, name))
        elif (assembly / f"asset.{name}").is_file():
            files.append(assembly / f"asset.{name}")
        else:
            raise FileNotFoundError(
                f"--extra-py-files names {uri}, which is no asset of the cloud assembly {assembly}"
            )
    return files


_zips: dict[str, Path] = {}


def zipped_asset(folder: Path, name: str) -> Path:
    """``folder`` zipped as ``name`` with the folder's content at the zip's root, once per
    process: the name is the content's hash, and Spark ships a file name from one path only."""
    with _lock:
        if name not in _zips:
            target = Path(tempfile.mkdtemp(prefix="event-driven-etl-py-files-")) / name
            atexit.register(shutil.rmtree, target.parent, ignore_errors=True)
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(folder.rglob("*")):
                    if path.is_file():
                        archive.write(path, path.relative_to(folder).as_posix())
            _zips[name] = target
        return _zips[name]


@contextmanager
def python_path(files: Sequence[Path]) -> Iterator[None]:
    """``files`` (zips) on the driver's Python path and shipped to Spark's executors, as Glue
    does with ``--extra-py-files``; their packages are imported afresh from them for the run
    and forgotten afterwards, so a run uses exactly what its job ships."""
    if not files:
        yield
        return
    context = spark_session().sparkContext
    packages = {n for f in files for n in _top_level_names(f)}
    saved = list(sys.path)
    _forget(packages)
    try:
        for file in files:
            context.addPyFile(str(file))
        sys.path[:0] = [str(f) for f in files]
        importlib.invalidate_caches()
        yield
    finally:
        sys.path[:] = saved
        _forget(packages)


def _top_level_names(archive: Path) -> set[str]:
    with zipfile.ZipFile(archive) as opened:
        names = {n.split("/", 1)[0] for n in opened.namelist()}
    return {n.removesuffix(".py") for n in names}


def _forget(packages: set[str]) -> None:
    for name in list(sys.modules):
        if name.split(".", 1)[0] in packages:
            del sys.modules[name]


class BucketMirror:
    """Local folders that mirror emulated buckets, synchronised incrementally around runs.

    Only what changed moves: a pull downloads objects whose ETag changed since the last
    sync and removes local files whose objects are gone; a push uploads files a run wrote or
    changed and deletes objects whose files the run removed. So a run costs what it reads
    and writes, not the size of every bucket.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._etags: dict[tuple[str, str], str] = {}
        self._snapshot: dict[Path, tuple[int, int]] = {}
        self.downloads = 0
        """Objects copied from the emulated S3 so far (a run copies only what changed)."""

    def folder(self, bucket: str) -> Path:
        return self.root / bucket

    def pull(self, s3: Any, buckets: list[str]) -> None:
        """Bring the mirror of ``buckets`` up to date with the emulated S3."""
        for bucket in buckets:
            folder = self.folder(bucket)
            folder.mkdir(parents=True, exist_ok=True)
            current: dict[str, str] = {}
            paginator = s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    if not item["Key"].endswith("/"):
                        current[item["Key"]] = item["ETag"]
            known = {k: e for (b, k), e in self._etags.items() if b == bucket}
            for key in known.keys() - current.keys():
                (folder / key).unlink(missing_ok=True)
                del self._etags[(bucket, key)]
            for key, etag in current.items():
                if known.get(key) == etag and (folder / key).exists():
                    continue
                target = folder / key
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                self._etags[(bucket, key)] = etag
                self.downloads += 1
        self._snapshot = self._stat_all(buckets)

    def push(self, s3: Any, buckets: list[str]) -> tuple[list[str], list[str]]:
        """Upload what the run wrote or changed, delete what it removed; return the URIs
        written and the URIs deleted."""
        written, deleted = [], []
        now = self._stat_all(buckets)
        for path, stat in now.items():
            if self._snapshot.get(path) == stat:
                continue
            bucket, key = self._bucket_and_key(path)
            response = s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
            self._etags[(bucket, key)] = response["ETag"]
            written.append(f"s3://{bucket}/{key}")
        for path in self._snapshot.keys() - now.keys():
            bucket, key = self._bucket_and_key(path)
            s3.delete_object(Bucket=bucket, Key=key)
            self._etags.pop((bucket, key), None)
            deleted.append(f"s3://{bucket}/{key}")
        self._snapshot = now
        return written, deleted

    def _stat_all(self, buckets: list[str]) -> dict[Path, tuple[int, int]]:
        stats = {}
        for bucket in buckets:
            for dirpath, _, files in os.walk(self.folder(bucket)):
                for name in files:
                    path = Path(dirpath) / name
                    stat = path.stat()
                    stats[path] = (stat.st_size, stat.st_mtime_ns)
        return stats

    def _bucket_and_key(self, path: Path) -> tuple[str, str]:
        relative = path.relative_to(self.root)
        bucket, *parts = relative.parts
        return bucket, "/".join(parts)

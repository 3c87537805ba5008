"""Small files and renames through Hadoop's FileSystem: the job's S3 client for its data,
reports and schema (the object marks' conditional writes go through boto3: ``mark_store``)."""

from __future__ import annotations

from typing import Any, Optional

from pyspark.sql import SparkSession


def jvm(spark: SparkSession) -> Any:
    """Spark's JVM gateway: Hadoop's FileSystem and Parquet's footer reader live there."""
    gateway = spark.sparkContext._jvm
    if gateway is None:  # pragma: no cover - only on a stopped session
        raise RuntimeError("the Spark session has no JVM gateway (was it stopped?)")
    return gateway


def hadoop_conf(spark: SparkSession) -> Any:
    return spark.sparkContext._jsc.hadoopConfiguration()


class Storage:
    """Small files and renames through Hadoop's FileSystem (the script's S3 client but for
    the marks' conditional writes)."""

    def __init__(self, spark: SparkSession) -> None:
        self._jvm = jvm(spark)
        self._conf = hadoop_conf(spark)
        self._file_systems: dict[str, Any] = {}

    def _path(self, uri: str) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(uri)

    def _fs(self, path: Any, uri: str) -> Any:
        # One FileSystem per bucket and run: getFileSystem is a round trip, and where the
        # FileSystem cache is off (the offline harness) each call would build a new one.
        # The bucket comes from the URI's text: three calls to the JVM fewer per file.
        bucket = bucket_of(uri)
        if bucket is None:
            java_uri = path.toUri()
            bucket = f"{java_uri.getScheme()}://{java_uri.getAuthority()}"
        found = self._file_systems.get(bucket)
        if found is None:
            found = self._file_systems[bucket] = path.getFileSystem(self._conf)
        return found

    def read_text(self, uri: str) -> Optional[str]:
        """The object's text, or None when there is no such object.

        A run reads a mark per object, most of them absent on a first landing, so a miss must
        be cheap. ``isFile`` answers it with one HEAD (S3A's file-only probe; ``exists`` also
        lists the prefix for a directory) and no exception: a Java exception costs the
        driver 10-20 ms of CPU, which PySpark's py4j error handler spends matching the error
        against its exception classes one call at a time (1,000 first landings: about 10
        of a 28-second run, ``benchmarks/glue_script.py``). A key deleted between the two
        calls is still a miss."""
        path = self._path(uri)
        fs = self._fs(path, uri)
        if not fs.isFile(path):
            return None
        try:
            stream = fs.open(path)
            try:
                return bytes(stream.readAllBytes()).decode("utf-8")
            finally:
                stream.close()
        except Exception as error:
            if _not_found(error):
                return None
            raise

    def version(self, uri: str) -> str:
        """The object's version as S3 reports it through Hadoop: size and last modified (a
        new upload of the key is a new version); empty when there is no such object."""
        path = self._path(uri)
        try:
            status = self._fs(path, uri).getFileStatus(path)
        except Exception as error:
            if _not_found(error):
                return ""
            raise
        return f"{int(status.getLen())}-{int(status.getModificationTime())}"

    def write_text(self, uri: str, text: str) -> None:
        path = self._path(uri)
        stream = self._fs(path, uri).create(path, True)
        try:
            stream.write(text.encode("utf-8"))
        finally:
            stream.close()

    def list_parts(self, directory: str) -> list[str]:
        """The ``part-`` files Spark wrote under ``directory`` (at any depth), sorted."""
        path = self._path(directory)
        fs = self._fs(path, directory)
        if not fs.exists(path):
            return []
        found = []
        files = fs.listFiles(path, True)
        while files.hasNext():
            name = str(files.next().getPath().toString())
            if name.rsplit("/", 1)[-1].startswith("part-"):
                found.append(name)
        return sorted(found)

    def list_files(self, directory: str) -> list[str]:
        path = self._path(directory)
        fs = self._fs(path, directory)
        if not fs.exists(path):
            return []
        return [str(s.getPath().toString()) for s in fs.listStatus(path) if s.isFile()]

    def delete(self, uri: str) -> None:
        path = self._path(uri)
        self._fs(path, uri).delete(path, True)

    def rename(self, source: str, target: str) -> None:
        """Move ``source`` to ``target``, which must not exist yet.

        Hadoop's S3 file system refuses a rename onto an existing file, as HDFS does and the
        FileSystem specification asks (HADOOP-13823, "s3a rename: fail if dest file
        exists"); only ``file://`` overwrites it. Refusing here makes a local run answer as
        Glue does, so a re-run that forgot to remove its earlier files fails offline too."""
        src, dst = self._path(source), self._path(target)
        fs = self._fs(dst, target)
        if fs.exists(dst):
            raise RuntimeError(f"could not move {source} to {target}: the target exists")
        fs.mkdirs(dst.getParent())
        if not fs.rename(src, dst):
            raise RuntimeError(f"could not move {source} to {target}")

    def copy(self, source: str, target: str) -> None:
        src, dst = self._path(source), self._path(target)
        self._jvm.org.apache.hadoop.fs.FileUtil.copy(
            self._fs(src, source), src, self._fs(dst, target), dst, False, True, self._conf
        )


def bucket_of(uri: str) -> Optional[str]:
    """``scheme://authority`` of a URI, as Hadoop's ``Path.toUri`` gives them (None: a
    path without a scheme, which Hadoop resolves against the default file system)."""
    scheme, separator, rest = uri.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}" if separator and scheme else None


def _not_found(error: BaseException) -> bool:
    """Whether a Hadoop call failed because the path does not exist (``FileNotFoundException``,
    as S3A and EMRFS raise it for a missing key; ``exists`` is the same call, caught)."""
    return "FileNotFoundException" in str(error)

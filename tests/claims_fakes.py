"""Fakes shared by the object-claims tests (issue #22): the job's storage in memory, Spark's
part of a retraction on rows kept as text, and moto's S3 with an output bucket."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Callable, Optional

import pytest

from event_driven_etl.runtime.glue.event_driven_etl_job import landed


class MemoryFiles:
    """The job's storage in memory: each file's text (a table file's: its rows, one a line,
    ``<object>|<n>``), each object's version (default ``v1``); ``before``: a hook called
    with each delete or rename (its name and the file deleted or made) before it happens."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.versions: dict[str, str] = {}
        self.before: Callable[[str, str], None] = lambda call, uri: None

    def read_text(self, uri: str) -> Optional[str]:
        return self.texts.get(uri)

    def write_text(self, uri: str, text: str) -> None:
        self.texts[uri] = text

    def version(self, uri: str) -> str:
        return self.versions.get(uri, "v1")

    def list_files(self, prefix: str) -> list[str]:
        return sorted(u for u in self.texts if u.startswith(prefix) and "/" not in u[len(prefix) :])

    def list_parts(self, directory: str) -> list[str]:
        return sorted(u for u in self.texts if u.startswith(directory) and "/part-" in u)

    def delete(self, uri: str) -> None:
        self.before("delete", uri)
        for key in [k for k in self.texts if k == uri or k.startswith(uri.rstrip("/") + "/")]:
            del self.texts[key]

    def rename(self, source: str, target: str) -> None:
        self.before("rename", target)
        if target in self.texts:  # as Hadoop's S3 file system refuses it
            raise RuntimeError(f"could not move {source} to {target}: the target exists")
        self.texts[target] = self.texts.pop(source)


def rewrite_rows_as_text(monkeypatch: pytest.MonkeyPatch, files: MemoryFiles) -> None:
    """Spark's part of a retraction (``landed._write_kept``) on ``files``' rows as text: one
    staging part per file read, without the rows of the objects retracted."""

    def write_kept(
        spark: Any, storage: Any, old: Sequence[str], uris: Sequence[str], staging: str
    ) -> list[str]:
        files.delete(staging)
        for index, name in enumerate(old):
            rows = [r for r in files.texts[name].splitlines() if r.split("|")[0] not in uris]
            if rows:
                files.write_text(f"{staging}part-{index:05d}.parquet", "\n".join(rows))
        return files.list_parts(staging)

    monkeypatch.setattr(landed, "_write_kept", write_kept)


def moto_output_bucket() -> Iterator[Any]:
    """moto's S3 with the bucket ``out`` (a fixture's body): yields the S3 client."""
    from moto import mock_aws

    with mock_aws():
        import boto3

        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="out")
        yield client

"""The Glue script's own S3 calls, checked one by one with the job's role before they reach
S3 (the harness mounts each bucket on the emulated S3's WebHDFS endpoint, ``_webhdfs``):
reads of the output prefix (run report, ``_schema.json``, listings), staging writes and
deletes, and S3's copy-and-delete "rename". Each test breaks the synthesized role the way a
wrong grant would, and the run fails as it would on Glue."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from event_driven_etl.testing._template import StackTemplate

from .offline import CSV, offline, synthesized
from .test_permissions_offline import _actions, _remove_statements

pytestmark = pytest.mark.spark


def _on_output_prefix(statement: dict[str, Any], prefix: str = "/processed/*") -> bool:
    return prefix in str(statement.get("Resource"))


def _without(template: StackTemplate, matches: Callable[[dict[str, Any]], bool]) -> None:
    _remove_statements(template, "GlueJobRole", matches)


def _narrowed(template: StackTemplate, action: str) -> None:
    """The Glue role's write statement on the output prefixes without ``action``."""
    for resource in template.template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy" or "GlueJobRole" not in str(
            resource["Properties"]["Roles"]
        ):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if action in _actions(statement) and _on_output_prefix(statement):
                statement["Action"] = [a for a in _actions(statement) if a != action]
                return
    raise AssertionError(f"no statement grants {action} on the output prefix")


def _run_one(template: StackTemplate) -> tuple[str, str, list[str]]:
    """Upload one CSV through the real script: the run's status, Glue's error message and
    the keys under ``processed/`` afterwards."""
    with offline(template, glue_runner=None) as local:
        local.put_object("in/a.csv", CSV)
        [run] = local.wait_for_runs(timeout=600)
        [glue_run] = local.glue_runs
        processed = [k for k in local.output_keys() if k.startswith("processed/")]
        return run.status, str(glue_run.error_message or ""), processed


def test_the_unbroken_role_lands_the_object_through_checked_calls(tmp_path: Path) -> None:
    status, message, processed = _run_one(synthesized(tmp_path))
    assert status == "SUCCEEDED", message
    assert any(k.endswith(".parquet") for k in processed), processed
    assert not any("_staging" in k or "_temporary" in k for k in processed), processed


def test_fails_a_glue_role_without_read_on_the_output_prefix(tmp_path: Path) -> None:
    """The script reads its table's ``_schema.json`` and run report and lists the output
    prefix: without ``s3:GetObject`` there, S3 answers AccessDenied, as it would on Glue."""
    template = synthesized(tmp_path)
    _without(
        template,
        lambda s: "s3:GetObject*" in _actions(s) and _on_output_prefix(s),
    )
    status, message, _ = _run_one(template)
    assert status == "FAILED"
    assert "s3:GetObject" in message and "processed/" in message, message


def test_fails_a_denied_write_that_never_reaches_s3(tmp_path: Path) -> None:
    """Without ``s3:PutObject`` on the output prefix the first write is refused before it
    reaches S3: nothing appears under ``processed/``."""
    template = synthesized(tmp_path)
    _narrowed(template, "s3:PutObject")
    status, message, processed = _run_one(template)
    assert status == "FAILED"
    assert "s3:PutObject" in message, message
    assert [k for k in processed if not k.endswith("/")] == []


def test_fails_a_glue_role_without_delete_on_the_output_prefix(tmp_path: Path) -> None:
    """S3 has no rename: moving a staged file is a copy and a delete, so a role that may
    write but not delete cannot publish, as on Glue."""
    template = synthesized(tmp_path)
    _narrowed(template, "s3:DeleteObject")
    status, message, _ = _run_one(template)
    assert status == "FAILED"
    assert "s3:DeleteObject" in message, message

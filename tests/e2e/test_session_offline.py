"""A session leaves the process as it found it: credentials, registries and hooks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from event_driven_etl.testing import Faults
from event_driven_etl.testing._glue_emulation import ACTIVE_JOBS, glue_hooks
from event_driven_etl.testing._stepfunctions import TASK_GATES

from .offline import CSV, offline, synthesized


def test_a_stopped_pipeline_restores_the_environment_and_leaves_the_registries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "mine")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    with offline(synthesized(tmp_path)) as local:
        assert os.environ["AWS_ACCESS_KEY_ID"] != "mine"  # fake, never a real key
        assert ACTIVE_JOBS.keys() == {local.glue_job_name}
        assert local.state_machine_arn in TASK_GATES
        local.put_object("in/a.csv", CSV)
        assert [r.status for r in local.wait_for_runs()] == ["SUCCEEDED"]
    assert os.environ["AWS_ACCESS_KEY_ID"] == "mine"
    assert "AWS_SESSION_TOKEN" not in os.environ
    assert ACTIVE_JOBS == {}
    assert TASK_GATES == {}
    assert glue_hooks._original_start is None  # moto's own StartJobRun again


def test_faults_are_queued_on_local_faults(tmp_path: Path) -> None:
    with offline(synthesized(tmp_path)) as local:
        assert isinstance(local.faults, Faults)
        local.faults.glue_start_fails("InternalServiceException", times=1)
        local.put_object("in/a.csv", CSV)
        assert [r.status for r in local.wait_for_runs()] == ["SUCCEEDED"]  # retried
        assert not local.faults.glue_start_errors

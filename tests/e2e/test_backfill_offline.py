"""Backfill offline: the emulated Distributed Map (listing pages, batches, concurrency,
tolerated failures), input refusal, and exactly-once with skip and reprocess."""

from __future__ import annotations

import aws_cdk as cdk
import pytest

from event_driven_etl import Batching, EventDrivenEtlPipeline
from event_driven_etl.testing import BackfillRefusedError, LocalPipeline
from event_driven_etl.testing._backfill import (
    BackfillEmulator,
    BackfillResult,
    BackfillSettings,
    string_matches,
)


def _stack(**props: object) -> cdk.Stack:
    app = cdk.App()
    stack = cdk.Stack(app, "Backfill")
    pipeline = EventDrivenEtlPipeline(stack, "Pipeline", key_prefix="incoming/", **props)  # type: ignore[arg-type]  # test props
    pipeline.backfill  # noqa: B018 - created on first use
    return stack


def test_string_matches_is_step_functions_pattern() -> None:
    assert string_matches("incoming/orders/", "incoming/*")
    assert not string_matches("other/", "incoming/*")
    assert string_matches("a*b", "a\\**")
    assert not string_matches("ab", "a\\**")


def test_fails_for_a_prefix_outside_key_prefix() -> None:
    with LocalPipeline.from_stack(_stack(), "Pipeline", run_glue_script=False) as local:
        with pytest.raises(BackfillRefusedError, match="incoming/"):
            local.backfill(prefix="other/")
        with pytest.raises(BackfillRefusedError):
            local.backfill(prefix="incoming/", reprocess="yes")  # type: ignore[arg-type]  # bad input on purpose
        assert local.runs() == []


def test_lists_every_page_batches_and_bounds_concurrency() -> None:
    stack = _stack(key_suffix=".csv", batching=Batching(max_batch_size=200), max_concurrent_runs=4)
    with LocalPipeline.from_stack(stack, "Pipeline", run_glue_script=False) as local:
        for i in range(2_050):
            local.put_object(f"incoming/o-{i:05d}.csv", b"id\n1\n", notify=False)
        local.put_object("incoming/readme.txt", b"x", notify=False)
        local.put_object("incoming/folder/", b"", notify=False)
        result = local.backfill(prefix="incoming/")
        assert result.status == "SUCCEEDED"
        assert result.listed == 2_052
        objects = [o for batch in result.batches for o in batch]
        assert len(objects) == len(set(objects)) == 2_050
        assert all(len(batch) <= 200 for batch in result.batches)
        assert max(result.waves) <= 2  # half of max_concurrent_runs
        assert len(result.runs) == len(result.batches)
        [final] = [n for n in local.notifications if n.get("source") == "backfill"]
        assert final["totals"]["objects_listed"] == 2_052


def test_stops_once_failures_pass_the_tolerated_percentage() -> None:
    stack = _stack(batching=Batching(max_batch_size=10), max_concurrent_runs=2)
    with LocalPipeline.from_stack(stack, "Pipeline", run_glue_script=False) as local:
        for i in range(50):
            local.put_object(f"incoming/o-{i:03d}.csv", b"id\n1\n", notify=False)
        local.fail_next_glue_run(error="BadData", cause="broken")
        result = local.backfill(prefix="incoming/")
        assert result.status == "FAILED"  # 1 of 5 batches failed: over 10 %
        assert len(result.runs) < 5


def _counts(local: LocalPipeline) -> dict[str, int]:
    table = local.catalog_table
    rows = local.query(f"SELECT _source_object AS o, count(*) AS n FROM {table} GROUP BY 1")
    return {str(r["o"]): int(r["n"]) for r in rows}


@pytest.mark.spark
def test_backfill_lands_each_object_once_then_skips_what_landed() -> None:
    # A handful of Glue runs per backfill (batches of 500) on the harness's local Spark; the
    # same 2,000 stored objects then prove skip (a second backfill) and reprocess (a third).
    stack = _stack(batching=Batching(max_batch_size=500))
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        for i in range(2_000):
            local.put_object(f"incoming/o-{i:05d}.csv", f"id,n\n{i},x\n".encode(), notify=False)
        local.deliver_immediately = False
        # Uploaded during the backfill: the live path and the backfill both see it.
        local.put_object("incoming/live.csv", b"id,n\n9999,live\n")
        first = local.backfill(prefix="incoming/")
        assert first.status == "SUCCEEDED" and len(first) == 5  # 2,001 objects, batches of 500
        counts = _counts(local)
        assert len(counts) == 2_001 and set(counts.values()) == {1}
        again = local.backfill(prefix="incoming/")
        assert again.status == "SUCCEEDED"
        assert _counts(local) == counts
        skipped = [n for n in local.notifications if n.get("skipped")]
        assert any("already landed by batch" in s["reason"] for n in skipped for s in n["skipped"])
        # Reprocess: every object lands again and its earlier rows go; none is doubled.
        replaced = local.backfill(prefix="incoming/", reprocess=True)
        assert replaced.status == "SUCCEEDED" and len(replaced) == 5
        assert _counts(local) == counts


@pytest.mark.spark
def test_reprocess_replaces_earlier_rows_never_doubles() -> None:
    stack = _stack(batching=Batching(max_batch_size=10))
    with LocalPipeline.from_stack(stack, "Pipeline") as local:
        local.put_object("incoming/live.csv", b"id,n\n9999,live\n")  # landed by the live path
        local.wait_for_runs(timeout=600)
        for i in range(25):
            local.put_object(f"incoming/o-{i:03d}.csv", f"id,n\n{i},x\n".encode(), notify=False)
        assert local.backfill(prefix="incoming/").status == "SUCCEEDED"
        before = _counts(local)
        assert len(before) == 26 and set(before.values()) == {1}
        replaced = local.backfill(prefix="incoming/", reprocess=True)
        assert replaced.status == "SUCCEEDED" and len(replaced) == 3
        assert _counts(local) == before


class _PagedS3:
    """ListObjectsV2 over ``keys`` in pages of at most ``MaxKeys``, as S3 answers."""

    def __init__(self, keys: list[str]) -> None:
        self.keys, self.pages = keys, 0

    def list_objects_v2(self, **query: object) -> dict[str, object]:
        start = int(str(query.get("ContinuationToken", 0)))
        size = int(str(query["MaxKeys"]))
        self.pages += 1
        chunk = self.keys[start : start + size]
        more = start + size < len(self.keys)
        page: dict[str, object] = {"Contents": [{"Key": k} for k in chunk], "IsTruncated": more}
        if more:
            page["NextContinuationToken"] = str(start + size)
        return page


def _emulator(keys: list[str], **settings: object) -> tuple[BackfillEmulator, _PagedS3]:
    values: dict[str, object] = {
        "allowed": None,
        "batch_size": 100,
        "batch_bytes": None,
        "max_concurrency": 2,
        "tolerated_failure_percentage": 10.0,
        "leave_patterns": (("*/", False),),
        "topic_logical_id": None,
        "pipeline_name": "p",
        "manifest_key_format": "manifests/backfill/{}.json",
        **settings,
    }
    s3 = _PagedS3(keys)
    emulator = BackfillEmulator(
        BackfillSettings(**values),  # type: ignore[arg-type]  # the test's own settings
        s3=s3,
        sfn=None,
        sns=None,
        bucket="b",
        manifest_bucket="o",
        workflow_arn="arn:aws:states:us-east-1:123456789012:stateMachine:w",
        settle=lambda: None,
    )
    return emulator, s3


def test_listing_follows_every_page_of_a_thousand_keys() -> None:
    emulator, s3 = _emulator([f"k{i:05d}" for i in range(2_500)])
    result = BackfillResult()
    batches = list(emulator._batches("", result))
    assert s3.pages == 3 and result.listed == 2_500
    assert [len(b) for b in batches] == [100] * 25


def test_batches_stop_at_the_byte_limit_before_the_count() -> None:
    item = len('{"bucket": "b", "key": "k00000"}')
    emulator, _ = _emulator([f"k{i:05d}" for i in range(10)], batch_bytes=3 * item)
    batches = list(emulator._batches("", BackfillResult()))
    assert [len(b) for b in batches] == [3, 3, 3, 1]


def test_a_batch_of_only_folder_markers_is_empty() -> None:
    emulator, _ = _emulator(["a/", "b/"])
    assert list(emulator._batches("", BackfillResult())) == [[]]

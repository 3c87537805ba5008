"""Re-run the offline harness's mutation list: apply each mutation to the source, run the
tests that should catch it, restore the file, and say which tests failed.

    .venv/bin/python scripts/mutations.py [words of a mutation's name ...]

A mutation that no test catches is printed SURVIVED and the script exits 1. Each mutation
is a plain text replacement, so one that no longer applies (the code moved) is reported
NOT APPLICABLE rather than silently skipped. Before any mutation, each selected test set
runs on the clean code: a set that fails there (a flaky or broken test) is reported
FAILS ON CLEAN CODE and its mutation is not counted as caught. Run it on a clean tree: it
edits files in place (and puts them back, also when interrupted).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]


class Mutation(NamedTuple):
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


TRIGGER = "src/event_driven_etl/trigger.py"
HARNESS = "src/event_driven_etl/testing/"
LOCAL = "tests/e2e/test_local_pipeline.py"
PERMISSIONS = "tests/e2e/test_permissions_offline.py"
DELIVERY = "tests/e2e/test_delivery_offline.py"
EVALUATOR = "src/event_driven_etl/testing/_iam/policies.py"
CROSS_CHECK = "tests/unit/test_iam_cross_check.py"
GLUE_PACKAGE = "src/event_driven_etl/_glue_package.py"
PACKAGE_TESTS = "tests/unit/test_glue_package.py"

MUTATIONS = [
    Mutation(
        "object identity without the sequencer",
        "src/event_driven_etl/runtime/trigger/s3_events.py",
        "(self.bucket, self.key, self.version_id, self.sequencer, self.etag)",
        "(self.bucket, self.key, self.version_id, self.etag)",
        (LOCAL, "-k", "identical_bytes"),
    ),
    Mutation(
        "no 5-minute cap on the concurrency retry",
        "src/event_driven_etl/state_machine.py",
        "    max_delay=Duration.minutes(5),\n",
        "    max_delay=None,\n",
        (LOCAL, "-k", "capped_at_5_minutes"),
    ),
    Mutation(
        "lease time 0",
        TRIGGER,
        'function.add_environment("LEASE_SECONDS", str(int(timeout.to_seconds()) + 60))',
        'function.add_environment("LEASE_SECONDS", "0")',
        (LOCAL, "-k", "claim_in_flight"),
    ),
    Mutation(
        "RetryPolicy.jitter ignored (always full jitter)",
        "src/event_driven_etl/retry.py",
        "sfn.JitterType.FULL if policy.jitter else sfn.JitterType.NONE",
        "sfn.JitterType.FULL",
        (LOCAL, "-k", "retry_policy_s_jitter"),
    ),
    Mutation(
        "RetryPolicy.jitter ignored (never jitter)",
        "src/event_driven_etl/retry.py",
        "sfn.JitterType.FULL if policy.jitter else sfn.JitterType.NONE",
        "sfn.JitterType.NONE",
        (LOCAL, "-k", "retry_policy_s_jitter"),
    ),
    Mutation(
        "EventBridge off on a brought bucket",
        TRIGGER,
        "    bucket.enable_event_bridge_notification()\n",
        "    return None\n",
        ("tests/e2e", "-m", "not spark", "-k", "brought_bucket or identical_bytes"),
    ),
    Mutation(
        "ReportBatchItemFailures off",
        TRIGGER,
        "report_batch_item_failures=True,",
        "report_batch_item_failures=False,",
        (PERMISSIONS, "-k", "report_batch_item_failures"),
    ),
    Mutation(
        "Glue role without read on manifests/*",
        "src/event_driven_etl/glue_job.py",
        'output_bucket.grant_read(self.role, f"{manifest_prefix}*")',
        "pass",
        ("tests/e2e", "-m", "not spark", "-k", "manifest"),
    ),
    Mutation(
        "alarms may not publish",
        "src/event_driven_etl/_operations.py",
        "    if not alarms:\n        return\n",
        "    return\n",
        (PERMISSIONS, "-k", "alarm"),
    ),
    Mutation(
        "EventBridge may not use the key",
        TRIGGER,
        "_defaults.allow_eventbridge_to_use_key_for_queues(encryption_key)",
        "pass",
        ("tests/e2e", "-m", "not spark", "-k", "batch"),
    ),
    Mutation(
        "job-state notifier filter wrong",
        "src/event_driven_etl/_operations.py",
        "STARTED_BY_WORKFLOW = f'*\"{BATCH_ID_ARGUMENT}\"*'",
        "STARTED_BY_WORKFLOW = '*\"--nothing\"*'",
        (LOCAL, "-k", "exactly_one"),
    ),
    Mutation(
        "trigger marks one at a time",
        "src/event_driven_etl/runtime/trigger/handler.py",
        "MARK_WORKERS = 16",
        "MARK_WORKERS = 1",
        ("tests/unit/test_trigger_handler.py", "-k", "concurrently"),
    ),
    Mutation(
        "harness: the Glue script's catalog and job-run calls unchecked",
        HARNESS + "_iam/gate.py",
        '            "glue": self._check_glue_call,\n',
        "",
        (PERMISSIONS, "-k", "catalog_access or own_clients or read_its_job_s_runs"),
    ),
    Mutation(
        "harness: the job-state rule's role unchecked",
        HARNESS + "_events.py",
        "        if role is not None:\n            try:",
        "        if False:\n            try:",
        (PERMISSIONS, "-k", "job_state_rule"),
    ),
    Mutation(
        "harness: the function sees the test process's environment",
        HARNESS + "_lambda.py",
        "self.environ = dict(variables)",
        "self.environ = {**os.environ, **variables}",
        (DELIVERY, "-k", "environment"),
    ),
    Mutation(
        "harness: the rule target's retry attempts ignored",
        HARNESS + "_events.py",
        'self.target.get("RetryPolicy", {}).get(\n'
        '                "MaximumRetryAttempts", EVENTBRIDGE_MAX_RETRY_ATTEMPTS\n'
        "            )\n",
        "EVENTBRIDGE_MAX_RETRY_ATTEMPTS\n",
        (DELIVERY, "-k", "retry_policy or reasons"),
    ),
    Mutation(
        "harness: the function timeout not enforced",
        HARNESS + "_trigger.py",
        "if elapsed > self.timeout_seconds:",
        "if False:",
        (DELIVERY, "-k", "function_timeout"),
    ),
    Mutation(
        "harness: no 6 MB batch payload",
        HARNESS + "_lambda.py",
        "if payload + size > BATCH_PAYLOAD_LIMIT and records:",
        "if False:",
        (DELIVERY, "-k", "6_mb"),
    ),
    Mutation(
        "harness: the batching window ignored",
        HARNESS + "_lambda.py",
        "deadline = deadline or CLOCK.now() + self._window",
        "deadline = deadline or CLOCK.now()",
        (DELIVERY, "-k", "window"),
    ),
    Mutation(
        "harness: a Glue run holds no slot on the virtual clock",
        HARNESS + "_glue_emulation.py",
        "CLOCK.sleep_until(ends_at)  # the slot is held for the modelled run time",
        "pass",
        (LOCAL, "-k", "predicted_count or queuing_or_batching or job_timeout"),
    ),
    Mutation(
        "harness: the workflow timeout not on the virtual clock",
        HARNESS + "_stepfunctions/clock.py",
        "with CLOCK.deadline(timeout) as deadline:",
        "with CLOCK.deadline(None) as deadline:",
        (LOCAL, "-k", "workflow_timeout or timed_out"),
    ),
    Mutation(
        "harness: a task's TimeoutSeconds not kept",
        HARNESS + "_stepfunctions/clock.py",
        "with CLOCK.deadline(timeout_seconds) as deadline:",
        "with CLOCK.deadline(None) as deadline:",
        (LOCAL, "-k", "task_past_its_timeout"),
    ),
    Mutation(
        "a Deny naming the account does not reach its roles",
        EVALUATOR,
        '    if _names_account(values, principal):\n        return "account"\n',
        "    if _names_account(values, principal):\n        return None\n",
        (CROSS_CHECK, "-k", "account"),
    ),
    Mutation(
        "a call into another account decided by one side",
        EVALUATOR,
        "        if cross_account:\n",
        "        if False:\n",
        (CROSS_CHECK, "-k", "cross"),
    ),
    Mutation(
        "NotPrincipal Deny spares a role named without its account",
        EVALUATOR,
        "spared = itself and account",
        "spared = itself or account",
        (CROSS_CHECK, "-k", "not_principal or NotPrincipal"),
    ),
    Mutation(
        "a key policy naming the role bypasses an identity Deny",
        EVALUATOR,
        '        if any(_matches(s, "Deny", action, resource, context) for s in identity):\n',
        '        if policy_kind == "resource" and any(\n'
        '            _matches(s, "Deny", action, resource, context) for s in identity\n'
        "        ):\n",
        (CROSS_CHECK, "-k", "KMS"),
    ),
    Mutation(
        "Glue job package without its copy of the contract",
        GLUE_PACKAGE,
        '    shutil.copyfile(CONTRACT_SOURCE, package / "_contract.py")\n',
        "",
        (PACKAGE_TESTS, "-m", "not spark"),
    ),
    Mutation(
        "Glue job package without the stages named p* (plan, probe, profile)",
        GLUE_PACKAGE,
        'sorted(PACKAGE_SOURCE.glob("*.py"))',
        'sorted(PACKAGE_SOURCE.glob("[!p]*.py"))',
        (PACKAGE_TESTS, "-m", "not spark", "-k", "every_module"),
    ),
    Mutation(
        "the job reads each object on its own (one Spark read per object, not per format)",
        "src/event_driven_etl/runtime/glue/event_driven_etl_job/plan.py",
        "groups.setdefault(probe.group, []).append(probe)",
        "groups.setdefault((probe.group, probe.uri), []).append(probe)",
        ("tests/unit/test_glue_script.py", "-k", "one_spark_read"),
    ),
    Mutation(
        "a re-run keeps its earlier files (publish removes nothing)",
        "src/event_driven_etl/runtime/glue/event_driven_etl_job/write.py",
        "            storage.delete(old)\n",
        "            pass\n",
        ("tests/unit/test_glue_script.py", "-k", "same_input_twice"),
    ),
    Mutation(
        "the Glue role may not decrypt a brought bucket's objects (source_bucket_key ignored)",
        "src/event_driven_etl/glue_job.py",
        "            source_bucket_key.grant_decrypt(self.role)\n",
        "            pass\n",
        (PERMISSIONS, "-k", "encrypted"),
    ),
    Mutation(
        "harness: a brought bucket's key ignored (its objects read as SSE-S3)",
        HARNESS + "_session.py",
        "        access.bucket_keys.update(self._bucket_keys)\n",
        "",
        (PERMISSIONS, "-k", "encrypted"),
    ),
    Mutation(
        "harness: the Glue script's Hadoop file system calls unchecked",
        HARNESS + "_webhdfs.py",
        "        if self.authorize is not None:\n",
        "        if self.authorize is None:\n",
        ("tests/e2e/test_script_calls_offline.py",),
    ),
    Mutation(
        "harness: an S3 rename overwrites an existing file (as a local rename does)",
        HARNESS + "_webhdfs.py",
        "        if self._head(bucket, target) is not None:\n"
        "            return False\n        if target",
        "        if target",
        ("tests/unit/test_webhdfs_gateway.py",),
    ),
    Mutation(
        "a key imported by ARN allows everyone (its policy unknown)",
        EVALUATOR,
        "statements = self.imported_keys.get(key_arn) or default_key_policy(key_arn)",
        'return True, ""',
        (PERMISSIONS, "-k", "imported_key"),
    ),
]


def _pytest(tests: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-q", "-p", "no:logging", *tests],
        check=False,
        cwd=ROOT,
        env={**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"},
        capture_output=True,
        text=True,
        timeout=1800,
    )


def run(mutation: Mutation) -> bool:
    """Test clean, apply, test, restore; return whether a test caught the mutation."""
    path = ROOT / mutation.path
    original = path.read_text()
    if mutation.old not in original:
        print(f"{mutation.name}: NOT APPLICABLE (the code moved; update the list)")
        return False
    clean = _pytest(mutation.tests)
    if clean.returncode != 0:  # a test that fails anyway would count as a catch
        print(f"{mutation.name}: FAILS ON CLEAN CODE ({clean.stdout.strip().splitlines()[-1:]})")
        return False
    path.write_text(original.replace(mutation.old, mutation.new, 1))
    try:
        result = _pytest(mutation.tests)
    finally:
        path.write_text(original)
    failed = [
        line.split("::")[-1].split(" ")[0]
        for line in result.stdout.splitlines()
        if line.startswith("FAILED")
    ]
    caught = result.returncode == 1 and bool(failed)
    print(f"{mutation.name}: {'CAUGHT by ' + ', '.join(failed) if caught else 'SURVIVED'}")
    return caught


def main() -> int:
    wanted = [w.lower() for w in sys.argv[1:]]
    chosen = [m for m in MUTATIONS if all(w in m.name.lower() for w in wanted)]
    caught = [run(m) for m in chosen]  # every one runs, also after a survivor
    return 0 if all(caught) else 1


if __name__ == "__main__":
    sys.exit(main())

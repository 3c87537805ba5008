"""scripts/setup sets up what each task needs, once: `demo` only .venv with the testing extra,
the default (the tests) the rest; a changed pyspark version rebuilds .venv-spark4.

Run on a copy of the script with stand-ins for python3, java and node that record each call,
so nothing is installed and no network is used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STUB = r"""#!/usr/bin/env bash
# Records its call; `-m venv DIR` makes DIR/bin/python a copy of this stub; `pip install`
# creates what the script checks for (checkov's entry point, the cdk_nag package, a pyspark
# installed with --target).
echo "$0 $*" >> "$SETUP_LOG"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then mkdir -p "$3/bin"; cp "$STUB_PATH" "$3/bin/python"; fi
if [ "$1 $2 $3" = "-m pip install" ]; then
  previous=""; target=""; spark=""
  for argument in "$@"; do
    here="$(dirname "$0")"
    case "$argument" in checkov*) touch "$here/checkov"; chmod +x "$here/checkov";; esac
    case "$argument" in pyspark==*) spark="${argument#pyspark==}";; esac
    [ "$previous" = "--target" ] && target="$argument"
    previous="$argument"
  done
  if [ -n "$target" ] && [ -n "$spark" ]; then
    mkdir -p "$target/pyspark-$spark.dist-info"; touch "$target/pyspark-$spark.dist-info/METADATA"
  elif [ -n "$target" ]; then
    mkdir -p "$target/cdk_nag"; touch "$target/cdk_nag/__init__.py"
  fi
fi
"""


CURL_STUB = r"""#!/usr/bin/env bash
# Records its call and writes a stand-in jar ("jar"), or that content's SHA-1 for a .sha1 URL.
echo "curl $*" >> "$SETUP_LOG"
out=""; previous=""
for argument in "$@"; do [ "$previous" = "-o" ] && out="$argument"; previous="$argument"; done
case "$out" in
  *.sha1) printf '%s' "$(printf jar | sha1sum | cut -c1-40)" > "$out" ;;
  *) printf jar > "$out" ;;
esac
"""


def _tree(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    tree = tmp_path / "clone"
    (tree / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts/setup", tree / "scripts/setup")
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "python3"
    stub.write_text(STUB)
    stub.chmod(0o755)
    for tool in ("java", "node"):  # present, so the script installs nothing with apt
        (bin_dir / tool).write_text("#!/bin/sh\n")
        (bin_dir / tool).chmod(0o755)
    (bin_dir / "curl").write_text(CURL_STUB)  # no network: Maven Central stood in for
    (bin_dir / "curl").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHON": str(stub),
        "STUB_PATH": str(stub),
        "SETUP_LOG": str(tmp_path / "calls.log"),
    }
    return tree, env


def _setup(tree: Path, env: dict[str, str], *target: str) -> list[str]:
    log = Path(env["SETUP_LOG"])
    log.write_text("")
    subprocess.run(["bash", "scripts/setup", *target], cwd=tree, env=env, check=True, timeout=60)
    return [line.replace(str(tree) + "/", "") for line in log.read_text().splitlines()]


def _installs(calls: list[str]) -> list[str]:
    return [c for c in calls if " -m pip install -q " in c and "--upgrade pip" not in c]


def test_demo_set_up_installs_only_the_testing_extra_into_venv(tmp_path: Path) -> None:
    tree, env = _tree(tmp_path)
    calls = _setup(tree, env, "demo")
    assert _installs(calls) == [".venv/bin/python -m pip install -q -e .[testing]"]
    assert not (tree / ".venv-spark4").exists()
    assert not (tree / ".venv-checkov").exists()
    assert not (tree / ".nag2").exists()
    assert _installs(_setup(tree, env, "demo")) == []  # set up once


def test_test_set_up_adds_the_dev_extra_and_the_other_environments_once(tmp_path: Path) -> None:
    tree, env = _tree(tmp_path)
    _setup(tree, env, "demo")
    installs = _installs(_setup(tree, env))
    assert installs[0] == ".venv/bin/python -m pip install -q -e .[dev]"
    assert ".venv-spark4/bin/python -m pip install -q -e .[dev]" in installs
    assert ".venv-spark4/bin/python -m pip install -q pyspark==4.1.3" in installs
    assert (
        ".venv-spark4/bin/python -m pip install -q --no-deps --target .pyspark-4.1.1 pyspark==4.1.1"
        in installs
    )
    assert any(c.startswith(".venv-checkov/bin/python -m pip install -q checkov") for c in installs)
    assert any("--target .nag2" in c for c in installs)
    assert _installs(_setup(tree, env)) == []
    assert _installs(_setup(tree, env, "demo")) == []  # the dev extra includes the testing one


def test_a_new_pyspark_version_rebuilds_only_the_spark_venv(tmp_path: Path) -> None:
    tree, env = _tree(tmp_path)
    _setup(tree, env)
    script = tree / "scripts/setup"
    script.write_text(script.read_text().replace("SPARK4_VERSION=4.1.3", "SPARK4_VERSION=4.1.4"))
    installs = _installs(_setup(tree, env))
    assert installs == [
        ".venv-spark4/bin/python -m pip install -q -e .[dev]",
        ".venv-spark4/bin/python -m pip install -q pyspark==4.1.4",
    ]


def test_a_new_glue_6_0_spark_version_reinstalls_only_its_pyspark(tmp_path: Path) -> None:
    tree, env = _tree(tmp_path)
    _setup(tree, env)
    script = tree / "scripts/setup"
    script.write_text(script.read_text().replace("SPARK41_VERSION=4.1.1", "SPARK41_VERSION=4.1.2"))
    assert _installs(_setup(tree, env)) == [
        ".venv-spark4/bin/python -m pip install -q --no-deps --target .pyspark-4.1.2 pyspark==4.1.2"
    ]


def test_fails_on_an_unknown_target(tmp_path: Path) -> None:
    tree, env = _tree(tmp_path)
    result = subprocess.run(
        ["bash", "scripts/setup", "everything"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "usage: scripts/setup [demo|test]" in result.stderr


def test_test_set_up_fetches_the_iceberg_jars_once_checked_against_their_sha1(
    tmp_path: Path,
) -> None:
    tree, env = _tree(tmp_path)
    assert not [c for c in _setup(tree, env, "demo") if c.startswith("curl")]
    fetched = [c for c in _setup(tree, env) if c.startswith("curl")]
    maven = "https://repo1.maven.org/maven2/org/apache/iceberg"
    # Two jars per Spark line (Glue 5.1's Spark 3.5, Glue 6.x's Spark 4.1), each with its .sha1.
    assert len(fetched) == 8 and all(maven in c for c in fetched)
    for name in (
        "iceberg-spark-runtime-3.5_2.12-1.10.0.jar",
        "iceberg-aws-bundle-1.10.0.jar",
        "iceberg-spark-runtime-4.1_2.13-1.11.0.jar",
        "iceberg-aws-bundle-1.11.0.jar",
    ):
        assert (tree / ".cache/jars" / name).read_text() == "jar"
    assert not [c for c in _setup(tree, env) if c.startswith("curl")]  # cached and verified
    (tree / ".cache/jars/iceberg-aws-bundle-1.10.0.jar").write_text("corrupt")
    again = [c for c in _setup(tree, env) if c.startswith("curl")]
    assert len(again) == 2 and all("iceberg-aws-bundle" in c for c in again)

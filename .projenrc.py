"""The project's definition: tasks, ignore files and GitHub workflows are generated from here.

    PROJEN_DISABLE_POST=1 python .projenrc.py

pyproject.toml is kept by hand (projen's PythonProject has no src layout or PEP 621 option);
everything projen writes is marked generated and checked unchanged by the test suite.
"""

from __future__ import annotations

from projen import Project
from projen.github import GitHub, GithubWorkflow
from projen.github.workflows import (
    Job,
    JobPermission,
    JobPermissions,
    JobStep,
    PushOptions,
)
from projen.python import Projenrc as ProjenrcPython

SETUP_STEPS = [
    JobStep(uses="actions/checkout@v4"),
    JobStep(uses="actions/setup-python@v5", with_={"python-version": "3.11"}),
    # Node 20 is end-of-life for the CDK (jsii) since 2026-10-30; 22 and 24 are supported.
    JobStep(uses="actions/setup-node@v4", with_={"node-version": "22"}),
    JobStep(uses="actions/setup-java@v4", with_={"distribution": "temurin", "java-version": "17"}),
]

# projen_command and ProjenrcPython make the header of every generated file name this file
# and the command that regenerates it (projen's default text says ".projenrc.js", "npx projen").
project = Project(
    name="event-driven-etl",
    commit_generated=True,
    projen_command="PROJEN_DISABLE_POST=1 python .projenrc.py",
)
ProjenrcPython(project, projen_version=">=0.100")  # the range pyproject.toml's dev extra holds
project.default_task.reset("python .projenrc.py")  # type: ignore[union-attr]

project.gitignore.exclude(
    ".venv/",
    ".venv-checkov/",
    ".venv-spark4/",
    ".nag2/",
    ".pyspark-*/",
    ".cache/",
    "__pycache__/",
    "*.pyc",
    "*.egg-info/",
    "cdk.out/",
    "dist/",
    "build/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".pytest_cache/",
    ".hypothesis/",
    "node_modules/",
    "benchmarks/results/",
)

project.add_task(
    "setup",
    description="Set up what the tests need (Java, Node, .venv with the dev extra, .venv-spark4, "
    ".venv-checkov, .nag2); `scripts/setup demo` sets up only what the demo needs",
    exec="bash scripts/setup",
)
project.add_task(
    "demo",
    description="Run examples/basic offline on its sample data",
    exec="bash scripts/demo",
)
project.test_task.reset("bash scripts/test")
project.add_task(
    "docs",
    description="Regenerate API.md from the docstrings (docs/generate.py)",
    exec="bash scripts/docs",
)
project.add_task(
    "bench",
    description="Run the benchmarks (ratios against baselines measured in the same run)",
    exec=".venv/bin/python benchmarks/synth.py && .venv/bin/python benchmarks/trigger.py "
    "&& .venv/bin/python benchmarks/local_run.py && .venv/bin/python benchmarks/glue_script.py",
)
project.package_task.reset(
    "rm -rf dist/python && .venv/bin/python -m build --outdir dist/python "
    "&& .venv/bin/python -m twine check dist/python/*"
)
project.add_task(
    "release",
    description="Build, check and publish to PyPI (needs TWINE_USERNAME/TWINE_PASSWORD)",
    steps=[{"spawn": "package"}, {"exec": "npx -p publib@latest publib-pypi dist/python"}],
)

github = GitHub(project, mergify=False, pull_request_lint=False)

build = GithubWorkflow(github, "build")
build.on(
    pull_request={},
    push=PushOptions(branches=["main"]),
    workflow_dispatch={},
)
build.add_jobs(
    {
        "build": Job(
            runs_on=["ubuntu-latest"],
            permissions=JobPermissions(contents=JobPermission.READ),
            steps=[
                *SETUP_STEPS,
                JobStep(
                    name="Lint, type-check, test (API.md and projen freshness included)",
                    run="bash scripts/test",
                ),
                JobStep(
                    name="Generated files are current",
                    run="PROJEN_DISABLE_POST=1 .venv/bin/python .projenrc.py "
                    "&& git diff --exit-code",
                ),
            ],
        )
    }
)

release = GithubWorkflow(github, "release")
release.on(push=PushOptions(tags=["v*"]), workflow_dispatch={})
release.add_jobs(
    {
        "release": Job(
            runs_on=["ubuntu-latest"],
            permissions=JobPermissions(contents=JobPermission.READ, id_token=JobPermission.WRITE),
            steps=[
                *SETUP_STEPS,
                JobStep(name="Test", run="bash scripts/test"),
                JobStep(
                    name="Build wheel and sdist into dist/python, twine check",
                    run="bash scripts/setup && npx projen package",
                ),
                JobStep(
                    name="Publish to PyPI",
                    run="npx -p publib@latest publib-pypi dist/python",
                    env={
                        "TWINE_USERNAME": "__token__",
                        "TWINE_PASSWORD": "${{ secrets.PYPI_TOKEN }}",
                    },
                ),
            ],
        )
    }
)

project.synth()

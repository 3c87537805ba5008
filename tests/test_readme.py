"""Every code block of README.md runs as written, so a snippet cannot go stale.

- ```python blocks are executed, each in a fresh namespace that starts with PREAMBLE below:
  the README's fragments are written as if inside a Stack's constructor, so `self` (and
  `stack`) is a Stack, and the names fragments use without defining them (`raw`, `curated`,
  `topic`, the package's public names, `glue`, `s3`, `sns`, `Duration`) exist. A block that
  runs the offline harness (`LocalPipeline`) needs local Spark and is marked `spark`.
- ```bash blocks are not run (they install things and take minutes: the Quick start's
  commands are what CI runs); each path they name in this repository must exist.
- A block right after a line `<!-- readme-test: skip (reason) -->` is skipped, and the
  reason must be given. Other fences (sql, mermaid, an error message) are prose, not code.
"""

from __future__ import annotations

import glob
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SKIP = re.compile(r"^<!-- readme-test: skip \((?P<reason>[^)]*)\) -->$")

PREAMBLE = """
from aws_cdk import App, Duration, Environment, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from event_driven_etl import *

app = App(outdir=OUTDIR)
self = stack = Stack(app, "Readme", env=Environment(account="111111111111", region="eu-west-1"))
raw = s3.Bucket(stack, "Raw")
curated = s3.Bucket(stack, "Curated")
topic = sns.Topic(stack, "Topic")
"""


@dataclass(frozen=True)
class Block:
    language: str
    line: int  # of the opening fence, 1-based
    code: str
    skip_reason: str | None


def readme_blocks(text: str) -> list[Block]:
    blocks = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = re.match(r"^```(\w*)\s*$", lines[index])
        if not match:
            index += 1
            continue
        start = index
        index += 1
        body = []
        while index < len(lines) and not lines[index].startswith("```"):
            body.append(lines[index])
            index += 1
        index += 1
        previous = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        skip = SKIP.match(previous.strip())
        blocks.append(
            Block(match.group(1), start + 1, "\n".join(body), skip["reason"] if skip else None)
        )
    return blocks


BLOCKS = readme_blocks(README.read_text())
PYTHON = [b for b in BLOCKS if b.language == "python"]
BASH = [b for b in BLOCKS if b.language in ("bash", "sh", "shell", "console")]


def _params(blocks: list[Block]) -> list[object]:
    params: list[object] = []
    for block in blocks:
        marks = []
        if block.skip_reason is not None:
            marks.append(pytest.mark.skip(reason=f"README: {block.skip_reason}"))
        elif "LocalPipeline" in block.code:
            marks.append(pytest.mark.spark)
        params.append(pytest.param(block, id=f"line{block.line}", marks=marks))
    return params


@pytest.mark.parametrize("block", _params(PYTHON))
def test_python_block_of_the_readme_runs(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # app.synth() and friends write where they run
    namespace: dict[str, object] = {"OUTDIR": str(tmp_path / "cdk.out"), "__name__": "readme"}
    exec(compile(PREAMBLE, "<readme preamble>", "exec"), namespace)
    padded = "\n" * block.line + block.code  # tracebacks name the README's own line numbers
    exec(compile(padded, str(README), "exec"), namespace)


REPO_PATH = re.compile(r"^(\./)?(scripts|examples|benchmarks|docs|src|tests|\.ci)/[\w./*-]*$")


def named_paths(code: str) -> list[str]:
    paths = []
    for line in code.splitlines():
        command = line.split(" #", 1)[0].strip()
        if not command or command.startswith("#"):
            continue
        for token in shlex.split(command, comments=True):
            if REPO_PATH.match(token) or token.endswith((".py", ".toml", ".md")):
                paths.append(token)
    return paths


@pytest.mark.parametrize("block", _params(BASH))
def test_bash_block_of_the_readme_names_existing_files(block: Block) -> None:
    missing = [p for p in named_paths(block.code) if not glob.glob(str(ROOT / p))]
    assert missing == [], f"README.md line {block.line} names missing files"


def test_the_readme_has_runnable_blocks_and_every_skip_gives_a_reason() -> None:
    assert len(PYTHON) >= 4 and len(BASH) >= 2
    text = README.read_text()
    markers = [SKIP.match(line.strip()) for line in text.splitlines() if "readme-test" in line]
    assert all(m is not None and m["reason"].strip() for m in markers)


def test_fails_a_skip_marker_without_reason_or_a_block_naming_a_missing_script() -> None:
    """The parser sees what the tests above rely on."""
    blocks = readme_blocks(
        "<!-- readme-test: skip (needs AWS) -->\n```python\nboom()\n```\n\n```bash\n"
        "./scripts/nope   # a comment\n```\n"
    )
    assert [(b.language, b.skip_reason) for b in blocks] == [
        ("python", "needs AWS"),
        ("bash", None),
    ]
    assert named_paths(blocks[1].code) == ["./scripts/nope"]
    assert not glob.glob(str(ROOT / "scripts/nope"))
    assert SKIP.match("<!-- readme-test: skip -->") is None


def _section(title: str) -> str:
    text = README.read_text()
    return text.split(title, 1)[1].split("\n#", 1)[0]


def _template_types(builder: object) -> dict[str, int]:
    from collections import Counter

    from aws_cdk import App, Stack

    app = App()
    stack = Stack(app, "Etl")
    assert callable(builder)
    builder(stack)
    template = app.synth().get_stack_by_name("Etl").template
    return dict(Counter(r["Type"] for r in template["Resources"].values()))


def test_resources_created_lists_every_resource_type_of_the_default_pipeline() -> None:
    from event_driven_etl import EventDrivenEtlPipeline

    table = _section("### Resources created (defaults)")
    listed = {
        m[1]: int(m[2]) for m in re.finditer(r"^\| `([\w:]+)` \| (\d+) \|", table, re.MULTILINE)
    }
    actual = _template_types(lambda stack: EventDrivenEtlPipeline(stack, "Pipeline"))
    assert listed == actual
    assert f"these {sum(actual.values())} resources" in table


def test_the_synth_benchmark_states_how_its_baseline_differs() -> None:
    """The hand-written baseline of benchmarks/synth.py is smaller than the library's
    pipeline; the README says by how much and what it lacks."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from handwritten_stack import add_handwritten_pipeline  # type: ignore[import-not-found]  # benchmarks/ is not a package

    from event_driven_etl import EventDrivenEtlPipeline

    library = _template_types(
        lambda s: EventDrivenEtlPipeline(s, "Pipeline0", key_prefix="incoming/")
    )
    hand = _template_types(lambda s: add_handwritten_pipeline(s, "Pipeline0"))
    lacks = {k: n - hand.get(k, 0) for k, n in library.items() if n != hand.get(k, 0)}
    assert lacks == {
        "AWS::Glue::Database": 1,
        "AWS::StepFunctions::StateMachine": 1,
        "AWS::Logs::LogGroup": 1,
        "AWS::IAM::Role": 2,
        "AWS::IAM::Policy": 2,
        "AWS::CloudWatch::Alarm": 1,
    }
    performance = " ".join(_section("## Performance").split())
    assert f"{sum(hand.values())} of the library's {sum(library.values())} resources" in performance

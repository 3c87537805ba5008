"""API.md renders on GitHub as a reference: links that land, public paths, Markdown only."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "API.md"


def _outside_code(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the prose: fenced code blocks and inline code removed."""
    prose = []
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            prose.append((number, re.sub(r"`[^`]+`", "`code`", line)))
    return prose


def github_anchors(text: str) -> set[str]:
    """The ids GitHub gives the headings (github-slugger's rules, repeats numbered)."""
    seen: dict[str, int] = {}
    anchors = set()
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        match = re.match(r"^#{1,6} (.+)$", line)
        if match and not fenced:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def dead_links(text: str) -> list[str]:
    anchors = github_anchors(text)
    return [t for t in re.findall(r"\]\(#([^)]*)\)", text) if t not in anchors]


RST = [
    (r":(class|meth|func|attr|mod|exc|obj|data):`", "a Sphinx role"),
    (r"^\s*:(param|returns?|raises|rtype|type)\b", "a Sphinx field"),
    (r"\.\. [a-z-]+::", "a reST directive"),
    (r"::\s*$", "a reST literal-block marker"),
    (r"``", "reST inline literal (double backticks)"),
]


def rst_markup(text: str) -> list[str]:
    found = []
    for number, line in _outside_code(text):
        for pattern, what in RST:
            if re.search(pattern, line):
                found.append(f"line {number}: {what}: {line.strip()}")
    return found


PRIVATE = [
    r"event_driven_etl(\.[a-z_]+)*\._[a-z]",  # a private module or name in a path
    r"\b_defaults\.",
    r"\(lambda",  # a dataclass default_factory shown as code
    r"object at 0x",  # a repr
]


def private_paths(text: str) -> list[str]:
    return [
        f"line {n}: {line.strip()}"
        for n, line in enumerate(text.splitlines(), 1)
        for pattern in PRIVATE
        if re.search(pattern, line)
    ]


def test_every_internal_link_of_api_md_lands_on_a_heading() -> None:
    text = API.read_text()
    assert re.findall(r"\]\(#", text), "API.md links its contents"
    assert dead_links(text) == []


def test_api_md_is_markdown_without_rest_markup() -> None:
    assert rst_markup(API.read_text()) == []


def test_api_md_names_public_paths_and_real_default_values() -> None:
    assert private_paths(API.read_text()) == []


def test_api_md_documents_every_public_name() -> None:
    import event_driven_etl
    import event_driven_etl.testing

    anchors = github_anchors(API.read_text())
    names = [n for n in event_driven_etl.__all__ if n != "__version__"]
    names += [*event_driven_etl.testing.__all__, "estimate_glue_cost", "GluePrices"]
    assert [n for n in names if n.lower() not in anchors] == []


@pytest.mark.parametrize(
    ("broken", "check"),
    [
        ("# A\n\n[a](#b)\n", dead_links),
        ("# `event_driven_etl.cost`\n\n[c](#event_driven_etl.cost)\n", dead_links),
        ("# A\n# A\n\n[a](#a-2)\n", dead_links),
        ("Bases: :class:`Construct`\n", rst_markup),
        ("Example::\n\n    x = 1\n", rst_markup),
        (".. code-block:: python\n", rst_markup),
        (":param x: the x\n", rst_markup),
        ("``x``\n", rst_markup),
        ("see `event_driven_etl.testing._provision.Emulation`\n", private_paths),
        ("log_retention=_defaults.DEFAULT_LOG_RETENTION\n", private_paths),
        ("window=(lambda: Duration.minutes(1))()\n", private_paths),
    ],
)
def test_fails_on_each_kind_of_defect(broken: str, check: object) -> None:
    """The checks above catch what API.md used to show (so a passing check means something)."""
    assert callable(check)
    assert check(broken) != []


def test_fenced_code_and_inline_code_are_not_judged_as_rest() -> None:
    assert rst_markup("```python\nExample::\n:param x:\n```\nuse `a::b` here\n") == []


def test_help_lists_the_public_attributes_of_each_construct() -> None:
    import pydoc

    import event_driven_etl
    from event_driven_etl._docs import attribute_docs

    checked = 0
    for name in event_driven_etl.__all__:
        value = getattr(event_driven_etl, name)
        if not isinstance(value, type):
            continue
        text = pydoc.plain(pydoc.render_doc(value))
        for module in sys.modules:
            if module.startswith("event_driven_etl.") and vars(sys.modules[module]).get(name):
                for attribute in attribute_docs(value, module):
                    assert attribute.name in text and attribute.doc.split()[0] in text, (
                        f"help({name}) does not document {attribute.name}"
                    )
                    checked += 1
    assert checked > 30

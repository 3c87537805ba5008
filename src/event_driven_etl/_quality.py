"""The ``quality_rules`` prop: its type, its rulesets parsed at synth (with the job's own
parser, which imports no Spark), and the ``--quality_rules`` job argument it becomes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Optional, Union

from ._contract import QUALITY_EVERY_TABLE, QUALITY_RULES_ARGUMENT
from ._problems import Problems, is_unresolved
from .runtime.glue.event_driven_etl_job.quality import RulesetError, parse_ruleset

QualityRules = Union[str, Mapping[str, str]]
"""A DQDL ruleset (every table), or table name -> ruleset (``"*"``: every table)."""


def quality_rules_type(value: Any) -> Optional[str]:
    """The prop's type check: a string, or a mapping of strings to strings."""
    if isinstance(value, str):
        return None
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return None
    return (
        "must be a DQDL ruleset string ('Rules = [ RowCount > 0 ]') or a mapping of table "
        "name to ruleset"
    )


def rulesets_of(value: QualityRules) -> dict[str, str]:
    """The prop as the job argument's mapping: a single ruleset applies to every table."""
    if isinstance(value, str):
        return {QUALITY_EVERY_TABLE: value}
    return dict(value)


def quality_rules_problems(
    problems: Problems, value: Optional[QualityRules], table: Optional[str]
) -> None:
    """Record each ruleset that does not parse (naming the rule and the position) and each
    mapping key that names no table of the pipeline (``table``: its one table, when known)."""
    if value is None or quality_rules_type(value) is not None:
        return  # a wrong type is reported on its own
    for key, text in rulesets_of(value).items():
        if is_unresolved(text):
            continue
        where = "" if isinstance(value, str) else f"[{key!r}]"
        try:
            parse_ruleset(text)
        except RulesetError as error:
            problems.add(f"quality_rules{where}", text, f"is not valid DQDL: {error}")
        known = table is not None and not is_unresolved(table)
        if known and not is_unresolved(key) and key not in (QUALITY_EVERY_TABLE, table):
            problems.add(
                "quality_rules",
                key,
                f"names no table of the pipeline: use {table!r} (its table) or "
                f"{QUALITY_EVERY_TABLE!r} (every table)",
            )


def quality_rules_argument(value: Optional[QualityRules]) -> dict[str, str]:
    """``--quality_rules`` for the job (nothing without rules)."""
    if value is None:
        return {}
    return {QUALITY_RULES_ARGUMENT: json.dumps(rulesets_of(value), sort_keys=True)}

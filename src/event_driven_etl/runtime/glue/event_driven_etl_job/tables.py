"""Table routing: which table of the pipeline each object lands in (pure functions, no Spark).

A pipeline made with ``Tables.by_folder()`` or ``Tables.mapping({...})`` passes its rule as
``--tables`` (JSON: ``{"rule": "by_folder" | "mapping", "key_prefix": "...", "routes":
{"<prefix under key_prefix>": "<table>"}}``); without it the run is one table, as before.

* ``by_folder``: the table is the first folder of the key under ``key_prefix``
  (``incoming/orders/2026/12/a.csv`` with ``key_prefix="incoming/"`` -> ``orders``); an
  object directly under ``key_prefix`` has no folder, so no table.
* ``mapping``: the table of the LONGEST route prefix the key (under ``key_prefix``) starts
  with, so ``crm/customers/`` wins over ``crm/`` for ``crm/customers/a.csv``; a key that
  matches no route has no table.

An object without a table is skipped with the reason, never dropped. Table names are
normalised as column names are (``"Order Lines"`` -> ``order_lines``, ``"2026"`` -> ``_2026``)
and must then be Glue and Athena table names (ASCII letters, digits, ``_``).

The construct imports :func:`table_name` and :class:`TableRule` too, so the names it
validates at synth are the names the job uses at run time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional

from .errors import JobInputError
from .names import normalise_column_name
from .shared import contract

_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,254}$")
"""Glue and Athena table names: lowercase ASCII letters, digits and ``_``, 255 at most."""


def table_name(text: str) -> Optional[str]:
    """``text`` (a folder or a name given in a mapping) as a table name, normalised like a
    column name; None when nothing of it makes a Glue table name (no letter or digit,
    letters outside ASCII, longer than 255)."""
    if not any(ch.isalnum() for ch in text):
        return None
    name = normalise_column_name(text, 0)
    return name if _TABLE_NAME.match(name) else None


class Route(NamedTuple):
    """Where one object goes: its ``table``, or None and the ``reason`` it has none."""

    table: Optional[str]
    reason: str = ""


@dataclass(frozen=True)
class TableRule:
    """A pipeline's routing rule (see the module's docstring)."""

    rule: str
    key_prefix: str = ""
    routes: tuple[tuple[str, str], ...] = ()
    """``(prefix, table)`` pairs, longest prefix first, tables normalised."""

    @classmethod
    def of(
        cls, rule: str, key_prefix: str = "", routes: Optional[Mapping[str, str]] = None
    ) -> TableRule:
        """The rule with its routes ordered longest prefix first (ties by prefix, so the
        order is stable) and its table names normalised (unnamable ones left as given)."""
        pairs = [(prefix, table_name(table) or table) for prefix, table in (routes or {}).items()]
        ordered = sorted(pairs, key=lambda pair: (-len(pair[0]), pair[0]))
        return cls(rule, key_prefix, tuple(ordered))

    @classmethod
    def from_json(cls, text: str) -> Optional[TableRule]:
        """The ``--tables`` argument; None when empty (one table, as before)."""
        if not text.strip():
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise JobInputError(f"{contract.TABLES_ARGUMENT} must be JSON: {error}") from error
        if not isinstance(data, dict) or data.get("rule") not in contract.TABLE_RULES:
            rules = ", ".join(contract.TABLE_RULES)
            raise JobInputError(
                f"{contract.TABLES_ARGUMENT} must be a JSON object whose rule is one of "
                f"{rules}, got {text[:200]!r}"
            )
        routes = data.get("routes") or {}
        if not isinstance(routes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in routes.items()
        ):
            raise JobInputError(
                f"{contract.TABLES_ARGUMENT} routes must map key prefixes to table names"
            )
        return cls.of(str(data["rule"]), str(data.get("key_prefix") or ""), routes)

    def to_json(self) -> str:
        """The ``--tables`` argument for this rule (compact, keys sorted: a stable template)."""
        data: dict[str, Any] = {"rule": self.rule, "key_prefix": self.key_prefix}
        if self.rule == contract.TABLE_RULE_MAPPING:
            data["routes"] = dict(sorted(self.routes))
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables a mapping names (sorted, each once); empty for ``by_folder``."""
        return tuple(sorted({table for _, table in self.routes}))

    def route_key(self, key: str) -> Route:
        """The table of the object stored under ``key`` (as stored in S3, not URL-encoded)."""
        relative = key[len(self.key_prefix) :] if key.startswith(self.key_prefix) else key
        if self.rule == contract.TABLE_RULE_MAPPING:
            return self._mapped(relative)
        folder, slash, _ = relative.partition("/")
        if not slash:
            return Route(
                None,
                f"not in a folder under {self.key_prefix or 'the bucket root'!r}: "
                "by_folder takes the table from the first folder",
            )
        name = table_name(folder)
        if name is None:
            return Route(
                None,
                f"folder {folder!r} gives no table name (letters or digits, "
                "ASCII, at most 255 characters)",
            )
        return Route(name)

    def _mapped(self, relative: str) -> Route:
        for prefix, table in self.routes:  # longest first: the most specific route wins
            if relative.startswith(prefix):
                return Route(table)
        known = ", ".join(repr(prefix) for prefix, _ in self.routes)
        return Route(
            None,
            f"matches no table of the mapping (key prefixes under "
            f"{self.key_prefix or 'the bucket root'!r}: {known})",
        )

    def route_uri(self, uri: str) -> Route:
        """The table of ``s3://bucket/key`` (any ``scheme://bucket/key``)."""
        key = uri.split("://", 1)[-1].partition("/")[2]
        return self.route_key(key)

    def group(self, uris: Sequence[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
        """The objects by table (tables sorted, each table's objects in the given order), and
        the objects without a table -> why."""
        by_table: dict[str, list[str]] = {}
        unrouted: dict[str, str] = {}
        for uri in uris:
            route = self.route_uri(uri)
            if route.table is None:
                unrouted[uri] = route.reason
            else:
                by_table.setdefault(route.table, []).append(uri)
        return dict(sorted(by_table.items())), unrouted

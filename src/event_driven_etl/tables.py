"""Tables: which table of the pipeline each new object lands in (the ``tables`` prop)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from ._contract import TABLE_RULE_BY_FOLDER, TABLE_RULE_MAPPING
from ._docs import public
from ._problems import is_unresolved
from .runtime.glue.event_driven_etl_job.tables import TableRule, table_name

__all__ = ["Tables"]

_SINGLE = "single"


@public
@dataclass(frozen=True, repr=False)
class Tables:
    """How the pipeline routes objects to tables: one table (the default), a table per folder,
    or tables by key prefix.

    Each table has its own schema (so unrelated feeds never fight over a column's type), its
    own partitions, exactly-once bookkeeping and catalog table; one batch may hold objects of
    several tables and is one Glue run that writes each (one read per format per table).
    Table names are normalised as column names are (``"Order Lines"`` -> ``order_lines``,
    ``"2026"`` -> ``_2026``) and must then be Glue table names (ASCII letters, digits, ``_``).

    Make one with :meth:`single`, :meth:`by_folder` or :meth:`mapping`.

    Example::

        EventDrivenEtlPipeline(self, "Pipeline", key_prefix="incoming/", tables=Tables.by_folder())
        # incoming/orders/2026/12/a.csv -> table "orders", under processed/orders/
    """

    kind: str
    """``single``, ``by_folder`` or ``mapping``."""
    name: Any = None
    """With :meth:`single`, the table's name as given (None: the pipeline's default)."""
    routes: Any = ()
    """With :meth:`mapping`, ``(key prefix, table)`` pairs as given."""

    @staticmethod
    def single(name: Optional[str] = None) -> Tables:
        """One table for every object: the pipeline as it has always been (same output prefix,
        same catalog table). ``name`` names the catalog table (the same as
        ``catalog_table_name``). Default: - ``catalog_table_name`` or its default"""
        return Tables(_SINGLE, name=name)

    @staticmethod
    def by_folder() -> Tables:
        """The table is the first folder of the key under ``key_prefix``:
        ``incoming/orders/2026/12/a.csv`` (``key_prefix="incoming/"``) lands in ``orders``,
        written under ``<output_prefix>orders/``. The job creates each table in the catalog
        database on its first object. An object directly under ``key_prefix`` (no folder) is
        skipped with the reason."""
        return Tables(TABLE_RULE_BY_FOLDER)

    @staticmethod
    def mapping(routes: Mapping[str, str]) -> Tables:
        """Tables by key prefix, relative to ``key_prefix``:
        ``Tables.mapping({"orders/": "orders", "crm/customers/": "customers"})``. The
        longest prefix a key starts with wins (``crm/customers/`` over ``crm/``); ``""``
        matches every key, so it is the table of keys no other prefix matches. An object
        matching no prefix is skipped with the reason (listed in the notification's
        ``skipped``), never lost. Several prefixes may name one table."""
        pairs = tuple(routes.items()) if isinstance(routes, Mapping) else routes
        return Tables(TABLE_RULE_MAPPING, routes=pairs)

    def __repr__(self) -> str:
        """As written in code, e.g. ``Tables.mapping({'orders/': 'orders'})`` (error messages)."""
        if self.kind == TABLE_RULE_MAPPING:
            return f"Tables.mapping({_as_given(self.routes)!r})"
        if self.is_single:
            return f"Tables.single({'' if self.name is None else repr(self.name)})"
        return f"Tables.{self.kind}()"

    @property
    def is_single(self) -> bool:
        """Whether every object lands in one table (no routing)."""
        return self.kind == _SINGLE

    def _rule(self, key_prefix: Optional[str]) -> Optional[TableRule]:
        """The job's ``--tables`` rule (None with :meth:`single`: no argument, as before)."""
        if self.is_single:
            return None
        return TableRule.of(self.kind, key_prefix or "", dict(self.routes))

    def _arn_names(self, single_table: str) -> tuple[str, ...]:
        """The table names IAM statements name: the mapping's tables, ``*`` (every table of
        the database) for tables named by folder at run time, else ``single_table``."""
        if self.kind == TABLE_RULE_BY_FOLDER:
            return ("*",)
        if self.kind == TABLE_RULE_MAPPING:
            return TableRule.of(self.kind, "", dict(self.routes)).tables
        return (single_table,)

    def _table_names(self) -> Optional[tuple[str, ...]]:
        """The tables' names when known at synth (a mapping's, a named single table's), each
        normalised; None when the job names them at run time (by folder, or the default)."""
        if self.kind == TABLE_RULE_MAPPING:
            if not _well_formed(self.routes):
                return None  # validation reports the routes: no names to go by
            return TableRule.of(self.kind, "", dict(self.routes)).tables
        if self.is_single and isinstance(self.name, str):
            return (table_name(self.name) or self.name,)
        return None


def _well_formed(routes: Any) -> bool:
    """Whether a mapping's routes are ``(str, str)`` pairs (any other shape is refused by
    validation, which needs their names to be worked out without raising)."""
    return isinstance(routes, tuple) and all(
        isinstance(pair, tuple)
        and len(pair) == 2
        and all(isinstance(part, str) and not is_unresolved(part) for part in pair)
        for pair in routes
    )


def _as_given(routes: Any) -> Any:
    """A mapping's routes as they were given: the dict back from its pairs; anything else
    (not a dict: validation reports it) as it is, never raising."""
    if isinstance(routes, tuple) and all(
        isinstance(pair, tuple) and len(pair) == 2 for pair in routes
    ):
        return dict(routes)
    return routes

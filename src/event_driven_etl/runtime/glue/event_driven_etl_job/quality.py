"""Data quality rules: a parser and evaluator for a subset of AWS Glue's Data Quality
Definition Language (DQDL), pure Python (no Spark, no CDK).

The construct parses ``quality_rules`` with :func:`parse_ruleset` at synth (a rule outside
the subset is refused there, never ignored); the built-in job evaluates the same rules in
Spark (``quality_gate``, with the SQL this module writes); your own script can evaluate them
on rows it holds::

    from event_driven_etl.runtime.glue.event_driven_etl_job.quality import evaluate, parse_ruleset

    ruleset = parse_ruleset('Rules = [ RowCount > 0, IsComplete "id", ColumnValues "n" >= 0 ]')
    for result in evaluate(ruleset, rows):          # rows: a sequence of dicts
        print(result.rule, result.outcome, result.observed)

The language, from the DQDL reference (https://docs.aws.amazon.com/glue/latest/dg/dqdl.html):
a ruleset is ``Rules = [ rule, rule, ... ]``, rule types are case-sensitive, column names are
double-quoted, ``#`` starts a comment. Supported rule types, each cited beside its semantics in
:data:`RULE_TYPES`; composite rules (``and``/``or``), ``where`` clauses, dynamic rules
(``last(n)``) and date expressions (``now()``) are outside the subset and refused.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

from .shared import contract

# ------------------------------------------------------------------ the subset

_DOCS = "https://docs.aws.amazon.com/glue/latest/dg/dqdl-rule-types-{}.html"

RULE_TYPES: dict[str, str] = {
    # Number of rows of the dataset.
    "RowCount": "dataset",
    # Every value non-null. Row-level: a NULL row fails (dqdl-rule-types-IsComplete).
    "IsComplete": "row",
    # Fraction of non-null values, 0..1 (dqdl-rule-types-Completeness); 1.0 with no rows.
    "Completeness": "dataset",
    # Every value occurs once and none is NULL: Uniqueness = 1.0 (dqdl-rule-types-IsUnique,
    # Deequ's definition behind it); observed: distinct non-null values / rows.
    "IsUnique": "dataset",
    # Values occurring exactly once / rows, NULLs counted as rows and never unique
    # (dqdl-rule-types-Uniqueness, Deequ's Uniqueness).
    "Uniqueness": "dataset",
    # An expression on each value: comparison, between, in [...], matches; NULL fails every
    # form but != and not in (dqdl-rule-types-ColumnValues, "Null behavior").
    "ColumnValues": "row",
    # Length of each value; NULL has length 0 (dqdl-rule-types-ColumnLength, "Null behavior").
    "ColumnLength": "row",
    # The column is in the dataset (dqdl-rule-types-ColumnExists).
    "ColumnExists": "dataset",
    # Distinct non-null values (dqdl-rule-types-DistinctValuesCount).
    "DistinctValuesCount": "dataset",
    # Mean of the non-null values; NULLs ignored (dqdl-rule-types-Mean).
    "Mean": "dataset",
    # Sum of the non-null values; NULLs ignored (dqdl-rule-types-Sum); 0 with no values.
    "Sum": "dataset",
    # Population standard deviation of the non-null values (dqdl-rule-types-StandardDeviation).
    "StandardDeviation": "dataset",
}
"""Rule type -> ``row`` (judged per row: failing rows are marked) or ``dataset``; each
rule's reference is ``https://docs.aws.amazon.com/glue/latest/dg/dqdl-rule-types-<Type>.html``."""

_NO_EXPRESSION = frozenset({"IsComplete", "IsUnique", "ColumnExists"})
_NO_COLUMN = frozenset({"RowCount"})
_THRESHOLD_RULES = frozenset({"ColumnValues", "ColumnLength"})
"""DQDL's ``with threshold`` (the fraction of rows that must pass) on these row rules."""

COMPARISONS = ("=", "!=", ">", ">=", "<", "<=")
OPERATORS = (*COMPARISONS, "between", "not between", "in", "not in", "matches")
"""The expression operators of the subset (DQDL reference, "Expressions")."""

_DYNAMIC = ("now", "last", "min", "max", "avg")
_KEYWORDS = ("NULL", "EMPTY", "WHITESPACES_ONLY")


@dataclass(frozen=True)
class Keyword:
    """``NULL``, ``EMPTY`` (the empty string) or ``WHITESPACES_ONLY`` in a ColumnValues
    expression (DQDL reference, ColumnValues "Allowed values")."""

    name: str

    def __str__(self) -> str:
        return self.name


NULL = Keyword("NULL")
EMPTY = Keyword("EMPTY")
WHITESPACES_ONLY = Keyword("WHITESPACES_ONLY")

Literal = Union[int, float, str, Keyword]


def _literal_text(value: Literal) -> str:
    if isinstance(value, Keyword):
        return value.name
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


@dataclass(frozen=True)
class Condition:
    """An expression: ``op`` and its operands (two for between, any number for in)."""

    op: str
    values: tuple[Literal, ...]

    def __str__(self) -> str:
        if self.op in ("between", "not between"):
            return f"{self.op} {_literal_text(self.values[0])} and {_literal_text(self.values[1])}"
        if self.op in ("in", "not in"):
            return f"{self.op} [{', '.join(_literal_text(v) for v in self.values)}]"
        return f"{self.op} {_literal_text(self.values[0])}"

    def holds(self, observed: Optional[float]) -> bool:
        """Whether a number (a metric, a length, a fraction) satisfies the condition; an
        undefined metric (None: a mean of no values) satisfies none."""
        if observed is None or (isinstance(observed, float) and math.isnan(observed)):
            return False
        numbers = [v for v in self.values if isinstance(v, (int, float))]
        if self.op in ("between", "not between"):
            inside = numbers[0] <= observed <= numbers[1]
            return inside if self.op == "between" else not inside
        if self.op in ("in", "not in"):
            found = any(observed == n for n in numbers)
            return found if self.op == "in" else not found
        return _compare(self.op, observed, numbers[0])


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == ">":
        return bool(left > right)
    if op == ">=":
        return bool(left >= right)
    if op == "<":
        return bool(left < right)
    return bool(left <= right)


@dataclass(frozen=True)
class Rule:
    """One rule: its type, column, expression and optional ``with threshold``."""

    kind: str
    column: Optional[str] = None
    condition: Optional[Condition] = None
    threshold: Optional[Condition] = None

    def __str__(self) -> str:
        """The rule in DQDL, as it names the rule in results (parses back to this rule)."""
        parts = [self.kind]
        if self.column is not None:
            parts.append(_literal_text(self.column))
        if self.condition is not None:
            parts.append(str(self.condition))
        if self.threshold is not None:
            parts.append(f"with threshold {self.threshold}")
        return " ".join(parts)

    @property
    def row_level(self) -> bool:
        """Judged row by row with failing rows marked (``with threshold`` makes the rule a
        judgement of the fraction of passing rows, a dataset-level one)."""
        return RULE_TYPES[self.kind] == "row" and self.threshold is None


@dataclass(frozen=True)
class Ruleset:
    """The rules of one ``Rules = [ ... ]``, in order."""

    rules: tuple[Rule, ...]

    def __str__(self) -> str:
        return "Rules = [ " + ", ".join(str(r) for r in self.rules) + " ]"

    @property
    def columns(self) -> list[str]:
        """The columns the rules name, in order of first mention."""
        return list(dict.fromkeys(r.column for r in self.rules if r.column is not None))


# ------------------------------------------------------------------ parsing


class RulesetError(ValueError):
    """A ruleset that is not valid in the supported DQDL subset: the message names the rule
    (its number and text) and the position (line and column) of the problem."""

    def __init__(self, message: str, *, offset: int, text: str, rule: Optional[int] = None):
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        where = f"line {line}, column {column}"
        rule_text = _rule_text_at(text, offset) if rule is not None else ""
        named = f"rule {rule} ({rule_text}) at " if rule is not None else "at "
        super().__init__(f"{named}{where}: {message}")
        self.offset, self.line, self.column, self.rule = offset, line, column, rule


def _rule_text_at(text: str, offset: int) -> str:
    """The rule around ``offset``, from the comma (or bracket) before to the one after."""
    start = max(text.rfind(",", 0, offset), text.rfind("[", 0, offset)) + 1
    end_candidates = [i for i in (text.find(",", offset), text.find("]", offset)) if i >= 0]
    end = min(end_candidates) if end_candidates else len(text)
    shown = " ".join(text[start:end].split())
    return shown if len(shown) <= 80 else f"{shown[:77]}..."


_TOKEN = re.compile(
    r"""(?P<space>\s+|\#[^\n]*)
      |(?P<string>"(?:[^"\\]|\\.)*")
      |(?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
      |(?P<word>[A-Za-z_][A-Za-z0-9_]*)
      |(?P<op>>=|<=|!=|=|>|<)
      |(?P<punct>[\[\],()])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    offset: int


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    offset = 0
    while offset < len(text):
        match = _TOKEN.match(text, offset)
        if match is None:
            raise RulesetError(f"unexpected character {text[offset]!r}", offset=offset, text=text)
        kind = str(match.lastgroup)
        if kind != "space":
            found.append(_Token(kind, match.group(), offset))
        offset = match.end()
    found.append(_Token("end", "", len(text)))
    return found


class _Parser:
    """Recursive descent over the tokens; every error carries the offending token's offset."""

    def __init__(self, text: str) -> None:
        self.text, self.tokens, self.at, self.rule = text, _tokens(text), 0, 0

    def fail(self, message: str, token: Optional[_Token] = None) -> RulesetError:
        token = token or self.tokens[self.at]
        rule = self.rule or None
        return RulesetError(message, offset=token.offset, text=self.text, rule=rule)

    @property
    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def expect(self, text: str, what: str) -> _Token:
        token = self.peek
        if token.text != text:
            shown = repr(token.text) if token.text else "the end"
            raise self.fail(f"expected {what}, found {shown}")
        return self.take()

    def ruleset(self) -> Ruleset:
        self.expect("Rules", "'Rules = [ ... ]' (DQDL rulesets start with Rules, capitalized)")
        self.expect("=", "'=' after Rules")
        self.expect("[", "'[' starting the list of rules")
        rules: list[Rule] = []
        while True:
            self.rule = len(rules) + 1
            rules.append(self.one_rule())
            token = self.take()
            if token.text == "]":
                break
            if token.text != ",":
                shown = repr(token.text) if token.text else "the end"
                raise self.fail(f"expected ',' or ']' after the rule, found {shown}", token)
        self.rule = 0
        if self.peek.kind != "end":
            raise self.fail("unexpected text after the closing ']'")
        return Ruleset(tuple(rules))

    def one_rule(self) -> Rule:
        token = self.take()
        if token.kind == "end":
            raise self.fail("expected a rule, found the end", token)
        if token.text == "(":
            raise self.fail(
                "composite rules ('(...) and (...)', 'or') are not supported: write the "
                "rules separately",
                token,
            )
        if token.kind != "word" or token.text not in RULE_TYPES:
            supported = ", ".join(RULE_TYPES)
            raise self.fail(
                f"unknown or unsupported rule type {token.text!r} (supported: {supported})",
                token,
            )
        kind = token.text
        column = None if kind in _NO_COLUMN else self.column_name(kind)
        condition = None
        if kind not in _NO_EXPRESSION:
            condition = self.condition(kind)
        threshold = None
        if self.peek.text == "with":
            threshold = self.threshold(kind)
        if self.peek.text == "where":
            raise self.fail("'where' clauses are not supported")
        return Rule(kind, column, condition, threshold)

    def column_name(self, kind: str) -> str:
        token = self.take()
        if token.kind != "string":
            raise self.fail(f'{kind} needs a column name in double quotes ("name")', token)
        name = _unquote(token.text)
        if not name.strip():
            raise self.fail(f"{kind} needs a non-empty column name", token)
        return name

    def threshold(self, kind: str) -> Condition:
        with_token = self.take()
        if kind not in _THRESHOLD_RULES:
            raise self.fail(f"'with threshold' is not supported on {kind}", with_token)
        self.expect("threshold", "'threshold' after 'with'")
        condition = self.condition("threshold")
        if any(isinstance(v, (int, float)) and not 0 <= v <= 1 for v in condition.values):
            raise self.fail("a threshold is a fraction of rows between 0 and 1", with_token)
        return condition

    def condition(self, kind: str) -> Condition:
        token = self.take()
        values_kind = "value" if kind == "ColumnValues" else "number"
        op = token.text
        if op == "not":
            following = self.take()
            if following.text not in ("between", "in"):
                raise self.fail("expected 'between' or 'in' after 'not'", following)
            op = f"not {following.text}"
        if op in COMPARISONS:
            return Condition(op, (self.literal(values_kind, allow_null=op in ("=", "!=")),))
        if op in ("between", "not between"):
            low = self.literal(values_kind)
            self.expect("and", "'and' in 'between <low> and <high>'")
            high = self.literal(values_kind)
            return Condition(op, (low, high))
        if op in ("in", "not in"):
            return Condition(op, self.literal_list(values_kind))
        if op == "matches" and kind == "ColumnValues":
            pattern_token = self.take()
            if pattern_token.kind != "string":
                raise self.fail(
                    "matches needs a regular expression in double quotes", pattern_token
                )
            pattern = _unquote(pattern_token.text)
            try:
                re.compile(pattern)
            except re.error as error:
                raise self.fail(f"invalid regular expression: {error}", pattern_token) from None
            return Condition("matches", (pattern,))
        allowed = (
            OPERATORS if kind == "ColumnValues" else tuple(o for o in OPERATORS if o != "matches")
        )
        shown = repr(op) if op else "the end"
        raise self.fail(f"bad operator {shown} for {kind} (allowed: {', '.join(allowed)})", token)

    def literal(
        self, values_kind: str, *, allow_null: bool = False, in_list: bool = False
    ) -> Literal:
        token = self.take()
        if token.kind == "number":
            number = float(token.text)
            return (
                int(number)
                if number.is_integer() and re.fullmatch(r"-?\d+", token.text)
                else number
            )
        if values_kind == "value":
            if token.kind == "string":
                return _unquote(token.text)
            if token.text == "NULL" and (allow_null or in_list):
                return NULL
            if token.text in ("EMPTY", "WHITESPACES_ONLY") and in_list:
                return Keyword(token.text)
            if token.text in _KEYWORDS:
                raise self.fail(
                    f"{token.text} is allowed only in 'in [...]' lists (and NULL after = or !=)",
                    token,
                )
        if token.kind == "op":
            raise self.fail(f"bad operator: {token.text!r} where a value belongs", token)
        if token.text in _DYNAMIC:
            raise self.fail(
                f"dynamic and date expressions ({token.text}(...)) are not supported", token
            )
        wanted = "a number" if values_kind == "number" else 'a number or a "string"'
        shown = repr(token.text) if token.text else "the end"
        raise self.fail(f"expected {wanted}, found {shown}", token)

    def literal_list(self, values_kind: str) -> tuple[Literal, ...]:
        self.expect("[", "'[' starting the list of values")
        values = [self.literal(values_kind, in_list=True)]
        while self.peek.text == ",":
            self.take()
            values.append(self.literal(values_kind, in_list=True))
        self.expect("]", "',' or ']' in the list of values")
        return tuple(values)


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def parse_ruleset(text: str) -> Ruleset:
    """Parse a DQDL ruleset in the supported subset; raises :class:`RulesetError` naming the
    rule and the position of the first problem."""
    if not isinstance(text, str):
        raise TypeError("a DQDL ruleset is a string")
    return _Parser(text).ruleset()


def rules_for_table(rulesets: Mapping[str, str], table: str) -> Optional[Ruleset]:
    """The rules of ``table`` from a ``--quality_rules`` mapping: those under ``"*"`` (every
    table) then the table's own; None when there are none."""
    rules: list[Rule] = []
    for key in dict.fromkeys((EVERY_TABLE, table)):
        if key in rulesets:
            rules.extend(parse_ruleset(rulesets[key]).rules)
    return Ruleset(tuple(rules)) if rules else None


EVERY_TABLE = contract.QUALITY_EVERY_TABLE
"""The ``--quality_rules`` key whose ruleset applies to every table ."""


def table_name_of(catalog_table: Optional[str], output_path: str) -> str:
    """A table's name for its rules: its catalog table, else the last folder of its path."""
    if catalog_table:
        return catalog_table
    return output_path.rstrip("/").rsplit("/", 1)[-1]


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class RuleResult:
    """A rule's outcome on one dataset: ``passed`` or ``failed``, with the value observed
    (the metric, or for a row rule the number of failing rows) and, when the rule could not
    be judged (a missing column), why."""

    rule: str
    outcome: str
    observed: Optional[Union[int, float]]
    failed_rows: int = 0
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome == PASSED


PASSED = "passed"
FAILED = "failed"

# ------------------------------------------------------------------ evaluation in Python


def value_passes(rule: Rule, value: Any) -> bool:
    """Whether one value passes a row rule (IsComplete, ColumnValues, ColumnLength), with
    DQDL's NULL semantics."""
    if rule.kind == "IsComplete":
        return value is not None
    condition = rule.condition
    assert condition is not None  # every row rule but IsComplete has an expression
    if rule.kind == "ColumnLength":
        return condition.holds(0 if value is None else len(str(value)))
    return _column_value_passes(condition, value)


def _matches_keyword(keyword: Keyword, value: Any) -> bool:
    if keyword == NULL:
        return value is None
    if keyword == EMPTY:
        return bool(value == "")
    return isinstance(value, str) and value != "" and value.strip() == ""


def _column_value_passes(condition: Condition, value: Any) -> bool:
    op, values = condition.op, condition.values
    if op in ("in", "not in"):
        listed = any(
            _matches_keyword(v, value) if isinstance(v, Keyword) else _equal(value, v)
            for v in values
        )
        if value is None and op == "not in":  # DQDL: not in lets NULL pass unless NULL is listed
            return NULL not in values
        return listed if op == "in" else not listed
    if values and values[0] == NULL:  # = NULL / != NULL
        return (value is None) == (op == "=")
    if value is None:  # DQDL: NULL fails every form but != and not in
        return op == "!="
    if op == "matches":
        return re.fullmatch(str(values[0]), str(value)) is not None
    if op in ("between", "not between"):
        low, at_low = _comparable(value, values[0])
        high, at_high = _comparable(value, values[1])
        inside = bool(at_low <= low and high <= at_high)
        return inside if op == "between" else not inside
    left, right = _comparable(value, values[0])
    return _compare(op, left, right)


def _comparable(value: Any, literal: Literal) -> tuple[Any, Any]:
    """A value and a literal as Spark compares them: numbers as numbers, else as text
    (a boolean as Spark writes it, ``true``/``false``)."""
    if isinstance(value, bool):
        return str(value).lower(), str(literal).lower()
    if isinstance(literal, (int, float)):
        try:
            return float(value), float(literal)
        except (TypeError, ValueError):
            return str(value), str(literal)
    return str(value), str(literal)


def _equal(value: Any, literal: Literal) -> bool:
    if value is None or isinstance(literal, Keyword):
        return False
    left, right = _comparable(value, literal)
    return bool(left == right)


def evaluate(
    ruleset: Ruleset, rows: Sequence[Mapping[str, Any]], columns: Optional[Iterable[str]] = None
) -> list[RuleResult]:
    """Every rule of ``ruleset`` on ``rows`` (dicts of column -> value, None for NULL), in
    Python: the reference the job's Spark evaluation is tested against. ``columns`` (default:
    the keys of the rows) is what ColumnExists looks for. Dataset rules see every row."""
    present = set(columns) if columns is not None else {k for row in rows for k in row}
    return [_evaluate_rule(rule, rows, present) for rule in ruleset.rules]


def _evaluate_rule(rule: Rule, rows: Sequence[Mapping[str, Any]], present: set[str]) -> RuleResult:
    if rule.kind == "RowCount":
        return _judged(rule, len(rows))
    column = str(rule.column)
    if rule.kind == "ColumnExists":
        return RuleResult(str(rule), PASSED if column in present else FAILED, None)
    if column not in present:
        return RuleResult(str(rule), FAILED, None, reason=f"no column {column!r}")
    values = [row.get(column) for row in rows]
    if RULE_TYPES[rule.kind] == "row":
        failing = sum(not value_passes(rule, v) for v in values)
        if rule.threshold is not None:
            fraction = 1.0 - failing / len(values) if values else 1.0
            outcome = PASSED if rule.threshold.holds(fraction) else FAILED
            return RuleResult(str(rule), outcome, fraction, failed_rows=failing)
        return RuleResult(str(rule), FAILED if failing else PASSED, failing, failed_rows=failing)
    return _judged(rule, dataset_metric(rule.kind, values))


def dataset_metric(kind: str, values: Sequence[Any]) -> Optional[float]:
    """A dataset rule's metric over a column's values (None for NULL), per the semantics in
    :data:`RULE_TYPES`."""
    present = [v for v in values if v is not None]
    if kind == "Completeness":
        return len(present) / len(values) if values else 1.0
    if kind in ("IsUnique", "Uniqueness"):
        if not values:
            return 1.0
        if kind == "IsUnique":
            return len(set(present)) / len(values)
        counts = Counter(present)
        return sum(1 for n in counts.values() if n == 1) / len(values)
    if kind == "DistinctValuesCount":
        return len(set(present))
    numbers = [float(v) for v in present]
    if kind == "Sum":
        return sum(numbers)
    if not numbers:
        return None
    if kind == "Mean":
        return statistics.fmean(numbers)
    return statistics.pstdev(numbers)


def _judged(rule: Rule, observed: Optional[float]) -> RuleResult:
    if rule.kind == "IsUnique":
        passed = observed == 1.0
    else:
        assert rule.condition is not None
        passed = rule.condition.holds(observed)
    return RuleResult(str(rule), PASSED if passed else FAILED, _plain(observed))


def _plain(number: Optional[float]) -> Optional[Union[int, float]]:
    """An observed number as JSON shows it best: whole numbers as ints."""
    if number is None or (isinstance(number, float) and math.isnan(number)):
        return None
    if float(number).is_integer() and abs(number) < 2**53:
        return int(number)
    return float(number)


def judged(rule: Rule, observed: Optional[float]) -> RuleResult:
    """The outcome of a dataset rule (or a row rule with a threshold) given its metric."""
    if rule.threshold is not None:
        outcome = PASSED if rule.threshold.holds(observed) else FAILED
        return RuleResult(str(rule), outcome, _plain(observed))
    return _judged(rule, observed)


# ------------------------------------------------------------------ Spark SQL


def sql_string(text: str) -> str:
    """A Spark SQL string literal (its parser reads backslash escapes)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _sql_literal(value: Literal) -> str:
    if isinstance(value, str):
        return sql_string(value)
    return repr(value) if isinstance(value, int) else f"{value!r}D"


def row_check_sql(rule: Rule, column_sql: str) -> str:
    """SQL: true when a row passes the row rule (never NULL), the column given as
    ``column_sql`` (a quoted identifier)."""
    c = column_sql
    if rule.kind == "IsComplete":
        return f"({c} IS NOT NULL)"
    condition = rule.condition
    assert condition is not None
    if rule.kind == "ColumnLength":
        return f"coalesce({_condition_sql(condition, f'coalesce(length({c}), 0)')}, false)"
    return f"coalesce({_column_values_sql(condition, c)}, false)"


def _condition_sql(condition: Condition, ref: str) -> str:
    op, values = condition.op, condition.values
    if op in ("between", "not between"):
        inside = f"({ref} BETWEEN {_sql_literal(values[0])} AND {_sql_literal(values[1])})"
        return inside if op == "between" else f"(NOT {inside})"
    if op in ("in", "not in"):
        listed = ", ".join(_sql_literal(v) for v in values if not isinstance(v, Keyword))
        found = f"({ref} IN ({listed}))" if listed else "false"
        return found if op == "in" else f"(NOT {found})"
    sql_op = "<>" if op == "!=" else op
    return f"({ref} {sql_op} {_sql_literal(values[0])})"


def _column_values_sql(condition: Condition, c: str) -> str:
    op, values = condition.op, condition.values
    if op in ("in", "not in"):
        plain = [v for v in values if not isinstance(v, Keyword)]
        tests = [f"{c} IN ({', '.join(_sql_literal(v) for v in plain)})"] if plain else []
        if EMPTY in values:
            tests.append(f"CAST({c} AS STRING) = ''")
        if WHITESPACES_ONLY in values:
            tests.append(f"(CAST({c} AS STRING) <> '' AND trim(CAST({c} AS STRING)) = '')")
        listed = f"coalesce({' OR '.join(tests) or 'false'}, false)"
        if op == "in":
            return (
                f"({c} IS NULL AND {str(NULL in values).lower()} OR {c} IS NOT NULL AND {listed})"
            )
        allow_null = str(NULL not in values).lower()
        return f"({c} IS NULL AND {allow_null} OR {c} IS NOT NULL AND NOT {listed})"
    if values and values[0] == NULL:
        return f"({c} IS NULL)" if op == "=" else f"({c} IS NOT NULL)"
    if op == "matches":
        # Java regular expressions; the whole value must match, as re.fullmatch in Python.
        pattern = sql_string(f"^(?:{values[0]})$")
        return f"({c} IS NOT NULL AND CAST({c} AS STRING) RLIKE {pattern})"
    if op == "!=":
        return f"({c} IS NULL OR {_condition_sql(condition, c)})"
    return f"({c} IS NOT NULL AND {_condition_sql(condition, c)})"


def metric_sql(kind: str, column_sql: str) -> str:
    """SQL aggregate of a dataset rule's metric (Uniqueness needs a grouping of its own:
    see ``quality_gate``)."""
    c = column_sql
    if kind == "RowCount":
        return "count(1)"
    if kind == "Completeness":
        return f"CASE WHEN count(1) = 0 THEN 1.0D ELSE count({c}) / count(1) END"
    if kind == "IsUnique":
        return f"CASE WHEN count(1) = 0 THEN 1.0D ELSE count(DISTINCT {c}) / count(1) END"
    if kind == "DistinctValuesCount":
        return f"count(DISTINCT {c})"
    if kind == "Mean":
        return f"avg(CAST({c} AS DOUBLE))"
    if kind == "Sum":
        return f"coalesce(sum(CAST({c} AS DOUBLE)), 0.0D)"
    if kind == "StandardDeviation":
        return f"stddev_pop(CAST({c} AS DOUBLE))"
    raise ValueError(f"{kind} has no single aggregate")

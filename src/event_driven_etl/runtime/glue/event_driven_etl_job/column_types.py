"""The typing rule: which table types a value represents exactly, and how a column is cast.

A column gets the most specific type every present value represents exactly (``181.0`` is a
bigint, ``2026-11-25`` a date), the same for CSV as for JSON; the null tokens are missing in
every column. Types meet in one least type whatever the values' order (see ``FITS_MASK``).
"""

from __future__ import annotations

from typing import Any, Optional

from pyspark.sql import types as T
from pyspark.sql.types import DataType

NULL_TOKENS = ("", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "#N/A", "<NA>")
"""A text value that is one of these (trimmed, spelled exactly so: ``none`` is a word) is
missing, in every column, as pandas reads them: so a column's values, and whether it has any,
never depend on the type it gets."""


# The regular expressions gate Spark's casts, which are lenient ("2020" casts to a timestamp,
# "007" to 7: zero-padded codes stay strings here).
# Up to 18 digits (always fits a bigint), maybe with a zero fraction (pandas writes integers
# with gaps as 181.0): a bigint.
_BIGINT = r"^[+-]?(0|[1-9][0-9]{0,17})(\.0*)?$"
_DECIMAL = r"^[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIMESTAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
)

TYPE_ORDER = ("bigint", "double", "boolean", "date", "timestamp")
"""The types a column can be inferred as, most specific first (else ``string``)."""
_BIT = {name: 1 << index for index, name in enumerate(TYPE_ORDER)}
FITS_MASK = {
    "bigint": _BIT["bigint"] | _BIT["double"],
    "double": _BIT["double"],
    "boolean": _BIT["boolean"],
    "date": _BIT["date"] | _BIT["timestamp"],
    "timestamp": _BIT["timestamp"],
}
"""A value's type -> the table types that represent it exactly (as bits; ``string`` holds
everything). These sets are chains (bigint < double, date < timestamp, boolean), so the
types of any set of values meet in one least type whatever their order: the typing rule is
order-independent."""


def sql_text(text: str) -> str:
    """A Spark SQL string literal of ``text`` (its parser reads backslash escapes)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# The checks and casts are Spark SQL text, one string per column: the driver hands Spark all
# of a wide file's columns in one call instead of one call per operator and literal.
_NULL_TOKEN_LIST = ", ".join(sql_text(token) for token in NULL_TOKENS)


def is_null_token(ref: str) -> str:
    """SQL: whether the text in ``ref`` (an identifier or expression) is a null token."""
    return f"(trim({ref}) IN ({_NULL_TOKEN_LIST}))"


def text_value(ref: str) -> str:
    """SQL: a text value trimmed, with the null tokens as null (how typed columns read text)."""
    return f"(CASE WHEN {is_null_token(ref)} THEN NULL ELSE trim({ref}) END)"


def _text_mask(value: str) -> str:
    """SQL: the ``FITS_MASK`` of one text value as :func:`text_value` gives it: one pass of
    cheap tests, most first (a word fails every pattern on its first character), null for
    a missing value."""
    # The patterns admit days that do not exist (2026-02-30): Spark's cast decides.
    return (
        f"(CASE WHEN {value} IS NULL THEN NULL"
        f" WHEN {value} RLIKE {sql_text(_BIGINT)} THEN {FITS_MASK['bigint']}"
        f" WHEN {value} RLIKE {sql_text(_DECIMAL)} THEN {FITS_MASK['double']}"
        f" WHEN lower({value}) IN ('true', 'false') THEN {FITS_MASK['boolean']}"
        f" WHEN {value} RLIKE {sql_text(_DATE)} AND CAST({value} AS DATE) IS NOT NULL"
        f" THEN {FITS_MASK['date']}"
        f" WHEN {value} RLIKE {sql_text(_TIMESTAMP)} AND CAST({value} AS TIMESTAMP) IS NOT NULL"
        f" THEN {FITS_MASK['timestamp']}"
        " ELSE 0 END)"
    )


def profiled_value(ref: str, data_type: DataType) -> str:
    """SQL: what the profile classifies: a text value as :func:`text_value` gives it
    (computed once per value, then tested by :func:`value_mask`), any other value as it is."""
    return text_value(ref) if isinstance(data_type, T.StringType) else ref


def value_mask(value: str, data_type: DataType, text_format: bool) -> Optional[str]:
    """SQL: the ``FITS_MASK`` of a value read as ``data_type`` (None: not an inferred type),
    given as :func:`profiled_value` gives it; null for a missing value."""
    if isinstance(data_type, T.StringType):
        return _text_mask(value)
    name = spark_type_name(data_type)
    if name == "double" and text_format:  # Parquet's declared double stays a double
        # A whole number written as a float (JSON 181.0) is that integer, exactly.
        return (
            f"(CASE WHEN {value} IS NULL THEN NULL"
            f" WHEN NOT isnan({value}) AND abs({value}) < {2**53}D AND {value} = floor({value})"
            f" THEN {FITS_MASK['bigint']} ELSE {FITS_MASK['double']} END)"
        )
    if name in FITS_MASK:
        return f"(CASE WHEN {value} IS NULL THEN NULL ELSE {FITS_MASK[name]} END)"
    return None


def spark_type_name(data_type: DataType) -> str:
    """The table type of a column read with ``data_type`` (integers widen to ``bigint``)."""
    if isinstance(data_type, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return "bigint"
    if isinstance(data_type, (T.FloatType, T.DoubleType)):
        return "double"
    if isinstance(data_type, T.TimestampNTZType):
        return "timestamp"
    return str(data_type.simpleString())


def mask_type(mask: int) -> str:
    """The most specific type that represents every value of a ``FITS_MASK`` meet."""
    return next((name for name in TYPE_ORDER if mask & _BIT[name]), "string")


def join_types(left: str, right: str) -> str:
    """The least type both types fit: equal, widened (bigint -> double, date -> timestamp),
    or ``string``."""
    if left == right:
        return left
    if left in FITS_MASK and right in FITS_MASK:
        return mask_type(FITS_MASK[left] & FITS_MASK[right])
    return "string"


def fits(source: str, target: str, mask: Optional[int]) -> bool:
    """Whether values read as ``source`` (with the ``FITS_MASK`` meet ``mask`` of those
    present, where the source is an inferred type) land in the table's ``target`` type
    exactly."""
    if target in ("string", source):
        return True
    if mask is not None and target in _BIT:
        return bool(mask & _BIT[target])
    return join_types(source, target) == target


def column_type(data_type: DataType, mask: Optional[int]) -> str:
    """The type a column's present values give it in one object."""
    return mask_type(mask) if mask is not None else spark_type_name(data_type)


def cast_to(ref: str, source: Any, target: str) -> str:
    """SQL: ``ref`` (read as ``source``) as the table's ``target`` type."""
    if isinstance(source, T.StringType):
        if target == "string":  # verbatim, but a null token is missing here too
            return f"(CASE WHEN {is_null_token(ref)} THEN NULL ELSE {ref} END)"
        value = text_value(ref)
        if target == "bigint":  # 181.0 is 181: drop the zero fraction, then an exact cast
            return f"CAST(regexp_replace({value}, {sql_text(chr(92) + '.0*$')}, '') AS BIGINT)"
        return f"CAST({value} AS {target})"
    if target == "string" and isinstance(source, (T.StructType, T.ArrayType, T.MapType)):
        return f"to_json({ref})"
    return f"CAST({ref} AS {target})"

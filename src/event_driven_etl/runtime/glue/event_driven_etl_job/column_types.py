"""The typing rule: which table types a value represents exactly, and how a column is cast.

A column gets the most specific type every present value represents exactly (``181.0`` is a
bigint, ``2026-11-25`` a date), the same for CSV as for JSON; the null tokens are missing in
every column. Types meet in one least type whatever the values' order (see ``FITS_MASK``).
"""

from __future__ import annotations

from typing import Any, Optional

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.types import DataType

NULL_TOKENS = ("", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "#N/A", "<NA>")
"""A text value that is one of these (trimmed, spelled exactly so: ``none`` is a word) is
missing, in every column, as pandas reads them: so a column's values, and whether it has any,
never depend on the type it gets."""


# The regular expressions gate Spark's casts, which are lenient ("2020" casts to a timestamp,
# "007" to 7: zero-padded codes stay strings here).
_INTEGER = r"^[+-]?(0|[1-9][0-9]{0,17})$"  # up to 18 digits: always fits a bigint
_WHOLE = r"^[+-]?(0|[1-9][0-9]{0,17})\.0*$"  # 181.0 (pandas' integers with gaps): a bigint
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


def is_null_token(column: Column) -> Column:
    return F.trim(column).isin(*NULL_TOKENS)


def text_value(column: Column) -> Column:
    """A text value trimmed, with the null tokens as null (how typed columns read text)."""
    trimmed = F.trim(column)
    return F.when(trimmed.isin(*NULL_TOKENS), F.lit(None)).otherwise(trimmed)


def _text_mask(value: Column) -> Column:
    """The ``FITS_MASK`` of one trimmed text value: one pass of cheap tests, most first
    (a word fails every pattern on its first character), null for a missing value."""
    return (
        F.when(value.isNull(), F.lit(None))
        .when(value.rlike(_INTEGER) | value.rlike(_WHOLE), F.lit(FITS_MASK["bigint"]))
        .when(value.rlike(_DECIMAL), F.lit(FITS_MASK["double"]))
        .when(F.lower(value).isin("true", "false"), F.lit(FITS_MASK["boolean"]))
        # The patterns admit days that do not exist (2026-02-30): Spark's cast decides.
        .when(value.rlike(_DATE) & value.cast("date").isNotNull(), F.lit(FITS_MASK["date"]))
        .when(
            value.rlike(_TIMESTAMP) & value.cast("timestamp").isNotNull(),
            F.lit(FITS_MASK["timestamp"]),
        )
        .otherwise(F.lit(0))
    )


def value_mask(column: Column, data_type: DataType, text_format: bool) -> Optional[Column]:
    """The ``FITS_MASK`` of a value read as ``data_type`` (None: not an inferred type)."""
    if isinstance(data_type, T.StringType):
        return _text_mask(text_value(column))
    name = spark_type_name(data_type)
    if name == "double" and text_format:  # Parquet's declared double stays a double
        # A whole number written as a float (JSON 181.0) is that integer, exactly.
        whole = ~F.isnan(column) & (F.abs(column) < 2.0**53) & (column == F.floor(column))
        return (
            F.when(column.isNull(), F.lit(None))
            .when(whole, F.lit(FITS_MASK["bigint"]))
            .otherwise(F.lit(FITS_MASK["double"]))
        )
    if name in FITS_MASK:
        return F.lit(FITS_MASK[name])
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


def cast_to(column: Column, source: Any, target: str) -> Column:
    """``column`` (read as ``source``) as the table's ``target`` type."""
    if isinstance(source, T.StringType):
        if target == "string":  # verbatim, but a null token is missing here too
            return F.when(is_null_token(column), F.lit(None)).otherwise(column)
        value = text_value(column)
        if target == "bigint":  # 181.0 is 181: drop the zero fraction, then an exact cast
            return F.regexp_replace(value, r"\.0*$", "").cast("bigint")
        return value.cast(target)
    if target == "string" and isinstance(source, (T.StructType, T.ArrayType, T.MapType)):
        return F.to_json(column)
    return column.cast(target)

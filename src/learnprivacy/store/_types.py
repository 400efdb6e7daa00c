"""Column types whose values survive the round trip exactly on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["UTC", "ExactDecimal", "from_utc", "to_utc"]

UTC = dt.UTC


class ExactDecimal(TypeDecorator[Decimal]):
    """A ``Decimal`` stored without rounding: ``NUMERIC`` on PostgreSQL, text on SQLite.

    SQLite has no decimal type: its ``NUMERIC`` affinity turns ``"12.50"`` into the float
    12.5, which loses the scale and, for large amounts, digits. Text keeps the exact value;
    SQL arithmetic on SQLite then needs ``CAST(... AS REAL)``, which statistics may accept.
    """

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """``NUMERIC`` where the database has an exact decimal type, else text."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        """The value as the database takes it."""
        if value is None:
            return None
        return value if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """Back to ``Decimal``."""
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


def to_utc(value: dt.datetime) -> dt.datetime:
    """The naive UTC form the store keeps (columns are ``TIMESTAMP WITHOUT TIME ZONE``).

    Every column holds UTC, so SQL comparisons against a cutoff are exact whatever offset
    the record was created with.
    """
    offset = value.utcoffset()
    if offset is None:
        # Records refuse naive datetimes already; this guards direct callers.
        from learnprivacy.errors import ValidationError

        raise ValidationError("naive datetime refused", field="datetime")
    moved = value - offset
    # moved.replace(tzinfo=None) (the same fields and fold), several times cheaper:
    # replace parses keyword arguments on every call.
    return _combine(moved, moved.time())


def from_utc(value: dt.datetime) -> dt.datetime:
    """An aware UTC datetime from a stored naive one."""
    return _combine(value, value.time(), UTC)


_combine = dt.datetime.combine

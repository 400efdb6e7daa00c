"""Rows by key in SQL: one key column or several, the same way everywhere.

A row's key is its one value, or the tuple of its values for a primary key of several
columns (``ModelSpec.key_of``). These helpers turn keys into conditions (``IN``, ``=``,
``>`` for paging in key order) and compute in SQL the same text as
:func:`~learnprivacy._inplace.row_key`, so a condition on the row states (restricted,
anonymised) joins a table of either kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, cast, func, literal, tuple_

from learnprivacy._inplace import ModelSpec
from learnprivacy.errors import ConfigurationError

__all__ = [
    "check_key_types",
    "identity",
    "key_after",
    "key_columns",
    "key_in",
    "key_is",
    "key_text",
]


def key_columns(spec: ModelSpec) -> list[Any]:
    """The table columns of ``spec``'s key, in key order."""
    table = spec.model.__table__
    return [table.c[name] for name in spec.key_columns]


def key_in(spec: ModelSpec, keys: Sequence[Any]) -> ColumnElement[bool]:
    """Rows whose key is one of ``keys``."""
    columns = key_columns(spec)
    if not spec.composite:
        condition: ColumnElement[bool] = columns[0].in_(keys)
        return condition
    return tuple_(*columns).in_([tuple(key) for key in keys])


def key_is(spec: ModelSpec, key: Any) -> ColumnElement[bool]:
    """The row whose key is ``key``."""
    columns = key_columns(spec)
    if not spec.composite:
        condition: ColumnElement[bool] = columns[0] == key
        return condition
    return tuple_(*columns) == tuple_(
        *[literal(part, c.type) for c, part in zip(columns, key, strict=True)]
    )


def key_after(spec: ModelSpec, last: Any) -> ColumnElement[bool]:
    """Rows after ``last`` in key order (paging that resumes where it stopped)."""
    columns = key_columns(spec)
    if not spec.composite:
        condition: ColumnElement[bool] = columns[0] > last
        return condition
    return tuple_(*columns) > tuple_(
        *[literal(part, c.type) for c, part in zip(columns, last, strict=True)]
    )


def _textual(column: Any) -> Any:
    try:
        if column.type.python_type is str:
            return column
    except NotImplementedError:
        pass
    return cast(column, String)


def key_text(spec: ModelSpec) -> Any:
    """The SQL expression of a row's key text, equal to ``row_key`` of its key."""
    parts = [_textual(column) for column in key_columns(spec)]
    if not spec.composite:
        return parts[0]
    expression: Any = None
    for part in parts:
        piece = cast(func.length(part), String).concat(":").concat(part)
        expression = piece if expression is None else expression.concat(",").concat(piece)
    return expression


def identity(spec: ModelSpec, key: Any) -> tuple[Any, ...]:
    """The primary-key tuple the ORM's identity map knows the row by."""
    return tuple(key) if spec.composite else (key,)


def check_key_types(spec: ModelSpec) -> None:
    """A key of several columns is bound as text computed both in Python and in SQL: its
    parts must be text or integers, whose text is the same on both sides."""
    if not spec.composite:
        return
    for column in key_columns(spec):
        try:
            python_type = column.type.python_type
        except NotImplementedError:
            python_type = None
        if python_type not in (str, int):
            raise ConfigurationError(
                f"{spec.table}.{column.name}: the columns of a primary key of several "
                "columns must be text or integers"
            )

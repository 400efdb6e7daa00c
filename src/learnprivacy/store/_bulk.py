"""Bulk inserts without per-row ORM or Core overhead.

On SQLite, a Core ``insert()`` with a list of dicts still runs SQLAlchemy's parameter
processing for every value of every row, which costs more than the encryption of the
row. The statement is compiled once here and handed to the driver's ``executemany``
with tuples, the values converted by precomputed per-column functions into exactly what
SQLAlchemy itself would store (the same text form for timestamps and decimals), so rows
written either way read back the same. On PostgreSQL (psycopg), the rows go through
``COPY ... FROM STDIN`` in the same transaction, the values through SQLAlchemy's own
bind processors: no statement per row. Tables with column defaults, and other drivers,
keep SQLAlchemy's ``insert()``.

Bulk reads, likewise, can take rows straight from the driver's cursor
(:func:`cursor_rows`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    ColumnElement,
    Connection,
    CursorResult,
    DateTime,
    Executable,
    String,
    Table,
    any_,
    bindparam,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.exc import DBAPIError

from learnprivacy.store._types import ExactDecimal

__all__ = [
    "bulk_insert",
    "bulk_insert_values",
    "cursor_rows",
    "driver_rows",
    "ids_in",
    "insert_plan",
]

_Convert = Callable[[Any], Any]


def _sqlite_datetime(value: dt.datetime) -> str:
    # SQLAlchemy's SQLite DATETIME storage format (the wall time, any offset left out),
    # so both paths read back alike: isoformat gives it at a fifth of the cost of
    # formatting each part. The store writes naive UTC datetimes, whose isoformat is
    # exactly these 26 characters (the slice returns the same string); an aware one
    # would add its offset after them.
    return value.isoformat(" ", "microseconds")[:26]


def _sqlite_decimal(value: Decimal) -> str:
    return str(value)


def _sqlite_bool(value: bool) -> int:
    return 1 if value else 0


def _converter(column_type: Any) -> _Convert | None:
    if isinstance(column_type, DateTime):
        return _sqlite_datetime
    if isinstance(column_type, ExactDecimal):
        return _sqlite_decimal
    if isinstance(column_type, Boolean):
        return _sqlite_bool
    return None


_Plan = tuple[str, list[str], list[_Convert | None]]
_PLANS: dict[tuple[int, str], _Plan | None] = {}


def _plan(connection: Connection, table: Table) -> _Plan | None:
    """The statement text, column names and per-column conversions of a bulk insert into
    ``table``, or ``None`` where SQLAlchemy's own ``insert()`` is used instead."""
    dialect = connection.dialect
    key = (id(table), dialect.name)
    if key in _PLANS:
        return _PLANS[key]
    names = [c.name for c in table.columns]
    plan: _Plan | None = None
    if dialect.name == "sqlite":
        compiled = insert(table).compile(dialect=dialect, column_keys=names)
        plan = (str(compiled), names, [_converter(c.type) for c in table.columns])
    elif (
        dialect.name == "postgresql"
        and dialect.driver == "psycopg"
        and table.autoincrement_column is None
        and all(c.default is None and c.server_default is None for c in table.columns)
    ):
        # COPY: the rows stream to the server in psycopg's text format, without a
        # statement per row, each value through the bind processor SQLAlchemy itself
        # would apply; every column is listed, a missing value being NULL, which is what
        # SQLAlchemy's insert() leaves a column without a default.
        quote = dialect.identifier_preparer
        columns = ", ".join(quote.format_column(c) for c in table.columns)
        sql = f"COPY {quote.format_table(table)} ({columns}) FROM STDIN"
        converters: list[_Convert | None] = [
            c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.columns
        ]
        plan = (sql, names, converters)
    _PLANS[key] = plan
    return plan


def insert_plan(
    connection: Connection, table: Table
) -> tuple[list[str], list[_Convert | None]] | None:
    """The columns of ``table`` (in order) and each one's conversion to the driver's form
    (``None``: the value as it is) for :func:`bulk_insert_values`; ``None`` where the
    rows go through SQLAlchemy's ``insert()`` (:func:`bulk_insert` only)."""
    plan = _plan(connection, table)
    return None if plan is None else (plan[1], plan[2])


def bulk_insert(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts keyed by column name; missing keys are NULL) into ``table``."""
    if not rows:
        return
    plan = _plan(connection, table)
    if plan is None:
        connection.execute(insert(table), list(rows))
        return
    _, names, converters = plan
    # Each row's values in column order in one C-level pass, then the few columns with
    # a conversion converted in place.
    converted = [(at, convert) for at, convert in enumerate(converters) if convert is not None]
    tuples = []
    for row in rows:
        values = list(map(row.get, names))
        for at, convert in converted:
            value = values[at]
            if value is not None:
                values[at] = convert(value)
        tuples.append(tuple(values))
    bulk_insert_values(connection, table, tuples)


def bulk_insert_values(
    connection: Connection, table: Table, rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` into ``table``: each the values of every column of
    :func:`insert_plan`, in its order, already in the driver's form. Only for a table
    and connection that have a plan."""
    if not rows:
        return
    plan = _plan(connection, table)
    if plan is None:
        raise ValueError("rows of values need an insert plan; use bulk_insert")
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(plan[0], list(rows))
    else:
        _copy_in(connection, plan[0], rows)


def _copy_in(connection: Connection, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``rows`` through psycopg's ``COPY ... FROM STDIN``, in the connection's transaction.

    A database error is raised as SQLAlchemy raises the driver's errors (its
    ``IntegrityError`` for a duplicate key...), so callers handle both paths alike.
    """
    dbapi_connection: Any = connection.connection.dbapi_connection
    dbapi = connection.dialect.loaded_dbapi
    try:
        with dbapi_connection.cursor() as cursor, cursor.copy(statement) as copy:
            write = copy.write_row
            for values in rows:
                write(values)
    except dbapi.Error as error:
        raise DBAPIError.instance(statement, None, error, dbapi.Error) from error


def driver_rows(connection: Connection, query: Executable) -> list[Any]:
    """The rows of ``query`` as the driver returns them (tuples): for columns whose
    driver values are already what the caller wants (text, bytes), read in bulk."""
    return cursor_rows(connection.execute(query))


def cursor_rows(result: CursorResult[Any]) -> list[Any]:
    """Every row of ``result`` taken from the driver's cursor, without SQLAlchemy's
    ``Row`` objects or result processing; the result is closed.

    SQLAlchemy still compiled (from its cache) and bound the statement.
    """
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def ids_in(column: ColumnElement[Any], values: Sequence[str], dialect: str) -> ColumnElement[bool]:
    """``column IN values`` as one bound parameter, whatever the number of values.

    A plain ``IN (...)`` renders one parameter per value, so each batch size is a new
    statement to compile and the compiler's work grows with the list. SQLite reads the
    values from a JSON array (``json_each``), PostgreSQL from an array (``= ANY``): the
    statement text never changes and stays in SQLAlchemy's and the database's caches.
    """
    if dialect == "postgresql":
        param = bindparam("ids", list(values), type_=ARRAY(String()), unique=True)
        return column == any_(param)
    if dialect == "sqlite":
        array = json.dumps(list(values))
        param = bindparam("ids", array, type_=String(), unique=True)
        return column.in_(select(literal_column("value")).select_from(func.json_each(param)))
    return column.in_(list(values))

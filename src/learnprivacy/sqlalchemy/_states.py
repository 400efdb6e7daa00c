"""Row states by keyed reference, in Python and in SQL (see ``_inplace._refs``).

- :func:`ref_sql`: the SQL expression of a row's reference, equal to
  :meth:`RowRefs.ref` of its key: PostgreSQL computes it with its own ``sha256``;
  SQLite with ``lp_row_ref``, a function this module gives every SQLite connection;
- :func:`prepare`: a connection the integration writes through gets that function and,
  on SQLite, ``secure_delete`` (a deleted row's bytes are zeroed, not left in free pages);
- :func:`convert`: a row-states table written before references (row keys in clear) is
  converted when the binding opens, in the caller's transaction, and marked converted in
  ``lp_formats`` (a converted table is told by that mark, never by a key's shape).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    Connection,
    LargeBinary,
    String,
    delete,
    event,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import Pool
from sqlalchemy.sql.functions import GenericFunction

from learnprivacy._inplace import ModelSpec
from learnprivacy._inplace._refs import RowRefs, is_row_ref, pads_digest
from learnprivacy.sqlalchemy._rowkeys import key_columns, key_text

__all__ = ["convert", "names_row", "prepare", "ref_sql"]

_FUNCTION = "lp_row_ref"


class _RowRef(GenericFunction[str]):
    """``lp_row_ref(head, outer_pad, key_text)``: a row reference in SQL (SQLite
    calls the function this module registers; PostgreSQL's form is below)."""

    type = String()
    name = _FUNCTION
    inherit_cache = True


@compiles(_RowRef, "postgresql")
def _postgresql(element: _RowRef, compiler: Any, **kw: Any) -> str:
    head, outer, key = (compiler.process(c, **kw) for c in element.clauses)
    digest = f"sha256({outer} || sha256({head} || convert_to({key}, 'UTF8')))"
    encoded = f"encode(substring({digest} from 1 for 16), 'base64')"
    return f"('p1_' || rtrim(translate({encoded}, '+/', '-_'), '='))"


def ref_sql(refs: RowRefs, spec: ModelSpec) -> Any:
    """The SQL expression of the reference of a row of ``spec``'s table."""
    return _RowRef(
        literal(refs.head(spec.table), LargeBinary),
        literal(refs.outer_pad, LargeBinary),
        key_text(spec),
    )


def names_row(states: Any, refs: RowRefs, spec: ModelSpec) -> Any:
    """The condition that a row state names the row of ``spec``'s table in SQL: by
    reference, or by its key in clear while a table written before references has not
    been converted yet (the first call through the binding converts it)."""
    return states.c.row_key.in_([ref_sql(refs, spec), key_text(spec)])


def _add_function(dbapi_connection: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function(_FUNCTION, 3, _digest, deterministic=True)


def _digest(head: bytes, outer: bytes, key: object) -> str | None:
    if key is None:
        return None
    return pads_digest(bytes(head), bytes(outer), str(key))


@event.listens_for(Pool, "connect")
def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    _add_function(dbapi_connection)


def prepare(connection: Connection) -> None:
    """Give ``connection`` what the row states need (see the module's docstring)."""
    if connection.dialect.name != "sqlite":
        return
    dbapi_connection = connection.connection.dbapi_connection
    _add_function(dbapi_connection)
    connection.exec_driver_sql("PRAGMA secure_delete = ON")


#: The mark, in ``lp_formats``, of a row-states table whose rows all name rows by
#: reference (written by the conversion, or when the table is first used empty).
BY_REFERENCE = "references"


def _clear_but_shaped(connection: Connection, spec: ModelSpec | None, keys: list[str]) -> set[str]:
    """Which of ``keys`` (shaped like references) are keys of rows of ``spec``'s table
    written in clear: a one-column text key that is itself a ``p1_...`` string."""
    if spec is None or spec.composite or not keys:
        return set()
    (column,) = key_columns(spec)
    try:
        textual = column.type.python_type is str
    except NotImplementedError:
        textual = False
    if not textual:
        return set()
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found.update(str(k) for (k,) in connection.execute(select(column).where(column.in_(chunk))))
    return found


def convert(
    connection: Connection,
    side: Any,
    refs: RowRefs,
    specs: Mapping[str, ModelSpec],
    *,
    batch_size: int = 500,
) -> int | None:
    """Make ``side.states`` name every row by reference and mark it so in
    ``side.formats``; how many row states were converted, None if it was marked.

    The mark, not a value's shape, tells a converted table: before it, every key is
    read as written in clear, except one shaped like a reference (``p1_`` and 22
    characters) that is no key of a row of its table (``specs``, the bound tables by
    name), which a version writing references without the mark wrote. A state already
    there by reference wins over a converted one. All in the caller's transaction: a
    process killed half-way leaves the table as it was."""
    formats, states = side.formats, side.states
    marked = connection.execute(
        select(formats.c.format).where(formats.c.name == states.name)
    ).scalar()
    if marked == BY_REFERENCE:
        return None
    column = states.c.row_key
    every = connection.execute(select(states.c.table_name, column)).all()
    shaped: dict[str, list[str]] = {}
    for table_name, key in every:
        if is_row_ref(str(key)):
            shaped.setdefault(str(table_name), []).append(str(key))
    clear_shaped = {
        table_name: _clear_but_shaped(connection, specs.get(table_name), keys)
        for table_name, keys in shaped.items()
    }
    pending = {
        (str(t), str(k))
        for t, k in every
        if not is_row_ref(str(k)) or str(k) in clear_shaped.get(str(t), ())
    }
    if pending:
        _rewrite(connection, states, refs, pending, batch_size)
    values = {"name": states.name, "format": BY_REFERENCE}
    if marked is None:
        connection.execute(insert(formats).values(values))
    else:
        connection.execute(update(formats).where(formats.c.name == states.name).values(values))
    return len(pending)


def _rewrite(
    connection: Connection,
    states: Any,
    refs: RowRefs,
    pending: set[tuple[str, str]],
    batch_size: int,
) -> None:
    """Write the table again, every ``pending`` key by its reference. All its rows are
    deleted first (on SQLite, ``secure_delete`` then zeroes every page the table and its
    index had, with the bytes earlier page splits left behind), then inserted."""
    rows = [dict(row._mapping) for row in connection.execute(select(states))]
    by_ref = {
        (r["table_name"], r["row_key"])
        for r in rows
        if (r["table_name"], r["row_key"]) not in pending
    }
    written: list[dict[str, Any]] = []
    for row in rows:
        place = (row["table_name"], row["row_key"])
        if place in pending:
            row["row_key"] = refs.of_text(*place)
            if (row["table_name"], row["row_key"]) in by_ref:
                continue  # a state already there by reference wins
        written.append(row)
    connection.execute(delete(states))
    for start in range(0, len(written), batch_size):
        _insert_batch(connection, states, written[start : start + batch_size])


def _insert_batch(connection: Connection, states: Any, rows: list[dict[str, Any]]) -> None:
    connection.execute(insert(states), rows)

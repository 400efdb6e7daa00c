"""Row states by keyed reference, in Python and in SQL (see ``_inplace._refs``).

- :func:`ref_sql`: the SQL expression of a row's reference, equal to
  :meth:`RowRefs.ref` of its key: PostgreSQL computes it with its own ``sha256`` and
  pads its session holds (given once per session through ``COPY``, never in a statement
  or parameter); SQLite with ``lp_row_ref``, a function this module gives every SQLite
  connection; the statement names the key by a random id only;
- :func:`prepare`: a connection the integration writes through gets that function and,
  on SQLite, ``secure_delete`` (a deleted row's bytes are zeroed, not left in free pages);
- :func:`convert`: a row-states table written before references (row keys in clear) is
  converted when the binding opens, in the caller's transaction, and marked converted in
  ``lp_formats`` (a converted table is told by that mark, never by a key's shape).
"""

from __future__ import annotations

import io
import secrets
import sqlite3
import weakref
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    String,
    and_,
    delete,
    event,
    exists,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import Pool
from sqlalchemy.sql.functions import GenericFunction

from learnprivacy._inplace import ModelSpec
from learnprivacy._inplace._refs import RowRefs, is_row_ref
from learnprivacy.errors import ConfigurationError
from learnprivacy.sqlalchemy._rowkeys import key_columns, key_text

__all__ = ["convert", "in_state", "names_row", "prepare", "ref_id", "ref_sql"]

_FUNCTION = "lp_row_ref"
#: Each live binding's references by a random id: SQL names the key by this id, never
#: by a value derived from it.
_LIVE: weakref.WeakValueDictionary[str, RowRefs] = weakref.WeakValueDictionary()
_IDS: weakref.WeakKeyDictionary[RowRefs, str] = weakref.WeakKeyDictionary()
#: ``Connection.info`` entries: the ids whose pads a PostgreSQL session holds
#: (committed), and those written in its open transaction.
_INSTALLED = "learnprivacy.row_ref_pads"
_PENDING = "learnprivacy.row_ref_pads_pending"
_PAD_FUNCTION = "pg_temp.lp_pad("


def ref_id(refs: RowRefs) -> str:
    """The random id SQL names ``refs``'s key by in this process."""
    found = _IDS.get(refs)
    if found is None:
        found = secrets.token_hex(12)
        _IDS[refs] = found
        _LIVE[found] = refs
    return found


class _RowRef(GenericFunction[str]):
    """``lp_row_ref(id, table, key_text)``: a row reference in SQL. SQLite calls the
    function this module registers, which finds the key by id in this process;
    PostgreSQL computes it with ``sha256`` and the pads its session holds in a
    temporary table, filled through ``COPY`` (see :func:`_install`): no statement,
    parameter or log line carries the key or a value derived from it."""

    type = String()
    name = _FUNCTION
    inherit_cache = True


@compiles(_RowRef, "postgresql")
def _postgresql(element: _RowRef, compiler: Any, **kw: Any) -> str:
    ident, table, key = (compiler.process(c, **kw) for c in element.clauses)
    # Uncorrelated scalar subqueries: each pad is read once per statement.
    inner = f"(SELECT {_PAD_FUNCTION}{ident}, false))"
    outer = f"(SELECT {_PAD_FUNCTION}{ident}, true))"
    message = f"convert_to({table}, 'UTF8') || '\\x00'::bytea || convert_to({key}, 'UTF8')"
    digest = f"sha256({outer} || sha256({inner} || {message}))"
    encoded = f"encode(substring({digest} from 1 for 16), 'base64')"
    return f"('p1_' || rtrim(translate({encoded}, '+/', '-_'), '='))"


def ref_sql(refs: RowRefs, spec: ModelSpec) -> Any:
    """The SQL expression of the reference of a row of ``spec``'s table."""
    return _RowRef(literal(ref_id(refs), String), literal(spec.table, String), key_text(spec))


def names_row(states: Any, refs: RowRefs, spec: ModelSpec) -> Any:
    """The condition that a row state names the row of ``spec``'s table in SQL: by
    reference, or by its key in clear while a table written before references has not
    been converted yet (the first call through the binding converts it)."""
    return states.c.row_key.in_([ref_sql(refs, spec), key_text(spec)])


def in_state(states: Any, refs: RowRefs, spec: ModelSpec, state: str) -> Any:
    """The condition that the row of ``spec``'s table has row state ``state``.

    The table's states are probed first by an uncorrelated subquery, run once per
    statement: while the table has no row in that state (most tables, most of the time)
    no row's reference is computed at all; once it has one, each row's is."""
    any_row = (
        select(states.c.row_key)
        .where(states.c.table_name == spec.table, states.c.state == state)
        .limit(1)
        .scalar_subquery()
    )
    this_row = exists().where(
        states.c.table_name == spec.table,
        names_row(states, refs, spec),
        states.c.state == state,
    )
    return and_(any_row.is_not(None), this_row)


def _add_function(dbapi_connection: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function(_FUNCTION, 3, _reference, deterministic=True)


def _reference(ident: str, table: str, key: object) -> str | None:
    if key is None:
        return None
    refs = _LIVE.get(ident)
    if refs is None:
        raise ConfigurationError("row references of a binding that is gone")
    return refs.of_text(table, str(key))


@event.listens_for(Pool, "connect")
def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    _add_function(dbapi_connection)


_SETUP = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS lp_pads "
    "(id text PRIMARY KEY, ipad bytea NOT NULL, opad bytea NOT NULL)",
    # A missing id raises (STRICT): a statement never runs with no pad, matching nothing.
    "CREATE OR REPLACE FUNCTION pg_temp.lp_pad(wanted text, outer_pad boolean) "
    "RETURNS bytea LANGUAGE plpgsql STABLE AS $$ DECLARE found bytea; BEGIN "
    "SELECT CASE WHEN outer_pad THEN opad ELSE ipad END INTO STRICT found "
    "FROM pg_temp.lp_pads WHERE id = wanted; RETURN found; END $$",
)


def _named(parameters: Any) -> set[str]:
    """The ids of live bindings among a statement's parameters (one set or many)."""
    found: set[str] = set()
    for group in parameters if isinstance(parameters, list | tuple) else [parameters]:
        values = group.values() if isinstance(group, dict) else group
        if isinstance(values, str):
            values = [values]
        found.update(v for v in values if isinstance(v, str) and v in _LIVE)
    return found


def _install(connection: Connection, cursor: Any, parameters: Any) -> None:
    """Give this PostgreSQL session the pads of the bindings the statement names and it
    lacks (no other binding's), in its current transaction (:func:`_settle` keeps them
    once it commits)."""
    info = connection.info
    have = info.setdefault(_INSTALLED, set()) | info.setdefault(_PENDING, set())
    missing = [(i, r) for i in _named(parameters) - have if (r := _LIVE.get(i)) is not None]
    if not missing:
        return
    raw = cursor.connection.cursor()
    try:
        for statement in _SETUP:
            raw.execute(statement)
        for ident, refs in missing:
            raw.execute("DELETE FROM pg_temp.lp_pads WHERE id = %s", (ident,))
            # COPY data is neither a statement nor a parameter: no log records it.
            row = f"{ident}\t\\\\x{refs.inner_pad.hex()}\t\\\\x{refs.outer_pad.hex()}\n"
            copy = "COPY pg_temp.lp_pads (id, ipad, opad) FROM STDIN"
            if hasattr(raw, "copy"):
                with raw.copy(copy) as stream:
                    stream.write(row)
            else:
                raw.copy_expert(copy, io.StringIO(row))
    finally:
        raw.close()
    info[_PENDING].update(i for i, _r in missing)


@event.listens_for(Engine, "before_cursor_execute")
def _before_execute(
    connection: Connection, cursor: Any, statement: str, parameters: Any, *_args: Any
) -> None:
    if _PAD_FUNCTION in statement and connection.dialect.name == "postgresql":
        _install(connection, cursor, parameters)


@event.listens_for(Engine, "commit")
def _settle(connection: Connection) -> None:
    pending = connection.info.pop(_PENDING, None)
    if pending:
        connection.info.setdefault(_INSTALLED, set()).update(pending)


@event.listens_for(Engine, "rollback")
def _forget(connection: Connection) -> None:
    connection.info.pop(_PENDING, None)


@event.listens_for(Engine, "rollback_savepoint")
def _forget_savepoint(connection: Connection, _name: str, _context: Any) -> None:
    connection.info.pop(_PENDING, None)


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

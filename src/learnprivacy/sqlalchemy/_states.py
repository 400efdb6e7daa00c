"""Row states by keyed reference, in Python and in SQL (see ``_inplace._refs``).

- :func:`ref_sql`: the SQL expression of a row's reference, equal to
  :meth:`RowRefs.ref` of its key: PostgreSQL computes it with its own ``sha256``;
  SQLite with ``lp_row_ref``, a function this module gives every SQLite connection;
- :func:`prepare`: a connection the integration writes through gets that function and,
  on SQLite, ``secure_delete`` (a deleted row's bytes are zeroed, not left in free pages);
- :func:`convert`: a row-states table written before references (row keys in clear) is
  converted when the binding opens, in batches, each conversion idempotent.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Connection, LargeBinary, String, delete, event, func, insert, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import Pool
from sqlalchemy.sql.functions import GenericFunction

from learnprivacy._inplace import ModelSpec
from learnprivacy._inplace._refs import ROW_REF_LENGTH, RowRefs, pads_digest
from learnprivacy.sqlalchemy._rowkeys import key_text

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


def convert(connection: Connection, states: Any, refs: RowRefs, *, batch_size: int = 500) -> int:
    """Replace each row state naming its row by a clear key with one naming it by
    reference; how many were converted. A state already there by reference wins."""
    done = 0
    column = states.c.row_key
    clear = ~column.like("p1\\_%", escape="\\") | (func.length(column) != ROW_REF_LENGTH)
    while True:
        rows = connection.execute(select(states).where(clear).limit(batch_size)).all()
        if not rows:
            return done
        for row in rows:
            ref = refs.of_text(row.table_name, str(row.row_key))
            connection.execute(
                delete(states).where(states.c.table_name == row.table_name, column == row.row_key)
            )
            there = connection.execute(
                select(column).where(states.c.table_name == row.table_name, column == ref)
            ).first()
            if there is None:
                values = dict(row._mapping)
                values["row_key"] = ref
                connection.execute(insert(states).values(values))
            done += 1

"""A read-only view of a Moodle database engine: the adapter must never write to Moodle.

Three layers, so that one mistake cannot write:

1. every statement sent through the adapter's engine is checked before it reaches the
   driver; anything that is not a plain read (``SELECT``/``WITH``/``SHOW``/``EXPLAIN``, or a
   ``PRAGMA`` that sets nothing) raises :class:`~learnprivacy.errors.PolicyError`, and so do
   reads that lock or create (``FOR UPDATE``, ``LOCK IN SHARE MODE``, ``SELECT ... INTO``),
   data-modifying CTEs and functions that take locks or change the server's state
   (``GET_LOCK``, ``pg_advisory_lock``, ``setval``...), which a read-only transaction
   would let through;
2. on PostgreSQL and MySQL/MariaDB, transactions are opened ``READ ONLY`` (so even a
   ``SELECT nextval(...)`` is refused by PostgreSQL, and any write by MySQL);
3. on SQLite files opened from a URL, the connection runs with ``PRAGMA query_only``.

The listeners live on a private copy of the engine (``Engine.execution_options``), so an
engine passed in by the caller keeps working as before for the caller's own writes.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from learnprivacy.errors import ConfigurationError, PolicyError

__all__ = ["PG_WHOLE_RESULT", "check_read_only", "read_only_engine"]

_LITERAL = re.compile(r"'(?:[^']|'')*'")
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_FIRST_WORD = re.compile(r"[\s(]*([A-Za-z]+)")
_READS = frozenset({"SELECT", "WITH", "SHOW", "EXPLAIN", "PRAGMA", "VALUES", "DESCRIBE"})
_WRITES = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|UPSERT|REPLACE|TRUNCATE|DROP|ALTER|CREATE|GRANT|REVOKE|"
    r"COPY|CALL|LOCK|VACUUM|ATTACH|DETACH|REINDEX)\b",
    re.IGNORECASE,
)
_LOCKING = re.compile(r"\bFOR\s+(NO\s+KEY\s+UPDATE|UPDATE|SHARE|KEY\s+SHARE)\b", re.IGNORECASE)
_INTO = re.compile(r"\bINTO\b", re.IGNORECASE)
# Functions a SELECT may call that lock, or change a sequence or the server, and that
# neither server's read-only transaction refuses (advisory locks, MySQL's named locks).
_STATEFUL_FUNCTIONS = re.compile(
    r"\b(GET_LOCK|RELEASE_LOCK|RELEASE_ALL_LOCKS|PG_(?:TRY_)?ADVISORY_\w*|PG_NOTIFY|"
    r"SET_CONFIG|NEXTVAL|SETVAL|PG_TERMINATE_BACKEND|PG_CANCEL_BACKEND|PG_RELOAD_CONF|"
    r"LO_IMPORT|LO_EXPORT|LO_UNLINK|LO_CREATE|SLEEP|PG_SLEEP\w*|BENCHMARK)\s*\(",
    re.IGNORECASE,
)
# MySQL's code for "Cannot execute statement in a READ ONLY transaction".
_MYSQL_READ_ONLY = 1792
# PostgreSQL's SQLSTATE for "cannot execute ... in a read-only transaction".
_PG_READ_ONLY = "25006"

#: The one setting the adapter changes, for its own transaction only: a server-side cursor
#: is planned for its first rows by default (cursor_tuple_fraction 0.1), which can pick
#: nested loops that are very slow when, as here, every row is read.
PG_WHOLE_RESULT = "SET LOCAL cursor_tuple_fraction = 1.0"
_ALLOWED = frozenset({PG_WHOLE_RESULT})


def check_read_only(statement: str) -> None:
    """Raise ``PolicyError`` unless ``statement`` only reads.

    >>> check_read_only("SELECT id FROM mdl_user")
    >>> check_read_only("DELETE FROM mdl_user")
    Traceback (most recent call last):
    ...
    learnprivacy.errors.PolicyError: the Moodle adapter is read-only: refused statement DELETE
    """
    if statement in _ALLOWED:
        return
    # Literals and comments are dropped first, so that a word inside them cannot decide.
    bare = _COMMENT.sub(" ", _LITERAL.sub("''", statement))
    match = _FIRST_WORD.match(bare)
    verb = match.group(1).upper() if match else ""
    if verb not in _READS:
        raise PolicyError(f"the Moodle adapter is read-only: refused statement {verb or '(empty)'}")
    if verb == "PRAGMA" and "=" in bare:
        raise PolicyError("the Moodle adapter is read-only: refused a PRAGMA that sets a value")
    write = _WRITES.search(bare)
    if write:
        raise PolicyError(
            f"the Moodle adapter is read-only: refused a statement containing {write.group(1)}"
        )
    if _LOCKING.search(bare) or (verb in ("SELECT", "WITH") and _INTO.search(bare)):
        raise PolicyError("the Moodle adapter is read-only: refused a locking or SELECT INTO")
    function = _STATEFUL_FUNCTIONS.search(bare)
    if function:
        raise PolicyError(
            "the Moodle adapter is read-only: refused a call to "
            f"{function.group(1).upper()}, which locks or changes server state"
        )


def _before_cursor_execute(
    conn: sa.Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    if executemany:
        raise PolicyError("the Moodle adapter is read-only: refused an executemany")
    check_read_only(statement)


def _handle_error(context: sa.engine.ExceptionContext) -> None:
    # The database's own refusal (layers 2 and 3) surfaces as the same typed error as ours.
    original = context.original_exception
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    args = getattr(original, "args", ())
    mysql_code = args[0] if args and isinstance(args[0], int) else None
    if (
        sqlstate == _PG_READ_ONLY
        or mysql_code == _MYSQL_READ_ONLY
        or "readonly database" in str(original)
    ):
        raise PolicyError("the Moodle adapter is read-only: the database refused a write") from (
            context.sqlalchemy_exception or original
        )


def _sqlite_query_only(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA query_only = ON")
    finally:
        cursor.close()


def _mysql_begin_read_only(conn: sa.Connection) -> None:
    # MySQL has no connection option for read-only transactions: start each one
    # explicitly, on the driver's connection (the statement itself writes nothing).
    dbapi_connection = conn.connection.dbapi_connection
    if dbapi_connection is None:  # pragma: no cover - a begun connection always has one
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("START TRANSACTION READ ONLY")
    finally:
        cursor.close()


def read_only_engine(url_or_engine: str | sa.URL | sa.Engine) -> tuple[sa.Engine, bool]:
    """A guarded engine over ``url_or_engine`` and whether the caller must dispose it.

    An engine created here from a URL is owned (and disposed by the adapter); an engine
    passed in is wrapped, never disposed.
    """
    if isinstance(url_or_engine, sa.Engine):
        base, owned = url_or_engine, False
    elif isinstance(url_or_engine, str | sa.URL):
        try:
            base = sa.create_engine(url_or_engine, hide_parameters=True)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError):
            # The URL may hold a password: the message names the problem, not the URL.
            raise ConfigurationError(
                "cannot open the Moodle database URL (malformed, or its driver is missing)"
            ) from None
        owned = True
        if base.dialect.name == "sqlite":
            event.listen(base, "connect", _sqlite_query_only)
    else:
        raise ConfigurationError("MoodleDatabase needs a database URL or a SQLAlchemy Engine")
    options: dict[str, Any] = {}
    if base.dialect.name == "postgresql":
        options["postgresql_readonly"] = True
    engine = base.execution_options(**options)
    if base.dialect.name == "mysql":
        event.listen(engine, "begin", _mysql_begin_read_only)
    event.listen(engine, "before_cursor_execute", _before_cursor_execute)
    event.listen(engine, "handle_error", _handle_error)
    return engine, owned

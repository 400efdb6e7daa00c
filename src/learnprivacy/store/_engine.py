"""Engines and transactions: SQLite and PostgreSQL behind one small interface.

SQLite connections are opened with ``secure_delete`` on, so deleted rows are overwritten
with zeros in the database file instead of lingering in free pages (an erased learner's
tokens must not be recoverable from the file). The database runs in WAL mode with
``synchronous = FULL``: every commit is durable, readers never block the writer, and a
sweep's many small transactions each append their pages to the log once instead of
journalling them twice. After an erasure the store checkpoints and truncates the log
(:meth:`Database.checkpoint`), so no page image from before the erasure stays in it.
Write transactions start with ``BEGIN IMMEDIATE``: taking the write lock up front avoids
the deadlock two deferred transactions reach when both try to upgrade from reading to
writing.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import StaticPool

from learnprivacy.errors import ConfigurationError

__all__ = ["Database", "thread_bound"]

_WRITE = "learnprivacy_write"
_RELAXED = "learnprivacy_relaxed"
#: Seconds a SQLite connection waits for a lock (and a checkpoint for older readers).
BUSY_TIMEOUT = 60.0


def _make_engine(url: str | Engine) -> Engine:
    if isinstance(url, Engine):
        return _adopt_engine(url)
    if not isinstance(url, str):
        raise ConfigurationError("a database is given as a URL (str) or a SQLAlchemy Engine")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            "not a database URL (sqlite:///file.db or postgresql+psycopg://...)"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        _refuse_sqlite_options(parsed.query)
        memory = parsed.database in (None, "", ":memory:")
        kwargs: dict[str, Any] = {
            "connect_args": {"timeout": BUSY_TIMEOUT, "check_same_thread": False}
        }
        if memory:
            # One shared connection, or every checkout would see a new empty database.
            kwargs["poolclass"] = StaticPool
        engine = _create(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        return _create(parsed, pool_pre_ping=True)
    raise ConfigurationError("the store supports sqlite and postgresql URLs only")


def _create(parsed: Any, **kwargs: Any) -> Engine:
    # A driver error's message must not carry a statement's parameters: learner ids,
    # clear columns and blind indexes are personal data.
    try:
        return create_engine(parsed, hide_parameters=True, **kwargs)
    except ArgumentError:
        # NoSuchModuleError (an unknown driver) and bad URL options land here.
        raise ConfigurationError(
            f"the {parsed.get_backend_name()} URL names an unknown driver or a bad option"
        ) from None


# What the store cannot honour: it writes its schema, audit and keys on open, so a
# read-only or immutable database would fail later, half-way, instead of now.
_SQLITE_REFUSED = ("mode", "immutable", "uri", "vfs", "nolock")


def _refuse_sqlite_options(query: Any) -> None:
    refused = sorted(name for name in query if name in _SQLITE_REFUSED)
    if refused:
        raise ConfigurationError(
            f"SQLite URL option(s) {', '.join(refused)} not supported: the store writes its "
            "schema, audit log and keys when it opens, so it needs a read-write database "
            "(for a read-only copy, open a backup made with store.backup())"
        )


def _connect_error(url: Any, error: DBAPIError) -> ConfigurationError:
    """A ConfigurationError for a database that cannot be reached, naming the backend,
    the URL without its password and the driver's reason with any password cut out."""
    reason = str(error.orig).strip().splitlines()[0] if error.orig is not None else ""
    password = url.password
    if password:
        reason = reason.replace(str(password), "***")
    where = url.render_as_string(hide_password=True)
    if password:
        where = where.replace(str(password), "***")
    return ConfigurationError(
        f"cannot open the {url.get_backend_name()} database {where}: "
        f"{reason or type(error.orig).__name__}"
    )


def _adopt_engine(engine: Engine) -> Engine:
    """An engine made by the caller: SQLite ones get the store's connection settings for
    every connection they open from now on."""
    backend = engine.dialect.name
    if backend == "sqlite":
        if not event.contains(engine, "connect", _sqlite_connect):
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
            # Connections pooled before the listeners were added lack the settings.
            engine.dispose()
        return engine
    if backend == "postgresql":
        return engine
    raise ConfigurationError("the store supports sqlite and postgresql databases only")


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN, not the sqlite3 module's implicit one.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA secure_delete = ON")
    # 32 MB of page cache (the default is 2 MB): sweeps and bulk inserts revisit index
    # pages batch after batch, and reading them again from the file costs more than RAM.
    cursor.execute("PRAGMA cache_size = -32768")
    cursor.execute("PRAGMA foreign_keys = ON")
    # Another connection may hold a lock; the mode is persistent, a later open sets it.
    with contextlib.suppress(sqlite3.OperationalError):
        cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = FULL")
    # Checkpoint every ~40 MB of log rather than every 4 MB: a sweep rewrites the same
    # index pages batch after batch, and each checkpoint writes them to the file again.
    cursor.execute("PRAGMA wal_autocheckpoint = 10000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    options = connection.get_execution_options()
    if options.get(_WRITE, False):
        relaxed = options.get(_RELAXED, False)
        connection.exec_driver_sql(f"PRAGMA synchronous = {'NORMAL' if relaxed else 'FULL'}")
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")


def _folded(result: Any) -> bool:
    """Whether ``PRAGMA wal_checkpoint(TRUNCATE)``'s ``(busy, log pages, folded pages)``
    says the whole log went into the file (a database not in WAL mode has no log)."""
    busy, logged, folded = result
    return not busy and (logged == -1 or logged == folded)


class Database:
    """An engine and the two kinds of transaction the store uses."""

    __slots__ = ("engine", "folded", "is_postgres", "is_sqlite", "owned")

    def __init__(self, url: str | Engine) -> None:
        engine = _make_engine(url)
        if not isinstance(url, Engine):
            # Connect now: a bad path, host or password is a configuration error named
            # here, not a driver error raised from the first query.
            try:
                with engine.connect():
                    pass
            except DBAPIError as error:
                engine.dispose()
                raise _connect_error(engine.url, error) from None
        self._adopt(engine)
        #: Whether :meth:`dispose` closes the engine (not when the caller passed one).
        self.owned = not isinstance(url, Engine)

    @classmethod
    def from_engine(cls, engine: Engine) -> Database:
        """A Database over an engine someone else made (an application's own engine).

        The engine is used as it is: none of the store's connection settings are added,
        and :meth:`dispose` leaves it open.
        """
        db = cls.__new__(cls)
        db._adopt(engine)
        db.owned = False
        return db

    def _adopt(self, engine: Engine) -> None:
        self.engine = engine
        #: Whether the last :meth:`checkpoint` folded the whole log into the file.
        self.folded = True
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.is_postgres = engine.dialect.name == "postgresql"

    @contextmanager
    def write(self, *, relaxed: bool = False) -> Iterator[Connection]:
        """A read-write transaction, committed on success and rolled back on error.

        ``relaxed`` (SQLite): commit without waiting for the disk. Only for work that a
        later :meth:`checkpoint` makes durable and that is safe to redo if a power failure
        loses it, such as the pages of a sweep; the database stays consistent either way.
        """
        with self.engine.connect() as connection:
            connection.execution_options(**{_WRITE: True, _RELAXED: relaxed})
            with connection.begin():
                yield connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction for reading (one consistent snapshot on PostgreSQL)."""
        with self.engine.connect() as connection, connection.begin():
            yield connection

    def checkpoint(self, *, wait: bool = True) -> bool:
        """Fold SQLite's write-ahead log into the file and truncate it (no-op elsewhere).

        Called after erasures: the log may hold page images from before them.
        ``wait=False``: readers of another connection are not waited for; what they
        still need stays in the log (a store opening: a reader elsewhere must not hold
        it up).

        Returns whether the whole log was folded and truncated (always ``True`` off
        SQLite), also kept in :attr:`folded`. ``False``: a read transaction of another
        connection, older than the last write, outlasted the busy timeout; the pages it
        may still read stay in the log until a later checkpoint.
        """
        if not self.is_sqlite:
            return True
        with self.engine.connect() as connection:
            # On the driver's connection, outside any transaction (PRAGMAs refuse to run in
            # one). FULL makes the checkpoint sync the database file: what relaxed commits
            # wrote is on disk once this returns.
            raw = connection.connection.driver_connection
            assert raw is not None  # a live pooled connection
            raw.execute("PRAGMA synchronous = FULL")
            timeout = None if wait else raw.execute("PRAGMA busy_timeout").fetchone()[0]
            if timeout is not None:
                raw.execute("PRAGMA busy_timeout = 0")
            try:
                self.folded = _folded(raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
            finally:
                if timeout is not None:
                    raw.execute(f"PRAGMA busy_timeout = {int(timeout)}")
            return self.folded

    def backup(self, path: str) -> None:
        """Copy a SQLite database, consistently, to the new file ``path`` (SQLite only).

        The file is created exclusively: SQLite's backup replaces the whole target, so an
        existing file (the live key database, the records, an earlier backup) raises
        ``ConfigurationError`` and is left untouched. A backup that fails leaves no file.
        """
        if not self.is_sqlite:
            raise ConfigurationError("backup() copies SQLite files; use pg_dump for PostgreSQL")
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            raise ConfigurationError(f"{path} exists; a backup never overwrites a file") from None
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the backup file {path}: {exc.strerror}"
            ) from None
        done = False
        try:
            target = sqlite3.connect(path)
            try:
                with self.engine.connect() as connection:
                    raw = connection.connection.driver_connection
                    assert raw is not None  # a live pooled connection
                    raw.backup(target)
            finally:
                target.close()
            done = True
        finally:
            if not done:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def dispose(self) -> None:
        """Close every pooled connection (of an engine this object made, not a caller's)."""
        if self.owned:
            self.engine.dispose()


@contextmanager
def thread_bound(local: threading.local, name: str, value: object) -> Iterator[None]:
    """Set ``local.<name>`` to ``value`` for this thread while the block runs, then put
    back what was there (blocks nest)."""
    previous = getattr(local, name, None)
    setattr(local, name, value)
    try:
        yield
    finally:
        setattr(local, name, previous)

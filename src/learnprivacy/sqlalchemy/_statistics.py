"""PostgreSQL's planner statistics on the application's tables never keep an erased
learner's id.

``ANALYZE`` (autovacuum runs it) copies sampled values of each column into
``pg_statistic``, readable through ``pg_stats``: for a declared subject column
(``forum_posts.author_id``, ``users.id``) those are learner ids, and they outlive the
learner's rows until the table is analysed again. The integration does not alter the
application's schema; instead:

- an erasure, sweep or anonymisation notes on the session the learners whose rows it
  removed and the tables it removed them from (:func:`note_removed`);
- the application's own ``session.delete()`` of a learner's last row in a table is
  checked at once, in the flush's transaction (:func:`mark_removed`);
- before the caller commits, ``pg_stats`` is asked whether one of those ids is sampled in
  those tables' subject columns; if so the table is marked in ``lp_stale_statistics``, in
  the caller's transaction (:func:`before_commit`): a rollback leaves no mark;
- after the commit, on a connection of its own in autocommit, the marked columns are
  analysed again, stale statistics dropped, ``pg_statistic`` rewritten and the marks
  removed (:func:`refresh`);
- a mark a crash left between the commit and the refresh is found by the next call of the
  binding (:func:`leftover`) and refreshed once that call's transaction ends (committed,
  rolled back or closed).

SQLite keeps no sampled values (``sqlite_stat1`` holds counts only): nothing happens there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from learnprivacy._pgstatistics import Marks, escape_like, mark, refresh_marked, sampled

if TYPE_CHECKING:
    from learnprivacy._inplace import ModelSpec
    from learnprivacy.sqlalchemy._tables import SideTables

__all__ = [
    "before_commit",
    "deferred",
    "forget",
    "leftover",
    "mark_removed",
    "marks_of",
    "note_removed",
    "refresh",
    "take",
]

_log = logging.getLogger("learnprivacy.sqlalchemy")

#: ``session.info`` key: (engine, {(schema, table pattern, column)}, {learner ids}) removed.
_REMOVED = "learnprivacy.removed_subjects"
#: ``session.info`` key: the engine whose marks to refresh once the transaction ends.
REFRESH = "learnprivacy.refresh_statistics"


def marks_of(side: SideTables) -> Marks:
    """Where the integration keeps its marks: one row a table, its subject column."""
    return Marks(side.statistics, "table_name", "column_name")


def note_removed(
    session: Session, connection: Connection, specs: Iterable[ModelSpec], subjects: Iterable[str]
) -> None:
    """Note that the session's transaction removes the rows of ``subjects`` from the
    tables of ``specs`` (PostgreSQL only)."""
    if connection.dialect.name != "postgresql":
        return
    _engine, targets, ids = session.info.setdefault(_REMOVED, (connection.engine, set(), set()))
    targets.update(_targets(specs))
    ids.update(subjects)


def before_commit(session: Session, marks: Marks) -> None:
    """Mark, in the committing transaction, the tables whose subject column's statistics
    sample a learner id it removed."""
    removed = session.info.pop(_REMOVED, None)
    if removed is None:
        return
    engine, targets, ids = removed
    _mark_sampled(session, session.connection(bind_arguments={"bind": engine}), marks, targets, ids)


def mark_removed(
    session: Session,
    connection: Connection,
    marks: Marks,
    specs: Iterable[ModelSpec],
    subjects: Iterable[str],
) -> None:
    """Mark now, in ``connection``'s transaction, the tables of ``specs`` whose subject
    column's statistics sample one of ``subjects``: for removals noted during a flush,
    which may run after ``before_commit`` (a commit flushes after that event)."""
    if connection.dialect.name != "postgresql":
        return
    _mark_sampled(session, connection, marks, _targets(specs), set(subjects))


def _targets(specs: Iterable[ModelSpec]) -> set[tuple[str | None, str, str]]:
    """The subject columns of ``specs``' tables, each in its table's schema (``None``:
    the connection's current schema)."""
    table = [(s, s.model.__table__) for s in specs]
    return {(t.schema, escape_like(t.name), s.subject_column) for s, t in table}


def _mark_sampled(
    session: Session,
    connection: Connection,
    marks: Marks,
    targets: set[tuple[str | None, str, str]],
    ids: set[str],
) -> None:
    found = sampled(connection, targets, ids)
    if found:
        mark(connection, marks, found)
        session.info[REFRESH] = connection.engine


def leftover(session: Session, connection: Connection, marks: Marks) -> None:
    """Refresh, once this transaction ends, what a crash after an earlier commit left
    marked."""
    if connection.dialect.name != "postgresql":
        return
    if connection.execute(select(marks.table.c[marks.key]).limit(1)).first() is not None:
        session.info[REFRESH] = connection.engine


#: ``session.info`` key: set while a sweep runs, whose batches' marks are refreshed once,
#: when it ends (:func:`deferred`).
_DEFER = "learnprivacy.defer_statistics"


@contextmanager
def deferred(session: Session) -> Iterator[None]:
    """Inside: a transaction's end refreshes nothing (a sweep's batches mark the tables
    page after page). Once out, the marks are refreshed once, when no transaction of the
    session holds locks (otherwise when it ends)."""
    session.info[_DEFER] = True
    try:
        yield
    finally:
        session.info.pop(_DEFER, None)


def take(session: Session) -> Engine | None:
    """The engine whose marks to refresh, now that the transaction has ended (``None``
    while a sweep defers them)."""
    if session.info.get(_DEFER):
        return None
    engine: Engine | None = session.info.pop(REFRESH, None)
    return engine


def forget(session: Session) -> None:
    """The transaction was rolled back: what it removed is back."""
    session.info.pop(_REMOVED, None)


def refresh(engine: Engine, marks: Marks) -> None:
    """Refresh the marked statistics (the transaction that marked them has committed)."""
    try:
        refresh_marked(engine, marks)
    except Exception as exc:  # committed: the next call refreshes them
        _log.warning(
            "planner statistics not refreshed after commit (%s); retried on next call",
            type(exc).__name__,
        )

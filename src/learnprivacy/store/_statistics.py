"""PostgreSQL's planner statistics and the learner ids they sample.

``ANALYZE`` (autovacuum runs it whenever a table has changed enough) copies sampled values
into ``pg_statistic``: each column's most common values and histogram bounds, readable
through the ``pg_stats`` view by anyone who may read the table. For the store's id columns
those values are learner ids, and deleting a learner's rows does not remove them: they stay
until the table is analysed again, which may be months later, and then in the catalog's
dead rows until ``pg_statistic`` is vacuumed.

- **Record ids** (and a learner's own id) are unique: the planner estimates them from
  their unique index, so they get no statistics at all (``SET STATISTICS 0``). An
  application may build a record id from the learner id.
- **``learner_id`` columns** keep their statistics: without them the planner takes a page
  of a thousand learners for the whole table and scans it. Instead, every write
  transaction that erases or anonymises a learner's rows asks ``pg_stats``, before it
  commits, whether one of those learner ids is sampled. If so it marks the table in
  ``lp_meta`` in the same transaction (so a crash after the commit loses nothing), and
  once committed the table is analysed again, ``pg_statistic`` rewritten and the mark
  removed; a store opening with a mark left does the same.

SQLite keeps no sampled values (``sqlite_stat1`` holds counts only).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, text

from learnprivacy._pgstatistics import Marks, mark, refresh_marked, sampled, vacuum_catalog
from learnprivacy.store._engine import Database
from learnprivacy.store._schema import RecordTable
from learnprivacy.store._tables import META

__all__ = [
    "MARK",
    "refresh_if_marked",
    "removed",
    "rewrite_catalog",
    "unsample_ids",
    "unsample_if_removed",
]

#: ``lp_meta`` keys ``statistics:<table>``: tables whose statistics sample a learner id
#: whose rows were erased or anonymised.
MARK = "statistics:"
#: ``connection.info`` key of the learner ids whose rows the transaction removes.
_REMOVED = "learnprivacy.removed_learners"

# Which id columns PostgreSQL may sample into pg_statistic, and which it has.
_TARGETS = text(
    "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), "
    "a.attstattarget <> 0, "
    "EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = n.nspname "
    "AND s.tablename = c.relname AND s.attname = a.attname) "
    "FROM unnest(CAST(:tables AS text[])) AS wanted(tab) "
    "JOIN pg_class c ON c.oid = to_regclass(wanted.tab) "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'id'"
)

#: Where the store keeps its marks, every one on a ``learner_id`` column.
_MARKS = Marks(META, "key", "value", prefix=MARK, column="learner_id")


def unsample_ids(connection: Connection, tables: list[RecordTable]) -> bool:
    """Turn statistics off for the record-id column of ``tables`` (PostgreSQL only).

    Statistics an earlier version let PostgreSQL collect there are dropped (an ``ALTER
    COLUMN ... TYPE`` to the column's own type drops them without rewriting the table);
    True when some were, and ``pg_statistic`` wants rewriting after the commit
    (:func:`rewrite_catalog`).
    """
    if connection.dialect.name != "postgresql" or not tables:
        return False
    rows = connection.execute(_TARGETS, {"tables": [rt.table.name for rt in tables]}).all()
    quote = connection.dialect.identifier_preparer.quote
    dropped = False
    for table, column, sql_type, collects, collected in rows:
        target = f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(column)}"
        if collects:
            connection.execute(text(f"{target} SET STATISTICS 0"))
        if collected:
            connection.execute(text(f"{target} TYPE {sql_type}"))
            dropped = True
    return dropped


def removed(connection: Connection, learner_ids: Iterable[str]) -> None:
    """Note that this transaction erases or anonymises rows of ``learner_ids``."""
    if connection.dialect.name == "postgresql":
        connection.info.setdefault(_REMOVED, set()).update(learner_ids)


def unsample_if_removed(connection: Connection) -> bool:
    """Before the commit: mark the tables whose statistics sample a learner id the
    transaction removed rows of. True when one was marked."""
    learner_ids = connection.info.pop(_REMOVED, None)
    if not learner_ids:
        return False
    # One row a table: concurrent writers marking different tables never wait on each
    # other.
    found = sampled(connection, [("lp\\_%", "learner_id")], learner_ids)
    mark(connection, _MARKS, found)
    return bool(found)


def refresh_if_marked(db: Database) -> None:
    """Analyse again the tables marked by :func:`unsample_if_removed`, rewrite
    ``pg_statistic``, then remove the marks (outside any transaction: ``VACUUM`` cannot
    run in one)."""
    if db.is_postgres:
        refresh_marked(db.engine, _MARKS)


def rewrite_catalog(db: Database) -> None:
    """Rewrite ``pg_statistic`` (outside any transaction)."""
    with db.engine.connect() as connection:
        vacuum_catalog(connection.execution_options(isolation_level="AUTOCOMMIT"))

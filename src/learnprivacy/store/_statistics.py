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

from sqlalchemy import Connection, delete, select, text

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

# The tables whose learner_id statistics sample one of :ids.
_SAMPLED = text(
    "SELECT DISTINCT s.tablename FROM pg_stats s "
    "WHERE s.schemaname = current_schema() AND s.tablename LIKE 'lp\\_%' "
    "AND s.attname = 'learner_id' "
    "AND (CAST(CAST(s.most_common_vals AS text) AS text[]) && CAST(:ids AS text[]) "
    "OR CAST(CAST(s.histogram_bounds AS text) AS text[]) && CAST(:ids AS text[]))"
)


# How many learner ids the statistics of :table's learner_id name that it no longer holds.
_STALE = (
    "SELECT count(*) FROM pg_stats s, LATERAL unnest("
    "CAST(CAST(s.most_common_vals AS text) AS text[]) "
    "|| CAST(CAST(s.histogram_bounds AS text) AS text[])) AS sampled(learner_id) "
    "WHERE s.schemaname = current_schema() AND s.tablename = :table "
    "AND s.attname = 'learner_id' AND NOT EXISTS (SELECT 1 FROM {table} t "
    "WHERE t.learner_id = sampled.learner_id)"
)

_TYPE = text(
    "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
    "WHERE a.attrelid = to_regclass(:table) AND a.attname = 'learner_id'"
)


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
    tables = connection.execute(_SAMPLED, {"ids": sorted(learner_ids)}).scalars().all()
    if not tables:
        return False
    # One row a table: concurrent writers marking different tables never wait on each
    # other; a row already there is left as it is.
    marked = set(
        connection.execute(
            select(META.c.key).where(META.c.key.in_([MARK + t for t in tables]))
        ).scalars()
    )
    rows = [{"key": MARK + t, "value": t} for t in tables if MARK + t not in marked]
    if rows:
        from sqlalchemy.dialects.postgresql import insert

        # Another writer may be marking the same table: its row is as good as ours.
        connection.execute(insert(META).on_conflict_do_nothing(), rows)
    return True


def refresh_if_marked(db: Database) -> None:
    """Analyse again the tables marked by :func:`unsample_if_removed`, rewrite
    ``pg_statistic``, then remove the marks (outside any transaction: ``VACUUM`` cannot
    run in one)."""
    if not db.is_postgres:
        return
    with db.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        marks = connection.execute(
            select(META.c.key, META.c.value).where(META.c.key.startswith(MARK))
        ).all()
        if not marks:
            return
        quote = connection.dialect.identifier_preparer.quote
        for _key, table in marks:
            connection.execute(text(f"ANALYZE {quote(table)}"))
            # ANALYZE keeps the old statistics of a table it finds empty, and a sample
            # taken while another writer's deletion was not committed may still hold its
            # learners: whatever the statistics still name that the table no longer holds
            # is dropped with the column's statistics (autovacuum samples it again).
            stale = connection.execute(
                text(_STALE.format(table=quote(table))), {"table": table}
            ).scalar_one()
            if stale:
                sql_type = connection.execute(_TYPE, {"table": table}).scalar_one()
                connection.execute(
                    text(f"ALTER TABLE {quote(table)} ALTER COLUMN learner_id TYPE {sql_type}")
                )
        _vacuum_catalog(connection)
        connection.execute(delete(META).where(META.c.key.in_([key for key, _ in marks])))


def rewrite_catalog(db: Database) -> None:
    """Rewrite ``pg_statistic`` (outside any transaction)."""
    with db.engine.connect() as connection:
        _vacuum_catalog(connection.execution_options(isolation_level="AUTOCOMMIT"))


def _vacuum_catalog(connection: Connection) -> None:
    # The rows ANALYZE replaced keep their values in the catalog's pages until then. It
    # needs the database's owner: otherwise PostgreSQL skips it with a warning and the
    # dead rows wait for autovacuum. Row versions a transaction still open may see are
    # copied, not dropped.
    connection.execute(text("VACUUM FULL pg_statistic"))

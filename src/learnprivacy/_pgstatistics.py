"""PostgreSQL's planner statistics and the learner ids they sample: what the store and the
SQLAlchemy integration share.

``ANALYZE`` (autovacuum runs it whenever a table has changed enough) copies sampled values
into ``pg_statistic``: each column's most common values and histogram bounds, readable
through the ``pg_stats`` view by anyone who may read the table. For a column holding
learner ids those values are learner ids, and removing a learner's rows does not remove
them: they stay until the table is analysed again (an empty table keeps its old ones
through ``ANALYZE``), then in the catalog's dead rows until ``pg_statistic`` is rewritten.

So a transaction that erases or anonymises a learner's rows asks ``pg_stats``, before it
commits, whether one of those learner ids is sampled (:func:`sampled`); if so it marks the
table durably in the same transaction (:func:`mark`), and once committed the table is
analysed again, stale statistics dropped, ``pg_statistic`` rewritten and the mark removed
(:func:`refresh_marked`); a mark a crash left behind is finished the same way later.

The marks live in a table of the caller's (``lp_meta`` for the store, a side table for the
integration), described by :class:`Marks`. Importing this module needs SQLAlchemy: only
the store and the integration import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs
from sqlalchemy import Connection, Engine, Table, delete, select, text

__all__ = ["Marks", "escape_like", "mark", "refresh_marked", "sampled", "vacuum_catalog"]

# The (table, column) pairs among :tables LIKE / :columns whose statistics sample :ids.
_SAMPLED = text(
    "SELECT DISTINCT s.tablename, s.attname FROM pg_stats s "
    "JOIN unnest(CAST(:tables AS text[]), CAST(:columns AS text[])) AS w(tab, col) "
    "ON s.tablename LIKE w.tab AND s.attname = w.col "
    "WHERE s.schemaname = current_schema() "
    "AND (CAST(CAST(s.most_common_vals AS text) AS text[]) && CAST(:ids AS text[]) "
    "OR CAST(CAST(s.histogram_bounds AS text) AS text[]) && CAST(:ids AS text[]))"
)

# How many values the statistics of :table's {column} name that it no longer holds.
_STALE = (
    "SELECT count(*) FROM pg_stats s, LATERAL unnest("
    "CAST(CAST(s.most_common_vals AS text) AS text[]) "
    "|| CAST(CAST(s.histogram_bounds AS text) AS text[])) AS sampled(v) "
    "WHERE s.schemaname = current_schema() AND s.tablename = :table "
    "AND s.attname = :column AND NOT EXISTS (SELECT 1 FROM {table} t "
    "WHERE t.{column} = CAST(sampled.v AS {type}))"
)

_TYPE = text(
    "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
    "WHERE a.attrelid = to_regclass(quote_ident(:table)) AND a.attname = :column "
    "AND NOT a.attisdropped"
)


@attrs.frozen
class Marks:
    """Where the marked tables are kept: rows ``(key, value)`` of ``table``.

    A key is ``prefix`` + the table's name; the value is the column's name, or, when every
    marked column is ``column``, the table's name again (the store's ``lp_meta`` format).
    """

    table: Table
    key: str
    value: str
    prefix: str = ""
    column: str | None = None

    def row(self, table: str, column: str) -> dict[str, str]:
        """The mark of ``table``'s ``column``."""
        return {self.key: self.prefix + table, self.value: table if self.column else column}

    def target(self, key: str, value: str) -> tuple[str, str]:
        """The ``(table, column)`` a mark names."""
        if self.column is not None:
            return value, self.column
        return key[len(self.prefix) :], value


def escape_like(name: str) -> str:
    """``name`` as a LIKE pattern matching only itself."""
    return name.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def sampled(
    connection: Connection, targets: Iterable[tuple[str, str]], ids: Iterable[object]
) -> list[tuple[str, str]]:
    """The ``(table, column)`` of ``targets`` (table LIKE patterns, column names) whose
    statistics sample one of ``ids``."""
    pairs = sorted(set(targets))
    wanted = sorted({str(i) for i in ids})
    if not pairs or not wanted or connection.dialect.name != "postgresql":
        return []
    found = connection.execute(
        _SAMPLED,
        {"tables": [t for t, _ in pairs], "columns": [c for _, c in pairs], "ids": wanted},
    ).all()
    return sorted((str(t), str(c)) for t, c in found)


def mark(connection: Connection, marks: Marks, targets: Sequence[tuple[str, str]]) -> None:
    """Mark ``targets`` in ``marks`` (in ``connection``'s transaction); a mark already
    there is left as it is."""
    rows = {marks.prefix + t: marks.row(t, c) for t, c in targets}
    if not rows:
        return
    key = marks.table.c[marks.key]
    there = set(connection.execute(select(key).where(key.in_(list(rows)))).scalars())
    missing = [row for name, row in rows.items() if name not in there]
    if missing:
        from sqlalchemy.dialects.postgresql import insert

        # Another writer may be marking the same table: its row is as good as ours.
        connection.execute(insert(marks.table).on_conflict_do_nothing(), missing)


def refresh_marked(engine: Engine, marks: Marks) -> bool:
    """Analyse again the tables marked in ``marks``, drop what their statistics still
    name that they no longer hold, rewrite ``pg_statistic``, then remove the marks
    (outside any transaction: ``VACUUM`` cannot run in one). True when some were marked."""
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        key, value = marks.table.c[marks.key], marks.table.c[marks.value]
        found = connection.execute(
            select(key, value).where(key.startswith(marks.prefix, autoescape=True))
        ).all()
        if not found:
            return False
        quote = connection.dialect.identifier_preparer.quote
        for name, column in sorted({marks.target(k, v) for k, v in found}):
            sql_type = connection.execute(_TYPE, {"table": name, "column": column}).scalar()
            if sql_type is None:
                continue  # dropped since: its statistics went with it
            table = quote(name)
            connection.execute(text(f"ANALYZE {table} ({quote(column)})"))
            # ANALYZE keeps the old statistics of a table it finds empty, and a sample
            # taken while another writer's deletion was not committed may still hold its
            # learners: whatever the statistics still name that the table no longer holds
            # is dropped with the column's statistics (an ALTER COLUMN ... TYPE to its own
            # type does that without rewriting the table; autovacuum samples it again).
            stale = connection.execute(
                text(_STALE.format(table=table, column=quote(column), type=sql_type)),
                {"table": name, "column": column},
            ).scalar_one()
            if stale:
                connection.execute(
                    text(f"ALTER TABLE {table} ALTER COLUMN {quote(column)} TYPE {sql_type}")
                )
        vacuum_catalog(connection)
        connection.execute(delete(marks.table).where(key.in_([k for k, _ in found])))
    return True


def vacuum_catalog(connection: Connection) -> None:
    """Rewrite ``pg_statistic`` (``connection`` in autocommit)."""
    # The rows ANALYZE replaced keep their values in the catalog's pages until then. It
    # needs the database's owner: otherwise PostgreSQL skips it with a warning and the
    # dead rows wait for autovacuum. Row versions a transaction still open may see are
    # copied, not dropped.
    connection.execute(text("VACUUM FULL pg_statistic"))

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

import re
from collections.abc import Callable, Iterable, Sequence

import attrs
from sqlalchemy import Connection, Engine, Table, delete, select, text
from sqlalchemy.exc import OperationalError

__all__ = [
    "LOCK_TIMEOUT",
    "Marks",
    "escape_like",
    "mark",
    "qualified",
    "refresh_marked",
    "sampled",
    "split_name",
    "vacuum_catalog",
]

#: How long the refresh waits for a lock before leaving the mark for a later call.
LOCK_TIMEOUT = "2s"
#: PostgreSQL's SQLSTATE for a lock not obtained within ``lock_timeout``.
_LOCK_NOT_AVAILABLE = "55P03"

# The (schema given, table, column) among :schemas ('' for the current one) / :tables LIKE
# / :columns whose statistics sample :ids. The target columns are picked first (the
# MATERIALIZED CTE): a filter on ``pg_stats`` alone would be pushed down to every row of
# ``pg_statistic``, each column of each table (system catalogs, token columns) cast to text
# and compared with every id, 0.3-0.6 s a call for a page of 5,000 ids. Their sampled
# values then meet the ids in a hash semi-join rather than an array overlap (which compares
# every pair).
_SAMPLED = text(
    "WITH t AS MATERIALIZED (SELECT w.sch, s.tablename, s.attname, "
    "CAST(CAST(s.most_common_vals AS text) AS text[]) AS common, "
    "CAST(CAST(s.histogram_bounds AS text) AS text[]) AS bounds FROM pg_stats s "
    "JOIN unnest(CAST(:schemas AS text[]), CAST(:tables AS text[]), "
    "CAST(:columns AS text[])) AS w(sch, tab, col) "
    "ON s.schemaname = coalesce(nullif(w.sch, ''), current_schema()) "
    "AND s.tablename LIKE w.tab AND s.attname = w.col) "
    "SELECT DISTINCT t.sch, t.tablename, t.attname FROM t "
    "CROSS JOIN LATERAL unnest(t.common || t.bounds) AS sampled(v) "
    "WHERE sampled.v IN (SELECT unnest(CAST(:ids AS text[])))"
)

# How many values the statistics of :table's {column} (in :schema, '' for the current one)
# name that it no longer holds.
_STALE = (
    "SELECT count(*) FROM pg_stats s, LATERAL unnest("
    "CAST(CAST(s.most_common_vals AS text) AS text[]) "
    "|| CAST(CAST(s.histogram_bounds AS text) AS text[])) AS sampled(v) "
    "WHERE s.schemaname = coalesce(nullif(CAST(:schema AS text), ''), current_schema()) "
    "AND s.tablename = :table "
    "AND s.attname = :column AND NOT EXISTS (SELECT 1 FROM {table} t "
    "WHERE t.{column} = CAST(sampled.v AS {type}))"
)

_TYPE = text(
    "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
    "WHERE a.attrelid = to_regclass(:relation) AND a.attname = :column "
    "AND NOT a.attisdropped"
)

#: A mark's name for a table of a schema given explicitly: both parts quoted.
_QUALIFIED = re.compile(r'"((?:[^"]|"")*)"\."((?:[^"]|"")*)"')


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str | None, table: str) -> str:
    """How a mark names ``table``: its bare name in the current schema (the format marks
    always had), ``"schema"."table"`` in a schema given explicitly."""
    if not schema:
        return table
    return f"{_quoted(schema)}.{_quoted(table)}"


def split_name(name: str) -> tuple[str | None, str]:
    """The ``(schema, table)`` a mark's name stands for (schema ``None``: the current)."""
    found = _QUALIFIED.fullmatch(name)
    if found is None:
        return None, name
    return found.group(1).replace('""', '"'), found.group(2).replace('""', '"')


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
    connection: Connection,
    targets: Iterable[tuple[str, str] | tuple[str | None, str, str]],
    ids: Iterable[object],
) -> list[tuple[str, str]]:
    """The ``(table, column)`` of ``targets`` whose statistics sample one of ``ids``.

    A target is ``(table LIKE pattern, column)`` in the current schema, or ``(schema,
    table LIKE pattern, column)``; a table of a schema given is returned by its
    :func:`qualified` name."""
    triples = sorted(
        {(t[0] or "", t[1], t[2]) if len(t) == 3 else ("", t[0], t[1]) for t in targets}
    )
    wanted = sorted({str(i) for i in ids})
    if not triples or not wanted or connection.dialect.name != "postgresql":
        return []
    found = connection.execute(
        _SAMPLED,
        {
            "schemas": [s for s, _, _ in triples],
            "tables": [t for _, t, _ in triples],
            "columns": [c for _, _, c in triples],
            "ids": wanted,
        },
    ).all()
    return sorted((qualified(str(s), str(t)), str(c)) for s, t, c in found)


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
    (outside any transaction: ``VACUUM`` cannot run in one). True when some were marked.

    Each lock is waited for :data:`LOCK_TIMEOUT` at most: a lock queued behind another
    transaction's would stop every statement on that table (or, for ``pg_statistic``,
    every query planned) until that transaction ends. What could not be done keeps its
    mark and is done by a later call.
    """
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        key, value = marks.table.c[marks.key], marks.table.c[marks.value]
        found = connection.execute(
            select(key, value).where(key.startswith(marks.prefix, autoescape=True))
        ).all()
        if not found:
            return False
        connection.execute(text(f"SET lock_timeout = '{LOCK_TIMEOUT}'"))
        try:
            done = [
                target
                for target in sorted({marks.target(k, v) for k, v in found})
                if _waited(connection, _refresh_one, *target)
            ]
            if done and _waited(connection, vacuum_catalog):
                connection.execute(
                    delete(marks.table).where(
                        key.in_([k for k, v in found if marks.target(k, v) in done])
                    )
                )
        finally:
            connection.execute(text("RESET lock_timeout"))
    return True


def _waited(connection: Connection, step: Callable[..., None], *args: str) -> bool:
    """Run ``step``; False when it gave up waiting for a lock (``lock_timeout``)."""
    try:
        step(connection, *args)
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
            raise
        return False
    return True


def _refresh_one(connection: Connection, name: str, column: str) -> None:
    schema, bare = split_name(name)
    relation = qualified(schema, bare) if schema else _quoted(bare)
    sql_type = connection.execute(_TYPE, {"relation": relation, "column": column}).scalar()
    if sql_type is None:
        return  # dropped since: its statistics went with it
    table, quoted_column = relation, _quoted(column)
    connection.execute(text(f"ANALYZE {table} ({quoted_column})"))
    # ANALYZE keeps the old statistics of a table it finds empty, and a sample taken
    # while another writer's deletion was not committed may still hold its learners:
    # whatever the statistics still name that the table no longer holds is dropped with
    # the column's statistics (an ALTER COLUMN ... TYPE to its own type does that without
    # rewriting the table; autovacuum samples it again).
    stale = connection.execute(
        text(_STALE.format(table=table, column=quoted_column, type=sql_type)),
        {"schema": schema or "", "table": bare, "column": column},
    ).scalar_one()
    if stale:
        connection.execute(
            text(f"ALTER TABLE {table} ALTER COLUMN {quoted_column} TYPE {sql_type}")
        )


def vacuum_catalog(connection: Connection) -> None:
    """Rewrite ``pg_statistic`` (``connection`` in autocommit)."""
    # The rows ANALYZE replaced keep their values in the catalog's pages until then. It
    # needs the database's owner: otherwise PostgreSQL skips it with a warning and the
    # dead rows wait for autovacuum. Row versions a transaction still open may see are
    # copied, not dropped.
    connection.execute(text("VACUUM FULL pg_statistic"))

"""The toy LMS's own storage: one SQLite file with a forum and video-conference tables.

Privacy providers run in the manager's worker threads, so every operation opens its own
short-lived connection instead of sharing one across threads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from learnprivacy import ContextLevel, DataCategory, LawfulBasis
from learnprivacy.providers import (
    ApprovedContextList,
    ContentWriter,
    Context,
    DataDescription,
    MetadataCollection,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS forum_posts (
    id INTEGER PRIMARY KEY,
    forum_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS forum_subscriptions (
    forum_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    digest INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (forum_id, user_id)
);
CREATE TABLE IF NOT EXISTS videoconf_attendance (
    id INTEGER PRIMARY KEY,
    meeting_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    joined_at TEXT NOT NULL,
    minutes INTEGER NOT NULL
);
"""

#: Forums and meetings of the toy site; users are spread over them so that they share
#: contexts, which is what makes "delete only this user" worth testing.
FORUMS = ("F1", "F2", "F3")
MEETINGS = ("M1", "M2")

#: A fixed instant: the toy site never reads the clock.
EPOCH = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def activities(approved: ApprovedContextList) -> tuple[str, ...]:
    """The activities (forums, meetings: module contexts) among ``approved``'s contexts."""
    return tuple(c.instance_id for c in approved if c.level is ContextLevel.MODULE)


class ActivityTables:
    """What the toy activity providers share: tables of rows keyed by the activity (a
    module context) in their column ``key``, read, erased and scanned the same way."""

    component: str
    #: The tables the provider owns, for deletion and the raw scan.
    tables: Sequence[str]
    #: The column naming the activity (forum, meeting) of a row.
    key: str
    lms: ToyLMS
    #: Why the provider keeps its tables, and for how long after the user's last activity.
    purpose: str
    retention: str

    def __init__(self, lms: ToyLMS) -> None:
        self.lms = lms

    def declare_table(
        self,
        collection: MetadataCollection,
        table: str,
        columns: Mapping[str, str],
        summary: str,
        categories: Iterable[DataCategory],
        basis: LawfulBasis | str = LawfulBasis.CONTRACT,
    ) -> None:
        """Declare ``table`` and its described ``columns`` under the provider's purpose and
        retention (counted from the user's last activity)."""
        collection.add_database_table(
            table,
            columns,
            summary,
            purpose=self.purpose,
            basis=basis,
            categories=categories,
            retention=self.retention,
            retention_from="last_activity",
        )

    def write_described(
        self,
        writer: ContentWriter,
        table: str,
        description: str,
        rows: Iterable[Mapping[str, object]],
    ) -> None:
        """Tell the export what ``table`` holds and why (the provider's purpose, a
        contract, its retention), then write its ``rows``."""
        writer.describe(
            DataDescription(
                component=self.component,
                record_type=table,
                description=description,
                purpose=self.purpose,
                basis=LawfulBasis.CONTRACT,
                retention=self.retention,
            )
        )
        writer.write_rows(self.component, table, rows)

    def rows_of(
        self, approved: ApprovedContextList, table: str, columns: Collection[str], order: str
    ) -> list[dict[str, object]]:
        """``columns`` of the approved user's rows of ``table`` in the approved
        activities, one mapping per row."""
        rows = self.lms.rows_in(
            table, ", ".join(columns), self.key, approved.user_id, activities(approved), order
        )
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def delete_data_for_user(self, approved: ApprovedContextList) -> None:
        """Delete the user's rows of every table in the approved activities."""
        self.lms.delete_in(self.tables, self.key, activities(approved), (approved.user_id,))

    def delete_data_for_all_users_in_context(self, context: Context) -> None:
        """Delete every row of the activity of ``context``, whoever's."""
        if context.level is ContextLevel.MODULE:
            self.lms.delete_in(self.tables, self.key, (context.instance_id,))

    def raw_scan(self, user_id: str) -> dict[str, int]:
        """Rows of the provider's tables where any column equals ``user_id``."""
        return self.lms.raw_scan(user_id, self.tables)


def placeholders(values: Sequence[object]) -> str:
    """One ``?`` placeholder per value, for ``IN (...)``: values stay bound parameters."""
    return ",".join("?" * len(values))


class ToyLMS:
    """A tiny LMS keeping its data in the SQLite file at ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with self.connect() as conn:
            conn.executescript(SCHEMA)

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction: committed on success, rolled back on error."""
        conn = sqlite3.connect(self.path)
        # The toy site lives in throwaway files: skipping fsync keeps its tests fast. A real
        # LMS keeps its database's durability settings.
        conn.execute("PRAGMA synchronous = OFF")
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """Rows of a read-only query."""
        with self.connect() as conn:
            return conn.execute(sql, params).fetchall()

    def rows_in(
        self,
        table: str,
        columns: str,
        activity_column: str,
        user_id: str,
        activity_ids: Sequence[str],
        order: str,
    ) -> list[tuple[object, ...]]:
        """``columns`` of ``user_id``'s rows of ``table`` in the activities ``activity_ids``."""
        if not activity_ids:
            return []
        # Only names written in this package and "?" placeholders are interpolated; every
        # value is a bound parameter.
        return self.query(
            f"SELECT {columns} FROM {table} WHERE user_id = ?"  # noqa: S608
            f" AND {activity_column} IN ({placeholders(activity_ids)}) ORDER BY {order}",
            (user_id, *activity_ids),
        )

    def delete_in(
        self,
        tables: Sequence[str],
        activity_column: str,
        activity_ids: Sequence[str],
        user_ids: Sequence[str] | None = None,
    ) -> None:
        """Delete the rows of ``user_ids`` (of everyone when ``None``) in the activities
        ``activity_ids``, from every table of ``tables`` in one transaction: either all
        lose the rows, or none does."""
        if not activity_ids or (user_ids is not None and not user_ids):
            return
        where = f"{activity_column} IN ({placeholders(activity_ids)})"
        params: tuple[object, ...] = tuple(activity_ids)
        if user_ids is not None:
            where += f" AND user_id IN ({placeholders(user_ids)})"
            params += tuple(user_ids)
        with self.connect() as conn:
            for table in tables:
                conn.execute(f"DELETE FROM {table} WHERE {where}", params)  # noqa: S608

    # -- what the LMS does -------------------------------------------------------------

    def post(self, forum_id: str, user_id: str, subject: str, message: str, n: int) -> None:
        """Post a message in a forum (``n`` orders the posts in time)."""
        created = (EPOCH + dt.timedelta(minutes=n)).isoformat()
        with self.connect() as conn:
            conn.execute(
                "INSERT INTO forum_posts (forum_id, user_id, subject, message, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (forum_id, user_id, subject, message, created),
            )

    def subscribe(self, forum_id: str, user_id: str, *, digest: bool = False) -> None:
        """Subscribe a user to a forum (idempotent)."""
        with self.connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO forum_subscriptions (forum_id, user_id, digest)"
                " VALUES (?, ?, ?)",
                (forum_id, user_id, int(digest)),
            )

    def attend(self, meeting_id: str, user_id: str, display_name: str, minutes: int) -> None:
        """Record that a user joined a video-conference."""
        with self.connect() as conn:
            conn.execute(
                "INSERT INTO videoconf_attendance"
                " (meeting_id, user_id, display_name, joined_at, minutes) VALUES (?, ?, ?, ?, ?)",
                (meeting_id, user_id, display_name, EPOCH.isoformat(), minutes),
            )

    # -- what a privacy officer checks -----------------------------------------------------

    def raw_scan(self, user_id: str, tables: Sequence[str]) -> dict[str, int]:
        """Count, table by table, the rows where *any* column equals ``user_id``.

        This reads the storage directly, not through a provider, so a provider that forgets
        a table or a column cannot hide it.
        """
        found: dict[str, int] = {}
        with self.connect() as conn:
            for table in tables:
                columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
                where = " OR ".join(f"{column} = ?" for column in columns)
                sql = f"SELECT COUNT(*) FROM {table} WHERE {where}"  # noqa: S608 - own tables
                (count,) = conn.execute(sql, [user_id] * len(columns)).fetchone()
                if count:
                    found[table] = count
        return found

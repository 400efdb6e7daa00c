"""Reading Moodle users with their course completions into records, against plain Core SQL.

The site is a lean synthetic Moodle (``learnprivacy.testing.moodle``: accounts, courses,
enrolments, completions and course grades). Measured: ``MoodleDatabase.learners()`` plus
``MoodleDatabase.course_progress()`` into validated, typed records (streamed in chunks,
through the read-only guard). Floor: the same rows fetched with hand-written SQLAlchemy
Core SELECTs (same joins) into plain row tuples, in the same process. Target: within 1.5x.

Runs on SQLite, and on PostgreSQL and MariaDB too when a server can be started
(``TemporaryPostgres``, ``TemporaryMariaDB``).
``python -m benchmarks.bench_moodle [--quick]`` (from the repository root).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks._measure import compare, ratio_row
from learnprivacy.moodle import MoodleDatabase, MoodleSchema
from learnprivacy.testing.moodle import create_schema, populate

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
TARGET = 1.5


def _floor_statements(schema: MoodleSchema) -> list[sa.Select[Any]]:
    """The adapter's two queries, written by hand: what any script reading Moodle would run."""
    u, la = schema["user"], schema["user_lastaccess"]
    latest = (
        sa.select(la.c.userid, sa.func.max(la.c.timeaccess).label("timeaccess"))
        .group_by(la.c.userid)
        .subquery()
    )
    users = (
        sa.select(
            u.c.id, u.c.username, u.c.email, u.c.firstname, u.c.lastname,
            u.c.timecreated, u.c.firstaccess, u.c.lastaccess, latest.c.timeaccess,
        )
        .select_from(u.outerjoin(latest, latest.c.userid == u.c.id))
        .where(u.c.deleted == 0, u.c.username != "guest", u.c.id != 1)
        .order_by(u.c.id)
    )  # fmt: skip
    cc, gi, gg = schema["course_completions"], schema["grade_items"], schema["grade_grades"]
    ue, e = schema["user_enrolments"], schema["enrol"]
    joined = (
        sa.select(sa.func.min(ue.c.timecreated))
        .select_from(ue.join(e, e.c.id == ue.c.enrolid))
        .where(ue.c.userid == cc.c.userid, e.c.courseid == cc.c.course, ue.c.timecreated > 0)
        .scalar_subquery()
    )
    undated = sa.and_(
        cc.c.timeenrolled == 0, cc.c.timestarted == 0, sa.func.coalesce(cc.c.timecompleted, 0) == 0
    )
    completions = (
        sa.select(
            cc.c.id, cc.c.userid, cc.c.course, cc.c.timeenrolled, cc.c.timestarted,
            cc.c.timecompleted, gi.c.gradetype, gi.c.grademin, gi.c.grademax, gi.c.gradepass,
            gg.c.finalgrade, sa.case((undated, joined), else_=None),
        )
        .select_from(cc)
        .outerjoin(gi, sa.and_(gi.c.courseid == cc.c.course, gi.c.itemtype == "course"))
        .outerjoin(gg, sa.and_(gg.c.itemid == gi.c.id, gg.c.userid == cc.c.userid))
        .join(u, sa.and_(u.c.id == cc.c.userid, u.c.deleted == 0))
        .order_by(cc.c.id)
    )  # fmt: skip
    return [users, completions]


def _floor(engine: sa.Engine) -> int:
    count = 0
    with engine.connect() as connection:
        for statement in _floor_statements(MoodleSchema()):
            count += len(connection.execute(statement).all())
    return count


def _ours(engine: sa.Engine) -> int:
    with MoodleDatabase(engine) as db:
        return len(list(db.learners())) + len(list(db.course_progress()))


def _measure(label: str, engine: sa.Engine, users: int) -> dict[str, Any]:
    create_schema(engine)
    populate(
        engine,
        now=NOW,
        users=users,
        courses=40,
        activities=0,
        log_events_per_user=0,
        content=False,
    )
    _ours(engine)  # warm caches (pages, compiled statements) for both sides alike
    rows, records = _floor(engine), _ours(engine)
    samples = compare({"library": lambda: _ours(engine), "floor": lambda: _floor(engine)})
    low, high = samples["floor"].spread
    return {
        **ratio_row(
            f"moodle: {users:,} users + completions into records ({label})",
            samples["library"],
            samples["floor"],
            target=TARGET,
        ),
        "rows": rows,
        "records": records,
        "floor_spread": f"{low:.3g}–{high:.3g}",
        "load": os.getloadavg()[0],
    }


def _measure_at(label: str, url: str, users: int) -> dict[str, Any]:
    engine = sa.create_engine(url)
    try:
        return _measure(label, engine, users)
    finally:
        engine.dispose()


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Benchmark rows: SQLite always, PostgreSQL and MariaDB when a throwaway server starts."""
    users = 10_000 if quick else 100_000
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as directory:
        rows.append(_measure_at("SQLite", f"sqlite:///{Path(directory) / 'moodle.db'}", users))
    try:
        from learnprivacy.testing.postgres import PostgresUnavailable, TemporaryPostgres
    except ImportError:  # pragma: no cover - psycopg missing
        return rows
    from learnprivacy.testing.mariadb import MariaDBUnavailable, TemporaryMariaDB

    servers: list[tuple[str, Any, type[Exception]]] = [
        ("PostgreSQL", TemporaryPostgres, PostgresUnavailable),
        ("MariaDB", TemporaryMariaDB, MariaDBUnavailable),
    ]
    for label, server_type, unavailable in servers:
        try:
            with server_type(database="moodle_bench") as server:
                rows.append(_measure_at(label, server.url, users))
        except unavailable as exc:
            print(f"bench_moodle: {label} skipped ({exc})", file=sys.stderr)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv[1:]):
        print(
            f"{row['name']}: {row['value']:.3f}s CPU ({row['spread']}) "
            f"vs floor {row['floor']:.3f}s ({row['floor_spread']}) "
            f"= {row['ratio']:.2f}x (target {row['target']}) {'ok' if row['ok'] else 'MISSED'}, "
            f"{row['records']:,} records of {row['rows']:,} rows, load {row['load']:.1f}"
        )

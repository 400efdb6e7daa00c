"""A Moodle-shaped database for tests and demos, without a Moodle site (public API).

:func:`create_schema` creates the subset of Moodle's tables learnprivacy reads, with the
column names, types and indexes of Moodle's ``install.xml`` files, on any SQLAlchemy
engine. :func:`populate` fills it with a seeded, reproducible synthetic site: the guest and
admin accounts, learners (some deleted, suspended, never logged in, with an address Moodle
never validated), courses with and without end date, activities, completions, grades,
log-ins, policy acceptances, certificates (mod_customcert), forum posts, assignment
submissions, quiz attempts, messages, files, badges, notes, custom profile fields and a
data registry::

    import datetime as dt
    import sqlalchemy as sa
    from learnprivacy.moodle import MoodleDatabase
    from learnprivacy.testing.moodle import create_schema, populate

    engine = sa.create_engine("sqlite:///moodle-demo.db")
    create_schema(engine)
    summary = populate(engine, users=500, courses=12, seed=7,
                       now=dt.datetime(2026, 6, 15, tzinfo=dt.UTC))
    with MoodleDatabase("sqlite:///moodle-demo.db") as moodle:
        learners = list(moodle.learners())

Same ``seed``, ``now`` and sizes: same rows, on every engine.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from learnprivacy._validators import require_aware
from learnprivacy.errors import ValidationError
from learnprivacy.moodle._schema import MoodleSchema, reset_sequences
from learnprivacy.moodle._time import to_unix
from learnprivacy.testing._moodle_content import add_content
from learnprivacy.testing._moodle_courses import add_courses, add_enrolments
from learnprivacy.testing._moodle_glossary import add_glossaries
from learnprivacy.testing._moodle_people import add_logs, add_policies, add_users
from learnprivacy.testing._moodle_registry import add_registry
from learnprivacy.testing._moodle_state import FixtureSummary, SiteState

__all__ = ["FixtureSummary", "create_schema", "drop_schema", "insert_rows", "populate"]

_BATCH = 5_000


def create_schema(engine: sa.Engine, *, prefix: str = "mdl_") -> MoodleSchema:
    """Create the Moodle tables learnprivacy reads (those missing) and return the schema."""
    schema = MoodleSchema(prefix)
    schema.metadata.create_all(engine)
    return schema


def drop_schema(engine: sa.Engine, *, prefix: str = "mdl_") -> None:
    """Drop the tables :func:`create_schema` creates."""
    MoodleSchema(prefix).metadata.drop_all(engine)


def _python_default(column: sa.Column[Any]) -> Any:
    default = column.server_default
    if default is None:
        return None
    text = str(getattr(default, "arg", ""))
    if isinstance(column.type, sa.Integer):
        return int(text)
    if isinstance(column.type, sa.Numeric):
        return Decimal(text)
    return text


def _complete(table: sa.Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every row the same keys, filling omitted columns with their defaults.

    Batched inserts need one set of keys; NOT NULL text columns without default (which
    Moodle's own code always fills) get an empty string.
    """
    keys = {key for row in rows for key in row}
    fill: dict[str, Any] = {}
    for column in table.columns:
        if column.name in keys or column.primary_key:
            # An id left out is the database's to assign.
            continue
        value = _python_default(column)
        if value is None and not column.nullable:
            value = 0 if isinstance(column.type, sa.Integer | sa.Numeric) else ""
        fill[column.name] = value
    for name in keys:
        fill.setdefault(name, _python_default(table.c[name]))
    return [{**fill, **row} for row in rows]


def insert_rows(
    target: sa.Engine | sa.Connection,
    table: str,
    rows: list[dict[str, Any]],
    *,
    prefix: str = "mdl_",
) -> None:
    """Insert ``rows`` into Moodle table ``table`` (unprefixed), omitted columns defaulted.

    For hand-made scenarios on top of (or instead of) :func:`populate`: only the columns
    that matter need to be given, the others get Moodle's defaults.
    """
    if not rows:
        return
    sa_table = MoodleSchema(prefix)[table]
    complete = _complete(sa_table, rows)
    if isinstance(target, sa.Connection):
        target.execute(sa_table.insert(), complete)
        reset_sequences(target, [sa_table])
        return
    with target.begin() as connection:
        connection.execute(sa_table.insert(), complete)
        reset_sequences(connection, [sa_table])


def analyse(engine: sa.Engine, schema: MoodleSchema) -> None:
    """Give the planner statistics, as a live site's database has.

    A freshly filled database has none, and without them PostgreSQL (and MariaDB) pick
    plans fit for empty tables.
    """
    with engine.begin() as connection:
        if connection.dialect.name == "mysql":
            names = ", ".join(f"`{table.name}`" for table in schema.tables())
            connection.exec_driver_sql(f"ANALYZE TABLE {names}")
        else:
            connection.exec_driver_sql("ANALYZE")


def populate(
    engine: sa.Engine,
    *,
    now: dt.datetime,
    users: int = 200,
    courses: int = 12,
    seed: int = 7,
    prefix: str = "mdl_",
    activities: int = 4,
    log_events_per_user: float = 4.0,
    years: int = 6,
    content: bool = True,
    glossaries: bool = False,
) -> FixtureSummary:
    """Fill the tables of :func:`create_schema` with a synthetic site, in one transaction.

    ``users`` learners (plus the guest and admin accounts) and ``courses`` courses (plus
    the front page), ``activities`` activities per course, about ``log_events_per_user``
    log-ins per account that ever logged in, over ``years`` years before ``now``. Set
    ``activities=0`` and ``log_events_per_user=0`` for a lean site (accounts, courses,
    completions and course grades only). With ``content`` (the default) learners also
    have forum posts, assignment submissions and grades, quiz attempts, messages, files,
    badges, notes and custom profile fields, drawn from a random source of their own so
    that the other tables hold the same rows either way. With ``glossaries``, each course
    with activities also has a glossary, with entries by some of its learners (aliases,
    categories, tags, ratings by other learners), added last. The tables should be empty.
    """
    require_aware(now, "now")
    for name, value in (("users", users), ("courses", courses), ("activities", activities)):
        if not isinstance(value, int) or value < 0:
            raise ValidationError(f"{name} must be a non-negative integer", field=name)
    if years < 1:
        raise ValidationError("years must be at least 1", field="years")
    schema = MoodleSchema(prefix)
    state = SiteState(seed=seed, now=to_unix(now), years=years)
    state.context(10, 0, None)
    for setting, text in (("siteguest", "1"), ("siteadmins", "2")):
        state.add("config", {"name": setting, "value": text})
    add_courses(state, courses, activities)
    add_users(state, users)
    add_enrolments(state)
    add_logs(state, log_events_per_user)
    add_policies(state)
    protected = 3 if courses >= 2 else None
    add_registry(state, protected)
    if content:
        add_content(state, seed)
    if glossaries:
        add_glossaries(state, seed)
    with engine.begin() as connection:
        for table in schema.tables():
            rows = state.rows.get(table.name[len(prefix) :])
            if not rows:
                continue
            rows = _complete(table, rows)
            for start in range(0, len(rows), _BATCH):
                connection.execute(table.insert(), rows[start : start + _BATCH])
        reset_sequences(connection, schema.tables())
    analyse(engine, schema)
    notes = state.notes
    return FixtureSummary(
        counts={name: len(rows) for name, rows in sorted(state.rows.items())},
        guest_id=1,
        admin_id=2,
        learner_ids=frozenset(range(3, 3 + users)) - notes["deleted"],
        deleted_user_ids=frozenset(notes["deleted"]),
        suspended_user_ids=frozenset(notes["suspended"]),
        never_logged_in_user_ids=frozenset(notes["never_logged_in"]),
        invalid_email_user_ids=frozenset(notes["invalid_email"]),
        course_access_later_user_ids=frozenset(notes["course_access_later"]),
        course_ids=frozenset(state.courses),
        courses_without_end_date=frozenset(notes["no_end_date"]),
        protected_course_id=protected,
    )

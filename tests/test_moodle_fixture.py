"""learnprivacy.testing.moodle: a reproducible synthetic Moodle site on any engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from learnprivacy.errors import ValidationError
from learnprivacy.moodle import MoodleDatabase, MoodleSchema, ScanIssues
from learnprivacy.moodle._time import from_unix, to_unix
from learnprivacy.testing.moodle import FixtureSummary, create_schema, populate
from tests import NOW
from tests.conftest import open_engine


def build(url: str, **options: Any) -> tuple[sa.Engine, FixtureSummary]:
    """Create and populate a fixture site at ``url``."""
    engine = open_engine(url)
    create_schema(engine)
    return engine, populate(engine, now=NOW, **options)


def dump(engine: sa.Engine, tables: tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables``, ordered by id, numbers normalised across engines."""
    schema = MoodleSchema()
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for name in tables:
            table = schema[name]
            rows = connection.execute(sa.select(table).order_by(table.c.id)).all()
            out[name] = [
                tuple(float(v) if hasattr(v, "as_tuple") else v for v in row) for row in rows
            ]
    return out


TABLES = (
    "user",
    "course",
    "course_completions",
    "grade_grades",
    "logstore_standard_log",
    "tool_policy_acceptances",
    "customcert_issues",
    "tool_dataprivacy_purpose",
)


@pytest.fixture(scope="module")
def site(new_database: Callable[[], str]) -> Iterator[tuple[sa.Engine, FixtureSummary]]:
    """One medium site per engine, shared by the read-only checks."""
    engine, summary = build(new_database(), users=400, courses=10, seed=3)
    yield engine, summary
    engine.dispose()


def test_same_seed_same_rows_other_seed_other_rows(tmp_path: Path) -> None:
    """populate is reproducible: same seed and now give the same rows, another seed differs."""
    first, _ = build(f"sqlite:///{tmp_path / 'a.db'}", users=60, courses=5, seed=11)
    again, _ = build(f"sqlite:///{tmp_path / 'b.db'}", users=60, courses=5, seed=11)
    other, _ = build(f"sqlite:///{tmp_path / 'c.db'}", users=60, courses=5, seed=12)
    assert dump(first, TABLES) == dump(again, TABLES)
    assert dump(first, ("user",)) != dump(other, ("user",))


def test_every_engine_gets_the_same_site_as_sqlite(
    tmp_path: Path, new_database: Callable[[], str]
) -> None:
    """The same call fills PostgreSQL and MariaDB with exactly the rows it gives SQLite."""
    lite, _ = build(f"sqlite:///{tmp_path / 'a.db'}", users=80, courses=6, seed=5)
    pg, _ = build(new_database(), users=80, courses=6, seed=5)
    try:
        assert dump(lite, TABLES) == dump(pg, TABLES)
        # Sequences were moved past the explicit ids: Moodle could go on inserting.
        user = MoodleSchema()["user"]
        with pg.begin() as connection:
            result = connection.execute(
                user.insert().values(username="new", email="new@example.org")
            )
            new_id = result.inserted_primary_key[0]
        assert new_id == 80 + 3
    finally:
        pg.dispose()


def test_summary_matches_the_tables(site: tuple[sa.Engine, FixtureSummary]) -> None:
    """The summary's counts are the tables' row counts, and every kind of account exists."""
    engine, summary = site
    schema = MoodleSchema()
    with engine.connect() as connection:
        for name, count in summary.counts.items():
            table = schema[name]
            assert connection.execute(sa.select(sa.func.count()).select_from(table)).scalar() == (
                count
            )
    assert summary.counts["user"] == 400 + 2
    for notable in (
        summary.deleted_user_ids,
        summary.suspended_user_ids,
        summary.never_logged_in_user_ids,
        summary.invalid_email_user_ids,
        summary.courses_without_end_date,
    ):
        assert notable
    assert not summary.deleted_user_ids & summary.learner_ids
    assert summary.courses_without_end_date <= summary.course_ids


def test_adapter_reads_what_the_fixture_promises(site: tuple[sa.Engine, FixtureSummary]) -> None:
    """Through the adapter, each kind of fixture account shows the behaviour it stands for."""
    engine, summary = site
    issues = ScanIssues()
    with MoodleDatabase(engine) as db:
        learners = {int(learner.id): learner for learner in db.learners(issues=issues)}
        users = {u.id: u for u in db.users()}
        courses = {c.id: c for c in db.courses()}
    # The admin is a learner too; the guest, deleted accounts and bad addresses are not.
    assert set(learners) == summary.learner_ids - summary.invalid_email_user_ids
    assert {i.row_id for i in issues if i.table == "user"} == set(summary.invalid_email_user_ids)
    for uid in summary.never_logged_in_user_ids:
        assert learners[uid].last_activity_at is None
    for uid in summary.course_access_later_user_ids & set(learners):
        assert users[uid].last_course_access_at is not None
        assert learners[uid].last_activity_at == users[uid].last_course_access_at
        assert users[uid].last_access_at is not None
        assert learners[uid].last_activity_at > users[uid].last_access_at
    assert {cid for cid, c in courses.items() if c.end_at is None} == set(
        summary.courses_without_end_date
    )
    assert all(
        learner.last_activity_at is None or learner.last_activity_at <= NOW
        for learner in learners.values()
    )


def test_every_timestamp_is_in_the_past(site: tuple[sa.Engine, FixtureSummary]) -> None:
    """The synthetic history ends at now: no event, grade or consent lies in the future."""
    engine, _ = site
    schema = MoodleSchema()
    limit = to_unix(NOW)
    checks = {
        "user": "lastaccess",
        "course_completions": "timecompleted",
        "grade_grades": "timemodified",
        "logstore_standard_log": "timecreated",
        "tool_policy_acceptances": "timemodified",
        "customcert_issues": "timecreated",
    }
    with engine.connect() as connection:
        for name, column in checks.items():
            latest = connection.execute(sa.select(sa.func.max(schema[name].c[column]))).scalar()
            assert latest is not None
            assert latest <= limit
            assert from_unix(latest) is not None


def test_lean_site_has_no_activities_or_logs(tmp_path: Path) -> None:
    """activities=0 and no log events give accounts, courses and completions only."""
    _, summary = build(
        f"sqlite:///{tmp_path / 'lean.db'}",
        users=30,
        courses=3,
        activities=0,
        log_events_per_user=0,
    )
    assert "logstore_standard_log" not in summary.counts
    assert "course_modules_completion" not in summary.counts
    assert summary.counts["course_completions"] > 0


@pytest.mark.parametrize(
    "options",
    [
        {"now": dt.datetime(2026, 6, 15)},  # naive
        {"now": NOW, "users": -1},
        {"now": NOW, "courses": 1.5},
        {"now": NOW, "years": 0},
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], tmp_path: Path) -> None:
    """A naive now, negative sizes and an empty history are validation errors."""
    engine = open_engine(f"sqlite:///{tmp_path / 'x.db'}")
    create_schema(engine)
    with pytest.raises(ValidationError):
        populate(engine, **options)

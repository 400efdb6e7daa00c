"""Retention sweeps on the application's own tables: activity from every row, consents.

The same rules as the store's sweep: a learner's last activity is the latest date their
rows show (an account whose login date lags behind recent progress is active), and what
rests only on a consent ends when that consent is withdrawn or expires.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import ForeignKey, create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import learnprivacy.sqlalchemy as lps
from learnprivacy import DataCategory, LawfulBasis
from learnprivacy.crypto import Keyring
from learnprivacy.retention import Hold, Period, RetentionRule, Schedule, Trigger
from tests import NOW

UTC = dt.UTC
LONG_AGO = dt.datetime(2023, 1, 10, tzinfo=UTC)
RECENT = NOW - dt.timedelta(days=20)


def _models() -> SimpleNamespace:
    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = "users"
        __privacy__ = lps.Privacy(
            subject="id", purpose="accounts", basis=LawfulBasis.CONTRACT, activity="last_login_at"
        )
        id: Mapped[str] = mapped_column(primary_key=True)
        name: Mapped[str] = lps.personal(DataCategory.IDENTITY, "Name")
        last_login_at: Mapped[dt.datetime | None] = lps.not_personal("Last login", nullable=True)

    class Progress(Base):
        __tablename__ = "progress"
        __privacy__ = lps.Privacy(
            subject="learner_id",
            purpose="progress",
            basis=LawfulBasis.CONTRACT,
            activity="recorded_at",
        )
        id: Mapped[int] = mapped_column(primary_key=True)
        learner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
        note: Mapped[str] = lps.personal(DataCategory.LEARNING, "Tutor's note")
        recorded_at: Mapped[dt.datetime] = lps.not_personal("When it was recorded")

    return SimpleNamespace(Base=Base, User=User, Progress=Progress)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[SimpleNamespace]:
    m = _models()
    privacy = lps.LearnPrivacy(
        m.Base, keyring=Keyring.generate(), keys=f"sqlite:///{tmp_path / 'keys.db'}"
    )
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    m.Base.metadata.create_all(engine)
    yield SimpleNamespace(m=m, privacy=privacy, engine=engine)
    privacy.close()
    engine.dispose()


def _activity_schedule(m: SimpleNamespace) -> Schedule:
    rule = RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY)
    return Schedule({m.User: rule, m.Progress: rule})


def test_recent_progress_keeps_a_learner_whose_login_is_old(app: SimpleNamespace) -> None:
    """Attack: an active learner (old account login, progress last month) is not erased;
    a learner whose every row is old is."""
    m = app.m
    with Session(app.engine) as s:
        s.add(m.User(id="active", name="Ana", last_login_at=LONG_AGO))
        s.add(m.User(id="gone", name="Bob", last_login_at=LONG_AGO))
        s.flush()
        s.add(m.Progress(learner_id="active", note="early", recorded_at=LONG_AGO))
        s.add(m.Progress(learner_id="active", note="module 4", recorded_at=RECENT))
        s.add(m.Progress(learner_id="gone", note="once", recorded_at=LONG_AGO))
        s.commit()
        dry = app.privacy.sweep(s, _activity_schedule(m), now=NOW, dry_run=True)
        report = app.privacy.sweep(s, _activity_schedule(m), now=NOW)
    assert (dry.erased, report.erased) == (2, 2)
    assert report.by_type["Progress"]["erased"] == 1
    assert report.by_type["User"]["erased"] == 1
    with Session(app.engine) as s:
        assert s.scalars(select(m.User.name)).all() == ["Ana"]
        assert sorted(s.scalars(select(m.Progress.note))) == ["early", "module 4"]


def test_a_learner_without_an_account_row_is_seen_through_their_rows(tmp_path: Path) -> None:
    """No learners' table: the rows' own activity decides, learner by learner."""

    class Base(DeclarativeBase):
        pass

    class Attempt(Base):
        __tablename__ = "attempts"
        __privacy__ = lps.Privacy(
            subject="learner_id", purpose="quizzes", basis=LawfulBasis.CONTRACT, activity="at"
        )
        id: Mapped[int] = mapped_column(primary_key=True)
        learner_id: Mapped[str]
        answer: Mapped[str] = lps.personal(DataCategory.ASSESSMENT, "Answer")
        at: Mapped[dt.datetime] = lps.not_personal("When")

    privacy = lps.LearnPrivacy(
        Base, keyring=Keyring.generate(), keys=f"sqlite:///{tmp_path / 'k.db'}"
    )
    engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    Base.metadata.create_all(engine)
    schedule = Schedule({Attempt: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY)})
    try:
        with Session(engine) as s:
            s.add(Attempt(learner_id="a", answer="old", at=LONG_AGO))
            s.add(Attempt(learner_id="a", answer="new", at=RECENT))
            s.add(Attempt(learner_id="b", answer="only old", at=LONG_AGO))
            s.commit()
            report = privacy.sweep(s, schedule, now=NOW)
            assert report.erased == 1
            assert sorted(s.scalars(select(Attempt.answer))) == ["new", "old"]
    finally:
        privacy.close()
        engine.dispose()


def test_a_hold_still_wins_over_old_activity(app: SimpleNamespace) -> None:
    """Activity read from rows does not bypass holds."""
    m = app.m
    with Session(app.engine) as s:
        s.add(m.User(id="gone", name="Bob", last_login_at=LONG_AGO))
        s.flush()
        s.add(m.Progress(learner_id="gone", note="once", recorded_at=LONG_AGO))
        s.commit()
        hold = Hold("audit 2026-2", subject="gone", record_type=m.Progress)
        report = app.privacy.sweep(s, _activity_schedule(m), now=NOW, holds=[hold])
    assert report.erased == 0
    with app.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM progress")).scalar_one() == 1

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
from sqlalchemy import ForeignKey, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

import learnprivacy.sqlalchemy as lps
from learnprivacy import DataCategory, LawfulBasis
from learnprivacy.crypto import Keyring
from learnprivacy.retention import Action, Hold, Period, RetentionRule, Schedule, Trigger
from tests import NOW
from tests.inplace_models import accounts, bound, new_base

UTC = dt.UTC
LONG_AGO = dt.datetime(2023, 1, 10, tzinfo=UTC)
RECENT = NOW - dt.timedelta(days=20)


def _models() -> SimpleNamespace:
    Base, User = accounts()

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
    with bound(tmp_path, m.Base) as (privacy, engine):
        yield SimpleNamespace(m=m, privacy=privacy, engine=engine)


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

    Base = new_base()

    class Attempt(Base):
        __tablename__ = "attempts"
        __privacy__ = lps.Privacy(
            subject="learner_id", purpose="quizzes", basis=LawfulBasis.CONTRACT, activity="at"
        )
        id: Mapped[int] = mapped_column(primary_key=True)
        learner_id: Mapped[str]
        answer: Mapped[str] = lps.personal(DataCategory.ASSESSMENT, "Answer")
        at: Mapped[dt.datetime] = lps.not_personal("When")

    schedule = Schedule({Attempt: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY)})
    with (
        bound(tmp_path, Base, keys="k.db", app="a.db") as (privacy, engine),
        Session(engine) as s,
    ):
        s.add(Attempt(learner_id="a", answer="old", at=LONG_AGO))
        s.add(Attempt(learner_id="a", answer="new", at=RECENT))
        s.add(Attempt(learner_id="b", answer="only old", at=LONG_AGO))
        s.commit()
        report = privacy.sweep(s, schedule, now=NOW)
        assert report.erased == 1
        assert sorted(s.scalars(select(Attempt.answer))) == ["new", "old"]


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


def _consent_models() -> SimpleNamespace:
    Base, User = accounts()

    class Agreement(Base):
        """The consents, under the application's own column names."""

        __tablename__ = "agreements"
        __privacy__ = lps.Privacy(
            subject="user_id",
            purpose="consent-management",
            basis=LawfulBasis.LEGAL_OBLIGATION,
            consents={"purpose": "topic", "given_at": "agreed_at", "expires_at": "valid_until"},
        )
        id: Mapped[int] = mapped_column(primary_key=True)
        user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
        topic: Mapped[str] = lps.not_personal("Purpose consented to")
        agreed_at: Mapped[dt.datetime] = lps.not_personal("When")
        withdrawn_at: Mapped[dt.datetime | None] = lps.not_personal("Withdrawn", nullable=True)
        valid_until: Mapped[dt.datetime | None] = lps.not_personal("Lapses", nullable=True)

    class Interest(Base):
        """Newsletter topics: held on consent only."""

        __tablename__ = "interests"
        __privacy__ = lps.Privacy(
            subject="user_id", purpose="newsletter", basis=LawfulBasis.CONSENT, created="at"
        )
        id: Mapped[int] = mapped_column(primary_key=True)
        user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
        topic: Mapped[str] = lps.personal(DataCategory.PREFERENCE, "Topic of interest")
        at: Mapped[dt.datetime] = lps.not_personal("Since")

    class Visit(Base):
        """Analytics visits: anonymised (statistics kept) when the consent ends."""

        __tablename__ = "visits"
        __privacy__ = lps.Privacy(
            subject="user_id", purpose="analytics", basis=LawfulBasis.CONSENT, created="at"
        )
        id: Mapped[int] = mapped_column(primary_key=True)
        user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
        page: Mapped[str] = lps.personal(DataCategory.TECHNICAL_LOG, "Page seen")
        at: Mapped[dt.datetime] = lps.not_personal("When")

    return SimpleNamespace(
        Base=Base, User=User, Agreement=Agreement, Interest=Interest, Visit=Visit
    )


def _consent_schedule(m: SimpleNamespace) -> Schedule:
    three_years = Period.parse("P3Y")
    return Schedule(
        {
            m.User: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
            m.Interest: RetentionRule(
                three_years, Trigger.CREATED, purpose="newsletter", basis=LawfulBasis.CONSENT
            ),
            m.Visit: RetentionRule(
                three_years,
                Trigger.CREATED,
                purpose="analytics",
                basis=LawfulBasis.CONSENT,
                action=Action.ANONYMISE,
            ),
        }
    )


@pytest.fixture
def consent_app(tmp_path: Path) -> Iterator[SimpleNamespace]:
    m = _consent_models()
    with bound(tmp_path, m.Base) as (privacy, engine):
        month_ago = NOW - dt.timedelta(days=30)
        with Session(engine) as s:
            for who in ("expired", "withdrawn", "current", "never"):
                s.add(m.User(id=who, name=who.title(), last_login_at=NOW))
            s.flush()
            s.add(
                m.Agreement(
                    user_id="expired", topic="newsletter", agreed_at=LONG_AGO, valid_until=month_ago
                )
            )
            s.add(
                m.Agreement(
                    user_id="withdrawn",
                    topic="newsletter",
                    agreed_at=LONG_AGO,
                    withdrawn_at=month_ago,
                )
            )
            s.add(m.Agreement(user_id="withdrawn", topic="analytics", agreed_at=LONG_AGO))
            # Renewed: the old consent expired, the new one stands.
            s.add(
                m.Agreement(
                    user_id="current", topic="newsletter", agreed_at=LONG_AGO, valid_until=month_ago
                )
            )
            s.add(m.Agreement(user_id="current", topic="newsletter", agreed_at=month_ago))
            s.add(
                m.Agreement(
                    user_id="current", topic="analytics", agreed_at=LONG_AGO, valid_until=RECENT
                )
            )
            for who in ("expired", "withdrawn", "current", "never"):
                s.add(m.Interest(user_id=who, topic=f"{who} likes maths", at=RECENT))
                s.add(m.Visit(user_id=who, page=f"/{who}/page", at=RECENT))
            s.commit()
        yield SimpleNamespace(m=m, privacy=privacy, engine=engine)


def test_what_rests_on_an_ended_consent_goes_within_its_period(
    consent_app: SimpleNamespace,
) -> None:
    """Attack: rows well within their three years, on a consent that expired or was
    withdrawn, are ended by the sweep with the rule's action; a renewed consent, another
    purpose and a learner with no consent row keep theirs; accounts stay."""
    app, m = consent_app, consent_app.m
    schedule = _consent_schedule(m)
    with Session(app.engine) as s:
        dry = app.privacy.sweep(s, schedule, now=NOW, dry_run=True)
        report = app.privacy.sweep(s, schedule, now=NOW)
    assert (dry.erased, dry.anonymised) == (report.erased, report.anonymised) == (2, 1)
    assert report.by_type["Interest"]["erased"] == 2
    assert report.by_type["Visit"]["anonymised"] == 1
    with Session(app.engine) as s:
        interests = sorted(s.scalars(select(m.Interest.user_id)))
        assert interests == ["current", "never"]
        owners = sorted(str(v) for v in s.scalars(select(m.Visit.user_id)))
        # The current learner's analytics consent lapsed last week too.
        assert owners == ["None", "expired", "never", "withdrawn"]
        assert len(s.scalars(select(m.User.id)).all()) == 4
        pages = s.execute(text("SELECT page FROM visits WHERE user_id IS NULL")).scalars().all()
        assert all(p is None or not p.startswith("/") for p in pages)
        actions = [e.action for e in app.privacy.audit(s).entries()]
        assert "erase" in actions
        assert "anonymise" in actions
        reasons = {e.details.get("reason") for e in app.privacy.audit(s).entries()}
        assert "consent to newsletter ended (GDPR Art. 7(3))" in reasons
        again = app.privacy.sweep(s, schedule, now=NOW)
    assert (again.erased, again.anonymised) == (0, 0)


def test_a_hold_restricts_what_an_ended_consent_would_erase(
    consent_app: SimpleNamespace,
) -> None:
    """Holds win over consent expiry: the row is restricted, not erased."""
    app, m = consent_app, consent_app.m
    hold = Hold("complaint 2026-7", subject="expired", record_type=m.Interest)
    with Session(app.engine) as s:
        report = app.privacy.sweep(s, _consent_schedule(m), now=NOW, holds=[hold])
        assert report.by_type["Interest"]["erased"] == 1
        assert report.by_type["Interest"]["restricted"] == 1
        kept = select(m.Interest.topic).where(m.Interest.user_id == "expired")
        assert s.scalars(kept).all() == []
        assert s.scalars(kept.execution_options(include_restricted=True)).all() == [
            "expired likes maths"
        ]


def test_consent_declarations_are_checked(tmp_path: Path) -> None:
    """A consents mapping naming a missing or personal column is refused at binding."""
    from learnprivacy.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="consents"):
        lps.Privacy(subject="u", purpose="p", basis=LawfulBasis.CONSENT, consents={"reason": "x"})
    with pytest.raises(ConfigurationError, match="given_at"):
        lps.Privacy(
            subject="u", purpose="p", basis=LawfulBasis.CONSENT, consents={"given_at": None}
        )

    Base = new_base()

    class Agreement(Base):
        __tablename__ = "agreements"
        __privacy__ = lps.Privacy(
            subject="user_id", purpose="consents", basis=LawfulBasis.CONSENT, consents=True
        )
        id: Mapped[int] = mapped_column(primary_key=True)
        user_id: Mapped[str]
        purpose: Mapped[str] = lps.personal(DataCategory.CONSENT, "Purpose")
        given_at: Mapped[dt.datetime] = lps.not_personal("Given")
        withdrawn_at: Mapped[dt.datetime | None] = lps.not_personal("Withdrawn", nullable=True)

    with pytest.raises(ConfigurationError, match=r"expires_at|agreements\.purpose"):
        lps.LearnPrivacy(Base, keyring=Keyring.generate(), keys=f"sqlite:///{tmp_path / 'k.db'}")

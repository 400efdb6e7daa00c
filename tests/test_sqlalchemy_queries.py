"""The application's own ORM queries: restricted rows left out, personal columns in clear."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import ForeignKey, func, select, text
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column, relationship

import learnprivacy.sqlalchemy as lps
from learnprivacy import DataCategory, LawfulBasis
from learnprivacy.errors import DecryptionError, KeyShreddedError
from tests import NOW
from tests.inplace_models import (
    accounts,
    add_sqlmodel_ana,
    add_users,
    bound,
    declarative_models,
    restrict_user,
    sqlmodel_models,
)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """Users and posts of two learners (Ana, u1; Bob, u2) on SQLite, keys apart."""
    models = declarative_models()
    with bound(tmp_path, models.Base) as (privacy, engine):
        add_users(engine, models, "Ana writes")
        yield SimpleNamespace(m=models, privacy=privacy, engine=engine)


def restrict_ana(app: SimpleNamespace) -> None:
    restrict_user(app)
    with Session(app.engine) as s:
        post = s.scalars(select(app.m.Post).where(app.m.Post.author_id == "u1")).one()
        assert app.privacy.restrict(s, post, reason="dispute", now=NOW)
        s.commit()


def test_ordinary_queries_leave_restricted_rows_out(app: SimpleNamespace) -> None:
    """select, get, column selects, joins and aliases do not return restricted rows."""
    m = app.m
    restrict_ana(app)
    with Session(app.engine) as s:
        assert [u.id for u in s.scalars(select(m.User))] == ["u2"]
        assert s.get(m.User, "u1") is None
        assert s.scalars(select(m.User.id).order_by(m.User.id)).all() == ["u2"]
        assert s.scalar(select(func.count()).select_from(m.User)) == 1
        assert s.scalars(select(m.Post.body)).all() == ["Bob writes"]
        joined = select(m.Post.id).join(m.User, m.User.id == m.Post.author_id)
        assert len(s.scalars(joined).all()) == 1
        other = aliased(m.User)
        assert s.scalars(select(other.id)).all() == ["u2"]
        assert [u.id for u in s.query(m.User)] == ["u2"]
        # The restriction stands in the database: raw SQL still finds the row.
        assert s.execute(text("SELECT count(*) FROM users")).scalar_one() == 2


def test_restricted_rows_are_seen_when_asked(app: SimpleNamespace) -> None:
    """execution_options(include_restricted=True) sees them; lifting brings them back."""
    m = app.m
    restrict_ana(app)
    with Session(app.engine) as s:
        everyone = select(m.User).order_by(m.User.id).execution_options(include_restricted=True)
        assert [u.email for u in s.scalars(everyone)] == ["ana@example.org", "bob@example.org"]
        ana = s.get(m.User, "u1", execution_options={"include_restricted": True})
        assert ana is not None
        assert ana.name == "Ana Silva"
        assert [u.id for u in app.privacy.find(s, m.User.email, "ana@example.org")] == []
        found = app.privacy.find(s, m.User.email, "ana@example.org", include_restricted=True)
        assert [u.id for u in found] == ["u1"]
        assert app.privacy.lift_restriction(s, ana, now=NOW)
        s.commit()
    with Session(app.engine) as s:
        assert s.get(m.User, "u1") is not None
        # The post stays restricted: only the account was lifted.
        assert s.scalars(select(m.Post.body)).all() == ["Bob writes"]


def test_exports_still_hold_restricted_rows(app: SimpleNamespace, tmp_path: Path) -> None:
    """The learner's own export reads restricted rows (marked), whatever queries see."""
    restrict_ana(app)
    with Session(app.engine) as s:
        rows = list(app.privacy.iter_rows(s, "u1"))
    assert {spec.table for spec, _ in rows} == {"users", "forum_posts"}
    assert all(row.get("restricted") is True for _, row in rows)


def test_a_relationship_load_leaves_restricted_rows_out(tmp_path: Path) -> None:
    """Lazy and eager loads of a relationship skip restricted rows too."""

    Base, Learner = accounts()

    class Note(Base):
        __tablename__ = "notes"
        __privacy__ = lps.Privacy(subject="learner_id", purpose="notes", basis=LawfulBasis.CONTRACT)
        id: Mapped[int] = mapped_column(primary_key=True)
        learner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
        text: Mapped[str] = lps.personal(DataCategory.COMMUNICATION, "Note")

    # The learners' accounts gain their notes, as a one-to-many relationship.
    Learner.notes = relationship(Note, order_by=Note.id)

    with bound(tmp_path, Base, keys="k.db", app="a.db") as (privacy, engine):
        with Session(engine) as s:
            s.add(Learner(id="u1", name="Ana", notes=[Note(text="one"), Note(text="two")]))
            s.commit()
            first = s.scalars(select(Note).order_by(Note.id)).first()
            assert privacy.restrict(s, first, reason="dispute", now=NOW)
            s.commit()
        with Session(engine) as s:
            learner = s.get(Learner, "u1")
            assert [n.text for n in learner.notes] == ["two"]
        from sqlalchemy.orm import selectinload

        with Session(engine) as s:
            learner = s.scalars(select(Learner).options(selectinload(Learner.notes))).one()
            assert [n.text for n in learner.notes] == ["two"]


def test_personal_columns_selected_alone_come_back_clear(app: SimpleNamespace) -> None:
    """select(User.email) gives the e-mail, not its token, in every form of result."""
    m = app.m
    with Session(app.engine) as s:
        assert s.scalars(select(m.User.email).order_by(m.User.id)).all() == [
            "ana@example.org",
            "bob@example.org",
        ]
        assert s.scalar(select(m.User.name).where(m.User.id == "u1")) == "Ana Silva"
        rows = s.execute(
            select(m.Post.body, m.User.email, m.Post.id)
            .join(m.User, m.User.id == m.Post.author_id)
            .order_by(m.Post.id)
        ).all()
        assert [(r.body, r.email) for r in rows] == [
            ("Ana writes", "ana@example.org"),
            ("Bob writes", "bob@example.org"),
        ]
        assert list(rows[0]._mapping) == ["body", "email", "id"]
        other = aliased(m.User)
        pairs = s.execute(select(m.User.email, other.name).join(other, other.id != m.User.id))
        assert sorted(tuple(p) for p in pairs) == [
            ("ana@example.org", "Bob"),
            ("bob@example.org", "Ana Silva"),
        ]
        assert sorted(e for (e,) in s.query(m.User.email)) == [
            "ana@example.org",
            "bob@example.org",
        ]
        mapping = s.execute(select(m.User.email).where(m.User.id == "u2")).mappings().one()
        assert dict(mapping) == {"email": "bob@example.org"}
        for value in s.scalars(select(m.User.email)):
            assert not value.startswith("lp1.")


def test_a_moved_token_fails_in_a_column_select_too(app: SimpleNamespace) -> None:
    """A token copied to another row does not open there when selected alone either."""
    with app.engine.begin() as c:
        token = c.execute(text("SELECT email FROM users WHERE id='u1'")).scalar_one()
        c.execute(text("UPDATE users SET email=:t WHERE id='u2'"), {"t": token})
    with Session(app.engine) as s, pytest.raises(DecryptionError, match=r"users\.email") as caught:
        s.scalars(select(app.m.User.email)).all()
    assert token not in str(caught.value)


def test_an_erased_learner_reads_as_shredded_in_a_column_select(app: SimpleNamespace) -> None:
    """Once the learner's key is shredded, a copy of their token raises, never leaks."""
    with app.engine.connect() as c:
        token = c.execute(text("SELECT name FROM users WHERE id='u1'")).scalar_one()
    with Session(app.engine) as s:
        app.privacy.erase_subject(s, "u1", now=NOW)
        s.commit()
    with app.engine.begin() as c:
        c.execute(text("INSERT INTO users (id, email, name) VALUES ('u1', :t, :t)"), {"t": token})
    with Session(app.engine) as s, pytest.raises(KeyShreddedError, match=r"users\.name"):
        s.scalars(select(app.m.User.name).where(app.m.User.id == "u1")).all()


def test_sqlmodel_column_selects_come_back_clear(tmp_path: Path) -> None:
    """SQLModel's session.exec(select(User.email)) gives values too."""
    from sqlmodel import Session as SQLModelSession
    from sqlmodel import select as sqlmodel_select

    models = sqlmodel_models()
    with bound(tmp_path, models.Base) as (_, engine), SQLModelSession(engine) as s:
        add_sqlmodel_ana(s, models)
        assert s.exec(sqlmodel_select(models.User.email)).all() == ["ana@example.org"]
        assert s.exec(sqlmodel_select(models.Post.body, models.Post.id)).one()[0] == "hello"


def test_unused_dates_are_untouched(app: SimpleNamespace) -> None:
    """Clear columns selected alone are returned as stored (no decryption involved)."""
    with Session(app.engine) as s:
        created = s.scalars(select(app.m.User.created_at)).all()
    assert created == [NOW.replace(tzinfo=None)] * 2
    assert isinstance(created[0], dt.datetime)

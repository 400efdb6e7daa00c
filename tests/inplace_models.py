"""Application models for the in-place integration tests: built fresh for every test.

An application's models are bound once to one LearnPrivacy, so each test builds its own
classes (a new declarative base, or new SQLModel classes on a new registry).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, ForeignKey, Numeric, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import learnprivacy.sqlalchemy as lps
from learnprivacy import DataCategory, LawfulBasis
from learnprivacy.crypto import Keyring
from tests import NOW


def new_base() -> Any:
    """A new, empty SQLAlchemy 2 declarative base: each test binds its own models once."""

    class Base(DeclarativeBase):
        pass

    return Base


def bind(
    tmp_path: Path,
    base: Any,
    *,
    keys: str = "keys.db",
    app: str = "app.db",
    keyring: Keyring | None = None,
) -> tuple[lps.LearnPrivacy, Engine]:
    """The models of ``base`` bound (``keyring``, a new one by default) to a key database
    ``keys`` in ``tmp_path``, and an engine on a new application database ``app`` beside
    it, with their tables."""
    privacy = lps.LearnPrivacy(
        base, keyring=keyring or Keyring.generate(), keys=f"sqlite:///{tmp_path / keys}"
    )
    engine = create_engine(f"sqlite:///{tmp_path / app}")
    base.metadata.create_all(engine)
    return privacy, engine


@contextlib.contextmanager
def bound(tmp_path: Path, base: Any, **names: Any) -> Iterator[tuple[lps.LearnPrivacy, Engine]]:
    """:func:`bind` (``names``: its keywords) for a ``with`` block: at its end the
    binding is closed and the engine disposed, whatever happened in it."""
    privacy, engine = bind(tmp_path, base, **names)
    try:
        yield privacy, engine
    finally:
        privacy.close()
        engine.dispose()


def add_users(engine: Engine, m: SimpleNamespace, ana_writes: str, **account: Any) -> None:
    """Two learners of :func:`declarative_models`, Ana (``u1``) and Bob (``u2``), each with
    a forum post: Ana's says ``ana_writes``. ``account``: more columns of both accounts."""
    with Session(engine) as s:
        s.add(m.User(id="u1", email="ana@example.org", name="Ana Silva", created_at=NOW, **account))
        s.add(m.User(id="u2", email="bob@example.org", name="Bob", created_at=NOW, **account))
        s.flush()  # the accounts first: PostgreSQL checks the posts' foreign key
        s.add(m.Post(author_id="u1", body=ana_writes, posted_at=NOW))
        s.add(m.Post(author_id="u2", body="Bob writes", posted_at=NOW))
        s.commit()


def restrict_user(app: SimpleNamespace, user_id: str = "u1") -> None:
    """Restrict the account ``user_id`` of ``app`` (its ``m``, ``privacy`` and
    ``engine``), disputed, and commit."""
    with Session(app.engine) as s:
        assert app.privacy.restrict(s, s.get(app.m.User, user_id), reason="dispute", now=NOW)
        s.commit()


def add_invoice(
    engine: Engine, m: SimpleNamespace, invoice_id: str, amount: str, issued_at: dt.datetime
) -> None:
    """An invoice of Ana's (``u1``, billed as Ana Silva) for ``amount``, issued at
    ``issued_at``, in :func:`declarative_models`' ``invoices``."""
    with Session(engine) as s:
        s.add(
            m.Invoice(
                id=invoice_id,
                user_id="u1",
                billing_name="Ana Silva",
                amount=Decimal(amount),
                issued_at=issued_at,
            )
        )
        s.commit()


def declarative_models(schema: str | None = None) -> SimpleNamespace:
    """Users, forum posts and invoices on a new SQLAlchemy 2 declarative base (their
    tables in ``schema`` when given, ``__table_args__``)."""
    placed: dict[str, Any] = {"schema": schema} if schema else {}
    users_id = f"{schema}.users.id" if schema else "users.id"

    Base = new_base()

    class User(Base):
        __tablename__ = "users"
        __table_args__ = placed
        __privacy__ = lps.Privacy(
            subject="id",
            purpose="accounts",
            basis=LawfulBasis.CONTRACT,
            activity="last_login_at",
            created="created_at",
        )
        id: Mapped[str] = mapped_column(primary_key=True)
        email: Mapped[str] = lps.personal(DataCategory.CONTACT, "E-mail address", blind_index=True)
        name: Mapped[str] = lps.personal(DataCategory.IDENTITY, "Display name")
        created_at: Mapped[dt.datetime | None] = lps.not_personal("Sign-up", nullable=True)
        last_login_at: Mapped[dt.datetime | None] = lps.not_personal("Last login", nullable=True)

    class Post(Base):
        __tablename__ = "forum_posts"
        __table_args__ = placed
        __privacy__ = lps.Privacy(
            subject="author_id", purpose="forum", basis=LawfulBasis.CONTRACT, created="posted_at"
        )
        id: Mapped[int] = mapped_column(primary_key=True)
        author_id: Mapped[str] = mapped_column(ForeignKey(users_id))
        body: Mapped[str] = lps.personal(DataCategory.COMMUNICATION, "Post text")
        posted_at: Mapped[dt.datetime] = lps.not_personal("When it was posted")

    class Invoice(Base):
        __tablename__ = "invoices"
        __table_args__ = placed
        __privacy__ = lps.Privacy(
            subject="user_id", purpose="billing", basis=LawfulBasis.LEGAL_OBLIGATION
        )
        id: Mapped[str] = mapped_column(primary_key=True)
        user_id: Mapped[str] = mapped_column(ForeignKey(users_id))
        billing_name: Mapped[str] = lps.personal(DataCategory.BILLING, "Name on the invoice")
        amount: Mapped[Decimal] = lps.not_personal("Amount", Numeric(10, 2))
        issued_at: Mapped[dt.datetime] = lps.not_personal("Issue date")

    class Course(Base):
        """A table without personal data: needs no declaration."""

        __tablename__ = "courses"
        __table_args__ = placed
        id: Mapped[str] = mapped_column(primary_key=True)
        title: Mapped[str]

    return SimpleNamespace(Base=Base, User=User, Post=Post, Invoice=Invoice, Course=Course)


def sqlmodel_models() -> SimpleNamespace:
    """The same users and posts as SQLModel models, on a registry of their own."""
    from sqlalchemy.orm import registry
    from sqlmodel import Field, SQLModel

    class Base(SQLModel, registry=registry()):
        pass

    class User(Base, table=True):
        __tablename__ = "users"
        __privacy__ = lps.Privacy(
            subject="id", purpose="accounts", basis=LawfulBasis.CONTRACT, activity="last_login_at"
        )
        id: str = Field(primary_key=True)
        email: str = lps.personal_field(DataCategory.CONTACT, "E-mail address", blind_index=True)
        name: str = lps.personal_field(DataCategory.IDENTITY, "Display name")
        last_login_at: dt.datetime | None = lps.not_personal_field("Last login", default=None)

    class Post(Base, table=True):
        __tablename__ = "forum_posts"
        __privacy__ = lps.Privacy(subject="author_id", purpose="forum", basis=LawfulBasis.CONTRACT)
        id: int | None = Field(default=None, primary_key=True)
        author_id: str = Field(foreign_key="users.id")
        body: str = lps.personal_field(DataCategory.COMMUNICATION, "Post text")
        posted_at: dt.datetime = lps.not_personal_field("When it was posted")

    return SimpleNamespace(Base=Base, User=User, Post=Post)


def add_sqlmodel_ana(session: Any, models: SimpleNamespace) -> None:
    """Ana (``u1``) and her forum post "hello" in :func:`sqlmodel_models`, committed."""
    session.add(models.User(id="u1", email="ana@example.org", name="Ana"))
    session.flush()  # the account first: PostgreSQL checks the post's foreign key
    session.add(models.Post(author_id="u1", body="hello", posted_at=NOW))
    session.commit()


def registry_of(models: SimpleNamespace) -> Any:
    """What LearnPrivacy binds to for these models."""
    return models.Base


def accounts() -> tuple[Any, Any]:
    """A new declarative base and its learners' accounts: ``users`` (id, a personal name,
    the last login as activity)."""

    Base = new_base()

    class User(Base):
        __tablename__ = "users"
        __privacy__ = lps.Privacy(
            subject="id", purpose="accounts", basis=LawfulBasis.CONTRACT, activity="last_login_at"
        )
        id: Mapped[str] = mapped_column(primary_key=True)
        name: Mapped[str] = lps.personal(DataCategory.IDENTITY, "Name")
        last_login_at: Mapped[dt.datetime | None] = lps.not_personal("Last login", nullable=True)

    return Base, User


def composite_models() -> SimpleNamespace:
    """Users, enrolments keyed ``(user_id, course_id)`` and submissions keyed
    ``(course_id, slot)`` whose learner is a column outside the key (``NULL`` once
    anonymised)."""

    Base, User = accounts()

    class Enrolment(Base):
        __tablename__ = "enrolments"
        __privacy__ = lps.Privacy(
            subject="user_id", purpose="teaching", basis=LawfulBasis.CONTRACT, created="enrolled_at"
        )
        user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
        course_id: Mapped[str] = mapped_column(primary_key=True)
        note: Mapped[str] = lps.personal(DataCategory.LEARNING, "Tutor's note", blind_index=True)
        motto: Mapped[str | None] = lps.personal(DataCategory.LEARNING, "Motto", nullable=True)
        enrolled_at: Mapped[dt.datetime | None] = lps.not_personal("Enrolled", nullable=True)

    class Submission(Base):
        __tablename__ = "submissions"
        __privacy__ = lps.Privacy(
            subject="learner_id",
            purpose="teaching",
            basis=LawfulBasis.CONTRACT,
            created="submitted_at",
        )
        course_id: Mapped[str] = mapped_column(primary_key=True)
        slot: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
        learner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
        answer: Mapped[str] = lps.personal(DataCategory.ASSESSMENT, "Answer")
        submitted_at: Mapped[dt.datetime | None] = lps.not_personal("Submitted", nullable=True)

    return SimpleNamespace(Base=Base, User=User, Enrolment=Enrolment, Submission=Submission)


def urls_of(request: Any, tmp_path: Any) -> tuple[str, str, Any]:
    """The application's and the key store's database URLs for a test parametrised on
    ``"sqlite"`` or ``"postgres"``, and the PostgreSQL server (``None`` on SQLite)."""
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        return server.create_database(), server.create_database(), server
    return f"sqlite:///{tmp_path / 'app.db'}", f"sqlite:///{tmp_path / 'keys.db'}", None


def bound_composite(request: Any, tmp_path: Any, master: bytes) -> Iterator[SimpleNamespace]:
    """:func:`composite_models` bound on SQLite or a real PostgreSQL (``request.param``),
    tables created; closed after the test."""
    from sqlalchemy import create_engine

    from learnprivacy.crypto import Keyring

    app_url, keys_url, server = urls_of(request, tmp_path)
    models = composite_models()
    privacy = lps.LearnPrivacy(models.Base, keyring=Keyring.from_master_key(master), keys=keys_url)
    engine = create_engine(app_url)
    models.Base.metadata.create_all(engine)
    yield SimpleNamespace(m=models, privacy=privacy, engine=engine, path=tmp_path, server=server)
    privacy.close()
    engine.dispose()


def bound_declarative(request: Any, tmp_path: Any, master: bytes) -> Iterator[SimpleNamespace]:
    """:func:`declarative_models` bound on SQLite or a real PostgreSQL
    (``request.param``), with Ana (``u1``, two posts) and Bob (``u2``, one post); closed
    after the test. Its ``url`` is the application database's."""
    app_url, keys_url, server = urls_of(request, tmp_path)
    models = declarative_models()
    privacy = lps.LearnPrivacy(models.Base, keyring=Keyring.from_master_key(master), keys=keys_url)
    engine = create_engine(app_url)
    models.Base.metadata.create_all(engine)
    add_users(engine, models, "Ana's first post")
    with Session(engine) as s:
        s.add(models.Post(author_id="u1", body="Ana's second post", posted_at=NOW))
        s.commit()
    yield SimpleNamespace(m=models, privacy=privacy, engine=engine, url=app_url, server=server)
    privacy.close()
    engine.dispose()

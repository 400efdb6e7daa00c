"""learnprivacy.sqlalchemy on an application's own models: tokens, lookups, bad input."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, insert, select, text, update
from sqlalchemy.orm import Mapped, Session, mapped_column

import learnprivacy.sqlalchemy as lps
from learnprivacy import DataCategory, LawfulBasis
from learnprivacy.crypto import InMemoryKeyStore, Keyring
from learnprivacy.errors import (
    ConfigurationError,
    DecryptionError,
    PlaintextError,
    RestrictedRecordError,
    ValidationError,
)
from tests import NOW, names
from tests.inplace_models import (
    add_invoice,
    add_sqlmodel_ana,
    add_users,
    bound,
    declarative_models,
    new_base,
    sqlmodel_models,
)

UTC = dt.UTC
MASTER = bytes(range(32))


@pytest.fixture
def app(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """Fresh models bound to a LearnPrivacy, an app database and a key database (SQLite)."""
    models = declarative_models()
    keyring = Keyring.from_master_key(MASTER)
    with bound(tmp_path, models.Base, keyring=keyring) as (privacy, engine):
        yield SimpleNamespace(m=models, privacy=privacy, engine=engine, path=tmp_path)


def add_ana(engine: Engine, m: SimpleNamespace) -> None:
    add_users(engine, m, "My first post")


def test_values_are_tokens_at_rest_and_clear_on_load(app: SimpleNamespace) -> None:
    """Personal columns hold only tokens in the file; the ORM gives back the values."""
    add_ana(app.engine, app.m)
    with Session(app.engine) as s:
        raw = s.execute(text("SELECT email, name, email_bidx FROM users WHERE id='u1'")).one()
        assert raw[0].startswith("lp1.")
        assert raw[1].startswith("lp1.")
        assert raw[2].startswith("b1_")
        user = s.get(app.m.User, "u1")
        assert (user.email, user.name) == ("ana@example.org", "Ana Silva")
        post = s.scalars(select(app.m.Post).where(app.m.Post.author_id == "u1")).one()
        assert post.body == "My first post"
        assert s.execute(text("SELECT body FROM forum_posts")).scalars().first().startswith("lp1.")
    app.engine.dispose()
    data = (app.path / "app.db").read_bytes()
    for secret in (b"ana@example.org", b"Ana Silva", b"My first post"):
        assert secret not in data


def test_updates_reencrypt_and_objects_keep_clear_values(app: SimpleNamespace) -> None:
    """A changed value is re-encrypted on flush; the object keeps showing the value."""
    add_ana(app.engine, app.m)
    with Session(app.engine) as s:
        user = s.get(app.m.User, "u1")
        before = s.execute(text("SELECT email FROM users WHERE id='u1'")).scalar_one()
        user.email = "ana.silva@example.org"
        s.flush()
        assert user.email == "ana.silva@example.org"
        after = s.execute(text("SELECT email FROM users WHERE id='u1'")).scalar_one()
        assert after != before
        assert after.startswith("lp1.")
        s.commit()
        assert app.privacy.find(s, app.m.User.email, "ANA.SILVA@example.org ") == [user]
        assert app.privacy.find(s, app.m.User.email, "ana@example.org") == []


def test_find_uses_the_blind_index(app: SimpleNamespace) -> None:
    """find() matches normalised values and nothing else."""
    add_ana(app.engine, app.m)
    with Session(app.engine) as s:
        found = app.privacy.find(s, app.m.User.email, " Ana@Example.ORG")
        assert [u.id for u in found] == ["u1"]
        assert app.privacy.find(s, app.m.User.email, "nobody@example.org") == []
        with pytest.raises(ConfigurationError, match=r"users\.name has no blind index"):
            app.privacy.find(s, app.m.User.name, "Ana Silva")


def test_token_moved_to_another_row_or_column_fails(app: SimpleNamespace) -> None:
    """A token copied to another row, or another column, does not decrypt there."""
    add_ana(app.engine, app.m)
    with app.engine.begin() as c:
        token = c.execute(text("SELECT email FROM users WHERE id='u1'")).scalar_one()
        c.execute(text("UPDATE users SET email=:t WHERE id='u2'"), {"t": token})
    with Session(app.engine) as s, pytest.raises(DecryptionError) as caught:
        s.get(app.m.User, "u2")
    assert "users.email" in str(caught.value)
    assert "ana@example.org" not in str(caught.value)
    assert token not in str(caught.value)
    with app.engine.begin() as c:
        c.execute(text("UPDATE users SET email=name WHERE id='u1'"))
    with Session(app.engine) as s, pytest.raises(DecryptionError, match=r"users\.email"):
        s.get(app.m.User, "u1")


def test_tokens_swapped_between_columns_of_one_row_fail(app: SimpleNamespace) -> None:
    """A row's tokens are opened together on load: two of them swapped (each still under
    the right learner's key, in the right row) fail, naming a column, never a value."""
    add_ana(app.engine, app.m)
    with app.engine.begin() as c:
        c.execute(text("UPDATE users SET email=name, name=email WHERE id='u1'"))
    with Session(app.engine) as s, pytest.raises(DecryptionError) as caught:
        s.get(app.m.User, "u1")
    assert re.search(r"users\.(email|name)", str(caught.value))
    assert "ana@example.org" not in str(caught.value)


def test_plaintext_at_rest_is_refused_on_load(app: SimpleNamespace) -> None:
    """A plaintext value where a token belongs raises PlaintextError naming the column."""
    add_ana(app.engine, app.m)
    with app.engine.begin() as c:
        c.execute(text("UPDATE users SET name='Ana in clear' WHERE id='u1'"))
    with Session(app.engine) as s, pytest.raises(PlaintextError) as caught:
        s.get(app.m.User, "u1")
    assert (caught.value.table, caught.value.column) == ("users", "name")
    assert "Ana in clear" not in str(caught.value)


def test_plaintext_writes_past_the_orm_are_refused(app: SimpleNamespace) -> None:
    """Core inserts, updates and comparisons with plaintext fail before running."""
    add_ana(app.engine, app.m)
    User = app.m.User
    with Session(app.engine) as s:
        with pytest.raises(PlaintextError, match=r"users\.email") as caught:
            s.execute(insert(User).values(id="u9", email="eve@example.org", name="lp1.x"))
        assert "eve@example.org" not in str(caught.value)
        s.rollback()
        with pytest.raises(PlaintextError):
            s.execute(update(User).where(User.id == "u1").values(email="x@example.org"))
        s.rollback()
        with pytest.raises(PlaintextError):
            s.scalars(select(User).where(User.email == "ana@example.org")).all()
        s.rollback()
    with Session(app.engine) as s:
        assert s.scalar(text("SELECT count(*) FROM users")) == 2
        assert s.get(User, "u1").email == "ana@example.org"


def test_assigning_a_token_is_refused(app: SimpleNamespace) -> None:
    """A token read elsewhere and assigned to an attribute is refused, nothing written."""
    add_ana(app.engine, app.m)
    with Session(app.engine) as s:
        token = s.execute(text("SELECT email FROM users WHERE id='u2'")).scalar_one()
        s.get(app.m.User, "u1").email = token
        with pytest.raises(PlaintextError, match=r"users\.email"):
            s.flush()
        s.rollback()
    with Session(app.engine) as s:
        assert s.get(app.m.User, "u1").email == "ana@example.org"


def test_a_row_without_subject_is_refused(app: SimpleNamespace) -> None:
    """Personal values need a learner: a missing subject is a typed error, nothing written."""
    with Session(app.engine) as s:
        s.add(app.m.Post(author_id=None, body="orphan", posted_at=NOW))
        with pytest.raises(ValidationError, match=r"forum_posts\.author_id") as caught:
            s.flush()
        assert "orphan" not in str(caught.value)
        s.rollback()
        assert s.scalar(text("SELECT count(*) FROM forum_posts")) == 0


def test_changing_the_subject_of_a_row_is_refused(app: SimpleNamespace) -> None:
    """Moving a post to another author would orphan its tokens: refused."""
    add_ana(app.engine, app.m)
    with Session(app.engine) as s:
        post = s.scalars(select(app.m.Post).where(app.m.Post.author_id == "u1")).one()
        post.author_id = "u2"
        with pytest.raises(ValidationError, match="forum_posts"):
            s.flush()


def test_undeclared_columns_and_subjects_are_named_at_bind(tmp_path: Path) -> None:
    """Binding names the table and the column that lacks a declaration."""

    Base = new_base()

    class Profile(Base):
        __tablename__ = "profiles"
        __privacy__ = lps.Privacy(subject="user_id", purpose="profiles", basis=LawfulBasis.CONTRACT)
        id: Mapped[int] = mapped_column(primary_key=True)
        user_id: Mapped[str]
        phone: Mapped[str]

    with pytest.raises(ConfigurationError, match=r"profiles\.phone is not declared"):
        lps.LearnPrivacy(Base, keyring=Keyring.generate(), keys=InMemoryKeyStore())

    Base2 = new_base()

    class Note(Base2):
        __tablename__ = "notes"
        __privacy__ = lps.Privacy(subject="owner", purpose="notes", basis=LawfulBasis.CONTRACT)
        id: Mapped[int] = mapped_column(primary_key=True)
        text: Mapped[str] = lps.personal(DataCategory.COMMUNICATION, "Note")

    with pytest.raises(ConfigurationError, match=r"notes: the subject column 'owner'"):
        lps.LearnPrivacy(Base2, keyring=Keyring.generate(), keys=InMemoryKeyStore())

    Base3 = new_base()

    class Loose(Base3):
        __tablename__ = "loose"
        id: Mapped[int] = mapped_column(primary_key=True)
        phone: Mapped[str] = lps.personal(DataCategory.CONTACT, "Phone")

    with pytest.raises(ConfigurationError, match=r"loose declares .* no __privacy__"):
        lps.LearnPrivacy(Base3, keyring=Keyring.generate(), keys=InMemoryKeyStore())


def test_keys_in_the_apps_database_are_refused(tmp_path: Path) -> None:
    """keys= pointing at the application's own database is refused on first use."""
    models = declarative_models()
    url = f"sqlite:///{tmp_path / 'app.db'}"
    privacy = lps.LearnPrivacy(models.Base, keyring=Keyring.generate(), keys=url)
    engine = create_engine(url)
    models.Base.metadata.create_all(engine)
    with Session(engine) as s, pytest.raises(ConfigurationError, match="keys must live apart"):
        privacy.find(s, models.User.email, "ana@example.org")


def test_restricted_rows_refuse_writes(app: SimpleNamespace) -> None:
    """A restricted row refuses updates and deletions until the restriction is lifted."""
    add_ana(app.engine, app.m)
    with Session(app.engine) as s:
        user = s.get(app.m.User, "u1")
        assert app.privacy.restrict(s, user, reason="dispute 2026-14", now=NOW) is True
        assert app.privacy.restrict(s, user, reason="dispute 2026-14", now=NOW) is False
        s.commit()
        user.name = "Changed"
        with pytest.raises(RestrictedRecordError, match="users"):
            s.flush()
        s.rollback()
        s.delete(s.get(app.m.User, "u1"))
        with pytest.raises(RestrictedRecordError):
            s.flush()
        s.rollback()
        assert app.privacy.find(s, app.m.User.email, "ana@example.org") == []
        assert (
            len(app.privacy.find(s, app.m.User.email, "ana@example.org", include_restricted=True))
            == 1
        )
        assert app.privacy.lift_restriction(s, s.get(app.m.User, "u1"), now=NOW) is True
        s.commit()
        s.get(app.m.User, "u1").name = "Changed"
        s.commit()
        actions = [e.action for e in app.privacy.audit(s).entries()]
        assert actions == ["restrict", "lift_restriction"]


def test_sqlmodel_models_work_the_same(tmp_path: Path) -> None:
    """SQLModel models: tokens at rest, values on load, blind-index lookups."""
    from sqlmodel import Session as SQLModelSession

    models = sqlmodel_models()
    with bound(tmp_path, models.Base) as (privacy, engine), SQLModelSession(engine) as s:
        add_sqlmodel_ana(s, models)
        raw = s.execute(text("SELECT email, name FROM users")).one()
        assert all(v.startswith("lp1.") for v in raw)
        assert s.get(models.User, "u1").name == "Ana"
        assert [u.id for u in privacy.find(s, models.User.email, "ANA@example.org")] == ["u1"]
        report = privacy.erase_subject(s, "u1", now=NOW)
        s.commit()
        assert report.erased == 2
        assert privacy.keyring.is_shredded("u1", "contract")


def test_personal_values_never_in_reprs(app: SimpleNamespace) -> None:
    """Specs, reports and the integration show no personal value in their repr."""
    add_ana(app.engine, app.m)
    with Session(app.engine) as s:
        report = app.privacy.erase_subject(s, "u1", now=NOW)
        text_seen = repr(report) + repr(app.privacy) + repr(app.privacy.spec(app.m.User))
        s.commit()
    assert "ana@example.org" not in text_seen
    assert not names(repr(report), "u1")


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as c:
        return int(c.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _sqlite_rows(path: Path, query: str) -> list[Any]:
    with sqlite3.connect(path) as c:
        return c.execute(query).fetchall()


def test_invoice_amounts_stay_clear(app: SimpleNamespace) -> None:
    """Non-personal columns (amounts) are stored in clear and read as declared."""
    add_ana(app.engine, app.m)
    add_invoice(app.engine, app.m, "F1", "120.00", NOW)
    rows = _sqlite_rows(app.path / "app.db", "SELECT amount, billing_name FROM invoices")
    assert rows[0][0] == 120
    assert rows[0][1].startswith("lp1.")


def test_a_key_database_object_in_the_apps_database_is_refused(tmp_path: Path) -> None:
    """keys=KeyDatabase(...) on the application's own database is refused as well."""
    from learnprivacy.keys import KeyDatabase

    models = declarative_models()
    url = f"sqlite:///{tmp_path / 'app.db'}"
    privacy = lps.LearnPrivacy(models.Base, keyring=Keyring.generate(), keys=KeyDatabase(url))
    engine = create_engine(url)
    models.Base.metadata.create_all(engine)
    try:
        with Session(engine) as s, pytest.raises(ConfigurationError, match="keys must live apart"):
            privacy.find(s, models.User.email, "ana@example.org")
    finally:
        privacy.close()
        engine.dispose()

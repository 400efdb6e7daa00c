"""Deletions the database carries further: ``ON DELETE CASCADE`` / ``SET NULL``.

The application deletes an account (``session.delete()`` or a bulk ``delete()``); a
foreign key of another declared table deletes or changes that account's rows with it,
in the database, where no event of the integration sees them. A row among them whose
processing is restricted (GDPR Art. 18, an invoice under dispute) must not go: the
deletion is refused, as a deletion of the restricted row itself is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, ForeignKey, create_engine, delete, event, text
from sqlalchemy.orm import Mapped, Session, mapped_column

import learnprivacy.sqlalchemy as lps
from learnprivacy import DataCategory, LawfulBasis
from learnprivacy.crypto import Keyring
from learnprivacy.errors import IntegrityError, RestrictedRecordError
from tests import NOW
from tests.inplace_models import new_base


def _models(on_delete: str, orders: bool = False) -> SimpleNamespace:
    """Accounts; their invoices refer to them ``ON DELETE on_delete``; each invoice's
    lines (of the same learner) cascade from the invoice. ``orders``: the "invoices"
    are orders, kept under the contract (erasable), their lines by law."""
    Base = new_base()
    billing = lps.Privacy(subject="learner", purpose="billing", basis=LawfulBasis.LEGAL_OBLIGATION)
    ordering = lps.Privacy(subject="learner", purpose="orders", basis=LawfulBasis.CONTRACT)

    class User(Base):
        __tablename__ = "users"
        __privacy__ = lps.Privacy(subject="id", purpose="accounts", basis=LawfulBasis.CONTRACT)
        id: Mapped[str] = mapped_column(primary_key=True)
        name: Mapped[str] = lps.personal(DataCategory.IDENTITY, "Name")

    class Invoice(Base):
        __tablename__ = "invoices"
        __privacy__ = ordering if orders else billing
        id: Mapped[str] = mapped_column(primary_key=True)
        learner: Mapped[str] = lps.not_personal("Learner id")
        user_id: Mapped[str | None] = lps.not_personal(
            "Account", ForeignKey("users.id", ondelete=on_delete), nullable=True
        )
        billing_name: Mapped[str] = lps.personal(DataCategory.BILLING, "Name on the invoice")

    class Line(Base):
        __tablename__ = "invoice_lines"
        __privacy__ = billing
        id: Mapped[int] = mapped_column(primary_key=True)
        learner: Mapped[str] = lps.not_personal("Learner id")
        invoice_id: Mapped[str] = lps.not_personal(
            "Invoice", ForeignKey("invoices.id", ondelete="CASCADE")
        )
        label: Mapped[str] = lps.personal(DataCategory.BILLING, "What was bought")

    return SimpleNamespace(Base=Base, User=User, Invoice=Invoice, Line=Line)


def _foreign_keys_on(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def enforce(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA foreign_keys=ON")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    server = request.getfixturevalue("postgres_server")
    return str(server.create_database())


def _app(
    url: str, tmp_path: Path, on_delete: str, orders: bool = False
) -> Iterator[SimpleNamespace]:
    m = _models(on_delete, orders)
    engine = create_engine(url)
    _foreign_keys_on(engine)
    privacy = lps.LearnPrivacy(
        m.Base, keyring=Keyring.generate(), keys=f"sqlite:///{tmp_path / 'keys.db'}"
    )
    m.Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all([m.User(id="u1", name="Ana Silva"), m.User(id="u2", name="Bob Martin")])
        s.flush()
        s.add_all(
            [
                m.Invoice(id="i1", learner="u1", user_id="u1", billing_name="Ana Silva"),
                m.Invoice(id="i2", learner="u2", user_id="u2", billing_name="Bob Martin"),
            ]
        )
        s.flush()
        s.add_all(
            [
                m.Line(id=1, learner="u1", invoice_id="i1", label="Course fee"),
                m.Line(id=2, learner="u2", invoice_id="i2", label="Course fee"),
            ]
        )
        s.commit()
    try:
        yield SimpleNamespace(m=m, engine=engine, privacy=privacy)
    finally:
        privacy.close()
        engine.dispose()


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as c:
        return [
            *c.execute(text("SELECT id, user_id, billing_name FROM invoices ORDER BY id")),
            *c.execute(text("SELECT id, invoice_id, label FROM invoice_lines ORDER BY id")),
        ]


def _delete_ana(app: SimpleNamespace, how: str) -> None:
    with Session(app.engine) as s:
        if how == "flush":
            s.delete(s.get(app.m.User, "u1"))
            s.flush()
        else:
            s.execute(delete(app.m.User).where(app.m.User.id == "u1"))
        s.commit()


@pytest.mark.parametrize("how", ["flush", "bulk"])
@pytest.mark.parametrize(
    ("on_delete", "restricted"), [("CASCADE", "Line"), ("SET NULL", "Invoice")]
)
def test_a_deletion_the_database_would_carry_to_a_restricted_row_is_refused(
    url: str, tmp_path: Path, how: str, on_delete: str, restricted: str
) -> None:
    """Attack: Ana's invoice line (down two cascades), or her invoice (whose account
    column the database would set to NULL), is restricted; the application deletes her
    account. The old code checked only the account: the restricted row was deleted or
    changed, unaudited. The deletion is now refused and nothing changes."""
    for app in _app(url, tmp_path, on_delete):
        model = getattr(app.m, restricted)
        with Session(app.engine) as s:
            row = s.get(model, 1 if restricted == "Line" else "i1")
            assert app.privacy.restrict(s, row, reason="disputed", now=NOW)
            s.commit()
        before = _rows(app.engine)
        with pytest.raises(RestrictedRecordError, match=r"GDPR Art\. 18") as caught:
            _delete_ana(app, how)
        assert "Ana" not in str(caught.value)
        assert _rows(app.engine) == before
        with Session(app.engine) as s:
            assert s.get(app.m.User, "u1") is not None


@pytest.mark.parametrize("how", ["flush", "bulk"])
def test_a_deletion_that_reaches_no_restricted_row_runs(url: str, tmp_path: Path, how: str) -> None:
    """Control: Bob's invoice is restricted, not Ana's rows: her account goes, and the
    database takes her invoice and its line with it."""
    for app in _app(url, tmp_path, "CASCADE"):
        with Session(app.engine) as s:
            assert app.privacy.restrict(s, s.get(app.m.Invoice, "i2"), reason="x", now=NOW)
            s.commit()
        _delete_ana(app, how)
        assert [r[0] for r in _rows(app.engine)] == ["i2", 2]


def test_an_erasure_whose_deletion_would_cascade_to_a_row_kept_by_law_is_refused(
    url: str, tmp_path: Path
) -> None:
    """Attack: Ana's order is erasable (contract) but its line is kept by law; the
    database deletes the line with the order (``ON DELETE CASCADE``). The erasure
    reported the line restricted, kept, while it was gone, and Bob's restricted line
    would go the same way with an order of Ana's. The erasure now raises and changes
    nothing."""
    for app in _app(url, tmp_path, "CASCADE", orders=True):
        before = _rows(app.engine)
        with (
            Session(app.engine) as s,
            pytest.raises((IntegrityError, RestrictedRecordError), match="invoice_lines"),
        ):
            app.privacy.erase_subject(s, "u1", now=NOW)
        assert _rows(app.engine) == before
        with Session(app.engine) as s:
            assert app.privacy.audit(s).verify()
            assert list(app.privacy.audit(s).entries()) == []

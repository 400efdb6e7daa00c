"""The ORM-independent core of in-place privacy (learnprivacy._inplace)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from learnprivacy import Action, DataCategory, LawfulBasis
from learnprivacy._inplace import ColumnPrivacy, Privacy, RowCipher, binding_context, build_spec
from learnprivacy._inplace._plan import plan_erasure
from learnprivacy.crypto import FieldCipher, Keyring
from learnprivacy.errors import ConfigurationError, DecryptionError, PlaintextError
from learnprivacy.retention import Hold, Period, RetentionRule, Schedule, Trigger
from tests import names

UTC = dt.UTC
NOW = dt.datetime(2026, 6, 15, tzinfo=UTC)
EMAIL = ColumnPrivacy(
    personal=True, category=DataCategory.CONTACT, description="E-mail", blind_index=True
)
SEEN = ColumnPrivacy(personal=False, category=DataCategory.NONE, description="Last seen")


class Account:
    """A stand-in model class (the core never looks inside it)."""


class Invoice:
    """Another stand-in model class."""


def _spec(
    columns: list[Any],
    privacy: Privacy,
    *,
    model: type = Account,
    table: str = "t",
    primary_key: tuple[tuple[str, str], ...] = (("id", "id"),),
) -> Any:
    """A spec of ``model`` (table ``table``, keyed by ``id``) with ``columns`` and ``privacy``."""
    return build_spec(
        model, table=table, primary_key=list(primary_key), columns=columns, privacy=privacy
    )


def account_spec() -> Any:
    privacy = Privacy(subject="id", purpose="accounts", basis=LawfulBasis.CONTRACT, activity="seen")
    return _spec([("email", "email", EMAIL), ("seen", "seen_at", SEEN)], privacy, table="accounts")


def invoice_spec() -> Any:
    privacy = Privacy(subject="owner", purpose="billing", basis=LawfulBasis.LEGAL_OBLIGATION)
    columns = [("owner", "owner_id", None), ("name", "name", EMAIL)]
    return _spec(columns, privacy, model=Invoice, table="invoices")


def test_spec_derives_scope_views_and_field_infos() -> None:
    """A spec knows its scope, personal columns and builds aware record views."""
    spec = account_spec()
    assert spec.is_subject_table
    assert spec.scope == "contract"
    assert [c.attribute for c in spec.personal] == ["email"]
    assert spec.indexed[0].index_column == "email_bidx"
    view = spec.view({"id": "L1", "email": "secret", "seen": dt.datetime(2025, 1, 1)})
    assert not hasattr(view, "email")
    assert not hasattr(view, "learner_id")
    assert view.last_activity_at.tzinfo is UTC
    assert type(view).__name__ == "Account"
    assert not names(repr(view), "L1")
    assert invoice_spec().scope == "legal"


def test_bad_declarations_name_table_and_column() -> None:
    """Undeclared columns, missing or personal subjects and dates are refused by name."""
    contract = Privacy(subject="id", purpose="p", basis=LawfulBasis.CONTRACT)
    email_dated = Privacy(subject="id", purpose="p", basis=LawfulBasis.CONTRACT, activity="email")
    with pytest.raises(ConfigurationError, match=r"t\.phone is not declared"):
        _spec([("phone", "phone", None)], contract)
    with pytest.raises(ConfigurationError, match="subject column 'owner'"):
        _spec([], Privacy(subject="owner", purpose="p", basis=LawfulBasis.CONTRACT))
    with pytest.raises(ConfigurationError, match=r"activity date .* not_personal"):
        _spec([("email", "email", EMAIL)], email_dated)
    with pytest.raises(ConfigurationError, match="needs a primary key"):
        _spec([], contract, primary_key=())
    with pytest.raises(ConfigurationError, match="must not contain '/'"):
        _spec([("x", "a/b", SEEN)], contract)


def test_tokens_are_bound_to_table_key_and_column() -> None:
    """A token opens only at its (table, key, column) and for its learner."""
    keyring = Keyring.generate()
    rows = RowCipher(FieldCipher(keyring), keyring.blind_index())
    spec = account_spec()
    column = spec.personal[0]
    token = rows.encrypt(spec, column, "L1", "L1", "ana@example.org")
    assert rows.decrypt(spec, column, "L1", "L1", token) == "ana@example.org"
    assert binding_context("accounts", "L1", "email") == "accounts/L1/email"
    for key, subject in (("L2", "L1"), ("L1", "L2")):
        with pytest.raises(DecryptionError, match=r"accounts\.email"):
            rows.decrypt(spec, column, key, subject, token)
    with pytest.raises(PlaintextError, match=r"accounts\.email"):
        rows.decrypt(spec, column, "L1", "L1", "ana@example.org")
    with pytest.raises(PlaintextError):
        rows.encrypt(spec, column, "L1", "L1", token)
    assert rows.index(spec, column, " ANA@example.org") == rows.index(
        spec, column, "ana@example.org"
    )


def test_erasure_plan_keeps_legal_rows_and_their_account() -> None:
    """Legal-obligation rows are restricted, the account with them; other scopes shred."""
    account, invoice = account_spec(), invoice_spec()
    rows = [
        (account, "L1", account.view({"id": "L1", "seen": NOW})),
        (invoice, "F1", invoice.view({"id": "F1", "owner": "L1"})),
    ]
    plan = plan_erasure("L1", rows, specs=[account, invoice], now=NOW, holds=(), schedule=None)
    assert plan.erase == {}
    assert plan.restrict == {"accounts": ("L1",), "invoices": ("F1",)}
    assert plan.shred_scopes == ()
    assert plan.kept_scopes == ("contract", "legal")
    alone = plan_erasure("L1", rows[:1], specs=[account, invoice], now=NOW, holds=(), schedule=None)
    assert alone.erase == {"accounts": ("L1",)}
    assert alone.shred_scopes == ("contract", "legal")
    held = plan_erasure(
        "L1",
        rows[:1],
        specs=[account],
        now=NOW,
        holds=(Hold("case 7", record_type=Account),),
        schedule=None,
    )
    assert held.rows[0].decision.action is Action.RESTRICT


def test_schedules_keyed_by_model_class_decide() -> None:
    """A schedule keyed by the model class drives erasure decisions on its rows."""
    account, invoice = account_spec(), invoice_spec()
    schedule = Schedule(
        {
            Account: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
            Invoice: RetentionRule(Period.parse("P10Y"), Trigger.CREATED, minimum=True),
        }
    )
    rows = [(invoice, "F1", invoice.view({"id": "F1", "owner": "L1"}))]
    plan = plan_erasure("L1", rows, specs=[account, invoice], now=NOW, holds=(), schedule=schedule)
    # No issue date is declared: the legal minimum cannot be judged, a person decides.
    assert plan.rows[0].decision.action is Action.REVIEW

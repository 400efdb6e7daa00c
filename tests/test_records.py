"""Records: construction, validation, redaction and the JSON form."""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnprivacy import records as rec
from learnprivacy.basis import DataCategory, LawfulBasis
from learnprivacy.errors import ValidationError
from learnprivacy.records._base import record_types
from learnprivacy.testing._retention_strategies import RECORD_TYPES
from learnprivacy.testing.strategies import records_of_learner
from tests import sample

UTC = dt.UTC
T0 = dt.datetime(2024, 9, 2, 8, 30, tzinfo=UTC)
ALL_TYPES = [
    rec.Learner,
    rec.Progress,
    rec.Certificate,
    rec.Invoice,
    rec.Consent,
    rec.Funding,
    rec.AccessEvent,
]


def make_learner(**changes: Any) -> rec.Learner:
    return sample(rec.Learner, **{"username": "ana.silva", "created_at": T0, **changes})


def test_constructors_are_keyword_only_and_frozen() -> None:
    """Positional arguments are refused and records cannot be mutated."""
    with pytest.raises(TypeError):
        rec.Learner("L1", "ana", "ana@example.org", "Ana", "Silva", T0)  # type: ignore[misc]
    learner = make_learner()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        learner.email = "other@example.org"  # type: ignore[misc]


def test_basis_is_overridable_per_instance() -> None:
    """The class default basis can be overridden on one record."""
    consent_based = make_learner(basis=LawfulBasis.CONSENT)
    assert consent_based.basis is LawfulBasis.CONSENT


@pytest.mark.parametrize("field", ["created_at", "last_activity_at", "contract_end_at"])
def test_naive_datetimes_are_refused_naming_the_field(field: str) -> None:
    """A naive datetime raises ValidationError naming the field."""
    with pytest.raises(ValidationError, match=f"Learner.{field} must be timezone-aware") as info:
        make_learner(**{field: dt.datetime(2024, 1, 1)})
    assert info.value.field == f"Learner.{field}"


@pytest.mark.parametrize(
    "email", ["", "ana", "ana@", "@example.org", "ana@example", "ana @example.org", "a@b..org"]
)
def test_invalid_emails_are_refused_without_echoing_them(email: str) -> None:
    """Malformed e-mails are refused; the message never contains the value."""
    with pytest.raises(ValidationError) as info:
        make_learner(email=email)
    if email:
        assert email not in str(info.value)


@pytest.mark.parametrize("bad_id", ["", "   ", "L\n1", "x" * 256, 12])
def test_empty_or_malformed_ids_are_refused(bad_id: object) -> None:
    """Ids must be non-empty printable text of reasonable length."""
    with pytest.raises(ValidationError):
        make_learner(id=bad_id)


def test_invoice_money_is_checked() -> None:
    """Amounts must be finite Decimals and currencies ISO 4217 codes."""
    base: dict[str, Any] = {
        "id": "I1",
        "learner_id": "L1",
        "billing_name": "Ana",
        "billing_address": "Paris",
        "issued_at": T0,
    }
    for amount in (12.5, 12, Decimal("NaN"), Decimal("Infinity"), "12.50"):
        with pytest.raises(ValidationError, match=r"Invoice\.amount"):
            rec.Invoice(amount=amount, **base)
    for currency in ("eur", "EURO", "XYZ", ""):
        with pytest.raises(ValidationError, match=r"Invoice\.currency"):
            rec.Invoice(amount=Decimal(1), currency=currency, **base)
    assert (
        rec.Invoice(amount=Decimal("1.10"), currency="CHF", funder=rec.Funder.OPCO, **base).currency
        == "CHF"
    )


@pytest.mark.parametrize(
    ("raw", "low", "high"),
    [(21, 0, 20), (-1, 0, 20), (5, 10, 10), (5, 20, 0), (float("nan"), 0, 1), (True, 0, 1)],
)
def test_score_bounds(raw: Any, low: Any, high: Any) -> None:
    """raw must lie in [min, max], min < max, numbers finite and not booleans."""
    with pytest.raises(ValidationError):
        rec.Score(raw=raw, min=low, max=high)


def test_other_invariants() -> None:
    """Negative time, dates out of order and bad IPs are refused."""
    with pytest.raises(ValidationError, match="time_spent"):
        rec.Progress(
            id="P",
            learner_id="L",
            course_id="C",
            status=rec.ProgressStatus.FAILED,
            recorded_at=T0,
            time_spent=dt.timedelta(seconds=-1),
        )
    with pytest.raises(ValidationError, match="withdrawn_at"):
        rec.Consent(
            id="C", learner_id="L", purpose="x", given_at=T0, withdrawn_at=T0 - dt.timedelta(1)
        )
    with pytest.raises(ValidationError, match="closed_at"):
        sample(
            rec.Funding,
            id="F",
            learner_id="L",
            dossier_reference="OPCO-1",
            opened_at=T0,
            closed_at=T0 - dt.timedelta(days=1),
        )
    with pytest.raises(ValidationError, match=r"AccessEvent\.ip"):
        sample(rec.AccessEvent, id="E", learner_id="L", at=T0, ip="999.1.1.1")


def test_consent_activity_window() -> None:
    """A consent covers [given_at, min(withdrawn_at, expires_at)); withdrawal is not retroactive."""
    consent = sample(
        rec.Consent,
        id="C",
        learner_id="L",
        given_at=T0,
        withdrawn_at=T0 + dt.timedelta(days=30),
        expires_at=T0 + dt.timedelta(days=180),
    )
    assert not consent.is_active(T0 - dt.timedelta(seconds=1))
    assert consent.is_active(T0)
    assert consent.is_active(T0 + dt.timedelta(days=29))
    assert not consent.is_active(T0 + dt.timedelta(days=30))
    with pytest.raises(ValidationError):
        consent.is_active(dt.datetime(2025, 1, 1))


@pytest.mark.parametrize("cls", ALL_TYPES)
def test_every_field_is_declared(cls: type) -> None:
    """Every field of every record says whether it is personal, with a category and text."""
    infos = rec.fields_of(cls)
    assert [i.name for i in infos] == [a.name for a in attrs.fields(cls)]
    for info in infos:
        assert isinstance(info.category, DataCategory)
        assert info.description
        if info.encrypted:
            assert info.personal, f"{cls.__name__}.{info.name} encrypted but not personal"
    assert rec.fields_of(cls)[0].name == "id"


def test_records_registered_and_carry_policy() -> None:
    """All built-in records are registered with a purpose, key scope and date field."""
    assert set(ALL_TYPES) <= set(record_types())
    # The retention strategies build every built-in record, and nothing else.
    assert set(RECORD_TYPES) == set(ALL_TYPES)
    for cls in ALL_TYPES:
        assert cls.date_field in attrs.fields_dict(cls)
        assert cls.key_scope
        assert cls.processing_purpose


def test_undeclared_field_is_detected() -> None:
    """A record class with a field lacking privacy metadata fails fields_of."""

    @attrs.frozen(kw_only=True)
    class Sloppy:
        id: str = rec.not_personal(description="id")
        shoe_size: int = 42

    with pytest.raises(ValidationError, match=r"Sloppy\.shoe_size has no privacy declaration"):
        rec.fields_of(Sloppy)


def test_expected_fields_are_encrypted() -> None:
    """Identity, contact, billing address, IP and similar values are encrypted at rest."""
    encrypted = {
        cls.__name__: {i.name for i in rec.fields_of(cls) if i.encrypted} for cls in ALL_TYPES
    }
    assert encrypted["Learner"] == {"username", "email", "given_name", "family_name"}
    assert encrypted["Invoice"] == {"billing_name", "billing_address"}
    assert encrypted["AccessEvent"] == {"ip", "user_agent"}
    assert encrypted["Funding"] == {"dossier_reference"}
    assert encrypted["Certificate"] == {"verification_code"}
    assert encrypted["Consent"] == {"proof"}
    assert encrypted["Progress"] == set()


def _planted(record: Any) -> tuple[Any, list[str]]:
    """``record`` with every personal value replaced by a planted one, and the planted
    values. Each carries 128 random bits, so it cannot occur in the class's own text
    (its name, field names, enum members) nor in a non-personal value: finding one in a
    repr is a leak, never a coincidence ('Lawf' inside 'LawfulBasis')."""
    changes: dict[str, str] = {}
    planted: list[str] = []
    for info in rec.fields_of(record):
        if not info.personal or getattr(record, info.name) is None:
            continue
        bits = uuid.uuid4()
        token = f"Pz{bits.hex}"
        if info.name == "email":
            changes[info.name] = f"{token}@example.org"
        elif info.name == "ip":
            token = str(ipaddress.IPv6Address(bits.int))
            changes[info.name] = token
        else:
            changes[info.name] = token
        planted.append(token)
    return attrs.evolve(record, **changes), planted


@settings(max_examples=60)
@given(records_of_learner())
def test_redaction_holds_for_any_record(sample: tuple[rec.Learner, list[Any]]) -> None:
    """No personal value ever appears in repr() or str() of any generated record."""
    learner, records = sample
    for generated in [learner, *records]:
        record, planted = _planted(generated)
        assert planted, f"{type(record).__name__} has no personal value to plant"
        text = repr(record) + str(record)
        for value in planted:
            # Bare substrings, each half too: a value shown quoted, embedded or cut is a leak.
            half = len(value) // 2
            for part in (value, value[:half], value[half:]):
                assert part not in text, f"{type(record).__name__} leaks a personal value"
        assert "'***'" in text


@settings(max_examples=60)
@given(records_of_learner())
def test_records_round_trip(sample: tuple[rec.Learner, list[Any]]) -> None:
    """attrs.asdict -> constructor and to_json_dict -> from_json_dict give equal records."""
    learner, records = sample
    for record in [learner, *records]:
        cls = type(record)
        rebuilt = cls(**attrs.asdict(record, recurse=False))
        assert rebuilt == record
        assert rec.from_json_dict(cls, rec.to_json_dict(record)) == record


@given(st.from_type(rec.Learner), st.from_type(rec.Invoice), st.from_type(rec.Progress))
@settings(max_examples=25)
def test_from_type_is_registered(
    learner: rec.Learner, invoice: rec.Invoice, progress: rec.Progress
) -> None:
    """hypothesis' entry point makes st.from_type build valid, timezone-aware records."""
    assert learner.created_at.tzinfo is not None
    assert invoice.issued_at.tzinfo is not None
    assert progress.recorded_at.tzinfo is not None


def test_json_form_is_stable() -> None:
    """Dates are ISO 8601 with offset, Decimal a string, durations ISO 8601, enums values."""
    progress = sample(
        rec.Progress,
        recorded_at=T0,
        score=rec.Score(raw=17, min=0, max=20),
        time_spent=dt.timedelta(hours=1, minutes=2, seconds=3, microseconds=500000),
    )
    data = rec.to_json_dict(progress)
    assert data["recorded_at"] == "2024-09-02T08:30:00+00:00"
    assert data["time_spent"] == "PT1H2M3.5S"
    assert data["status"] == "passed"
    assert data["basis"] == "contract"
    assert data["score"] == {"raw": 17, "min": 0, "max": 20, "scaled": 0.85}
    invoice = sample(
        rec.Invoice,
        id="I",
        billing_name="A",
        billing_address="B",
        amount=Decimal("10.50"),
        issued_at=T0,
    )
    assert rec.to_json_dict(invoice)["amount"] == "10.50"


def test_from_json_dict_rejects_bad_data() -> None:
    """Unknown keys, missing fields and malformed values raise ValidationError."""
    good = rec.to_json_dict(make_learner())
    with pytest.raises(ValidationError, match="no field"):
        rec.from_json_dict(rec.Learner, {**good, "shoe_size": 42})
    missing = dict(good)
    del missing["email"]
    with pytest.raises(ValidationError):
        rec.from_json_dict(rec.Learner, missing)
    with pytest.raises(ValidationError):
        rec.from_json_dict(rec.Learner, {**good, "created_at": "yesterday"})
    with pytest.raises(ValidationError):
        rec.from_json_dict(rec.Learner, {**good, "created_at": "2024-01-01T00:00:00"})
    with pytest.raises(ValidationError):
        rec.from_json_dict(rec.Learner, [])  # type: ignore[arg-type]

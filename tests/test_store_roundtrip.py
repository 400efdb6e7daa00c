"""Records go into the store and come back equal, typed and decrypted (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import attrs
import pytest
from hypothesis import HealthCheck, given, settings

from learnprivacy import records as rec
from learnprivacy.crypto import Keyring
from learnprivacy.errors import NotFoundError, RestrictedRecordError, ValidationError
from learnprivacy.store import Store
from learnprivacy.testing.strategies import records_of_learner
from tests import loaded_after, sample
from tests.store_fixtures import by_key, day, keys_for, learner, records_for


def test_every_record_type_round_trips(store: Store) -> None:
    """add_all then get returns records equal to the ones stored, for every built-in type."""
    records = [learner("L1"), *records_for("L1")]
    assert store.add_all(records) == len(records)
    for record in records:
        assert store.get(type(record), record.id) == record


def test_values_come_back_typed_and_in_utc(store: Store) -> None:
    """Datetimes come back aware in UTC (same instant); Decimal, Score, timedelta intact."""
    records = [learner("L1"), *records_for("L1")]
    store.add_all(records)
    progress = store.get(rec.Progress, "L1-P1")
    assert progress is not None
    assert progress.recorded_at.utcoffset() == dt.timedelta(0)
    assert progress.recorded_at == dt.datetime(2024, 1, 5, 7, 30, tzinfo=dt.UTC)
    assert progress.time_spent == dt.timedelta(hours=2, microseconds=5)
    assert progress.score == rec.Score(raw=17, min=0, max=20)
    assert type(progress.score.raw) is int
    invoice = store.get(rec.Invoice, "L1-INV1")
    assert invoice is not None
    assert invoice.amount == Decimal("1234.50")
    assert str(invoice.amount) == "1234.50"


def test_score_number_types_are_kept(store: Store) -> None:
    """A float or Decimal score part comes back as the same type and value."""
    store.add(learner("L1"))
    progress = sample(
        rec.Progress,
        id="P9",
        status=rec.ProgressStatus.COMPLETED,
        recorded_at=day(2024, 2, 1),
        score=rec.Score(raw=0.1, min=Decimal("0.05"), max=1),
    )
    store.add(progress)
    back = store.get(rec.Progress, "P9")
    assert back == progress
    assert back is not None
    assert back.score is not None
    assert type(back.score.raw) is float
    assert type(back.score.min) is Decimal
    assert type(back.score.max) is int


def test_get_returns_none_when_absent(store: Store) -> None:
    """get of an unknown id is None, not an error."""
    assert store.get(rec.Learner, "nobody") is None


def test_records_of_lists_every_record_of_the_subject(store: Store) -> None:
    """records_of returns the learner's account first, then all their records, and nobody else's."""
    mine = [learner("L1"), *records_for("L1")]
    store.add_all([*mine, learner("L2"), *records_for("L2")])
    found = store.records_of("L1")
    assert found[0] == mine[0]
    assert by_key(found) == by_key(mine)
    assert {getattr(r, "learner_id", r.id) for r in found} == {"L1"}


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=records_of_learner(max_each=2))
def test_generated_records_round_trip(store: Store, data: tuple[rec.Learner, list[object]]) -> None:
    """Any valid learner and records of theirs come back equal through records_of and get."""
    subject, records = data
    # Each example gets fresh ids: the database is shared by the examples of one test.
    prefix = uuid.uuid4().hex[:8]
    subject = attrs.evolve(subject, id=prefix + subject.id)
    records = [
        attrs.evolve(r, id=prefix + r.id, learner_id=subject.id)  # type: ignore[misc]
        for r in records
    ]
    store.add_all([subject, *records])
    assert by_key(store.records_of(subject.id)) == by_key([subject, *records])
    for record in [subject, *records]:
        assert store.get(type(record), record.id) == record


def test_query_filters_on_clear_fields(store: Store) -> None:
    """query filters by equality on clear fields (enums, ids), limits, and orders by id."""
    store.add_all([learner("L1"), learner("L2"), *records_for("L1"), *records_for("L2")])
    passed = store.query(rec.Progress, status=rec.ProgressStatus.PASSED, course_id="C1")
    assert [p.id for p in passed] == ["L1-P1", "L2-P1"]
    assert [p.id for p in store.query(rec.Progress, learner_id="L2")] == ["L2-P1"]
    assert len(store.query(rec.Progress, limit=1)) == 1
    assert store.query(rec.Learner, contract_end_at=None, limit=5)[0].id == "L1"


def test_query_refuses_encrypted_fields(store: Store) -> None:
    """Filtering on an encrypted field is refused (its column holds ciphertext only)."""
    with pytest.raises(ValidationError, match=r"Learner\.email"):
        store.query(rec.Learner, email="l1.secret@example.org")
    with pytest.raises(ValidationError):
        store.query(rec.Learner, no_such_field=1)


def test_find_learner_by_email_or_username(store: Store) -> None:
    """find_learner uses the blind index: case-insensitive, exact otherwise, None when absent."""
    ana = learner("L1", email="Ana.Silva@Example.org", username="ana")
    store.add_all([ana, learner("L2")])
    assert store.find_learner(email="ana.silva@example.org") == ana
    assert store.find_learner(email=" ANA.SILVA@EXAMPLE.ORG ") == ana
    assert store.find_learner(username="ana") == ana
    assert store.find_learner(email="ana@example.org") is None
    assert store.find(rec.Certificate, verification_code="nothing") == []
    with pytest.raises(ValidationError):
        store.find_learner()


def test_subjects_lists_learners_and_course_members(store: Store) -> None:
    """subjects() lists learner ids, subjects(course_id=) those with records in that course."""
    store.add_all([learner("L1"), learner("L2"), learner("L3"), *records_for("L2")])
    assert store.subjects() == ["L1", "L2", "L3"]
    assert store.subjects(course_id="C1") == ["L2"]
    assert store.subjects(course_id="C404") == []


def test_update_rectifies_and_re_encrypts(store: Store) -> None:
    """update replaces the values, writes new tokens and an audit entry naming the fields only."""
    from sqlalchemy import select

    original = learner("L1")
    store.add(original)
    table = store._table(rec.Learner).table
    with store._db.read() as connection:
        before = connection.execute(select(table.c.family_name_token)).scalar_one()
    fixed = learner("L1", family_name="Corrected", email="new@example.org")
    store.update(fixed)
    assert store.get(rec.Learner, "L1") == fixed
    assert store.find_learner(email="new@example.org") == fixed
    assert store.find_learner(email=original.email) is None
    with store._db.read() as connection:
        after = connection.execute(select(table.c.family_name_token)).scalar_one()
    assert after != before
    last = list(store.audit)[-1]
    assert last.action == "rectify"
    assert sorted(last.details["fields"]) == ["email", "family_name"]
    assert "Corrected" not in repr(last)


def test_update_of_a_missing_record_raises(store: Store) -> None:
    """Rectifying a record that is not stored is NotFoundError."""
    with pytest.raises(NotFoundError):
        store.update(learner("L404"))


def test_restricted_rows_are_hidden_and_read_only(store: Store) -> None:
    """A restricted record is left out of reads unless asked, and refuses updates."""
    store.add_all([learner("L1"), *records_for("L1")])
    assert store.restrict(rec.Progress, "L1-P1", reason="learner contests accuracy") == 1
    with pytest.raises(RestrictedRecordError):
        store.get(rec.Progress, "L1-P1")
    assert store.get(rec.Progress, "L1-P1", include_restricted=True) is not None
    assert "L1-P1" not in [r.id for r in store.records_of("L1")]
    assert "L1-P1" in [r.id for r in store.records_of("L1", include_restricted=True)]
    progress = store.get(rec.Progress, "L1-P1", include_restricted=True)
    with pytest.raises(RestrictedRecordError):
        store.update(progress)
    assert store.lift_restriction(rec.Progress, "L1-P1") == 1
    assert store.get(rec.Progress, "L1-P1") == progress


def test_restrict_a_whole_learner(store: Store) -> None:
    """restrict(learner_id=) restricts every row of the learner; new records are then refused."""
    records = [learner("L1"), *records_for("L1")]
    store.add_all(records)
    assert store.restrict(learner_id="L1", reason="Art. 18(1)(a)") == len(records)
    assert store.records_of("L1") == []
    assert store.subjects() == []
    assert store.subjects(include_restricted=True) == ["L1"]
    with pytest.raises(RestrictedRecordError):
        store.add(records_for("L1")[0].__class__(**{**_fields(records_for("L1")[0]), "id": "new"}))
    assert store.lift_restriction(learner_id="L1") == len(records)


def _fields(record: object) -> dict[str, object]:
    import attrs

    return attrs.asdict(record, recurse=False)  # type: ignore[arg-type]


def test_store_reopens_with_same_master_key(store_url: str, keyring: Keyring) -> None:
    """Closing and reopening the store on the same master key reads everything back."""
    first = Store(store_url, keys=keys_for(store_url), keyring=keyring)
    records = [learner("L1"), *records_for("L1")]
    first.add_all(records)
    first.close()
    second = Store(
        store_url,
        keys=keys_for(store_url),
        keyring=Keyring.from_master_key(keyring.export_master_key()),
    )
    assert by_key(second.records_of("L1")) == by_key(records)
    assert second.audit.verify()
    second.close()


def test_anonymised_accessor_is_empty_without_anonymisation(store: Store) -> None:
    """No anonymised rows before any sweep; count() counts visible rows."""
    store.add_all([learner("L1"), *records_for("L1")])
    assert list(store.anonymised(rec.Progress)) == []
    assert store.count(rec.Progress) == 1
    assert store.count(rec.Progress, anonymised=True) == 0


def test_core_import_stays_light() -> None:
    """``import learnprivacy`` (records, crypto, retention) does not import SQLAlchemy."""

    light, store = loaded_after(
        "import learnprivacy, learnprivacy.records, learnprivacy.crypto, learnprivacy.retention",
        "import learnprivacy.store",
    )
    assert "sqlalchemy" not in light
    assert "sqlmodel" not in light
    assert "sqlalchemy" in store


def test_public_surface_is_documented() -> None:
    """Every public method of Store and AuditLog has a docstring (test_surface.py checks
    the public names themselves)."""
    from learnprivacy.store import AuditLog

    for cls in (Store, AuditLog):
        for name, member in vars(cls).items():
            if not name.startswith("_") and callable(member):
                assert member.__doc__, f"{cls.__name__}.{name}"

"""Bad input gives typed errors, leaks no personal value and leaves nothing half-written."""

from __future__ import annotations

import pytest

from learnprivacy.crypto import FieldCipher, Keyring
from learnprivacy.errors import (
    ConfigurationError,
    IntegrityError,
    ValidationError,
    WrongMasterKeyError,
)
from learnprivacy.records import Learner, Progress
from learnprivacy.store import Store
from tests import names
from tests.store_fixtures import NOW, keys_for, learner, records_for


def test_unknown_learner_is_refused_and_nothing_is_written(store: Store) -> None:
    """A record naming a learner the store lacks fails the whole batch, learners included."""
    with pytest.raises(IntegrityError) as caught:
        store.add_all([learner("L1"), *records_for("L2")])
    assert "L2" not in str(caught.value)
    assert store.get(Learner, "L1") is None
    assert store.count(Learner) == 0
    assert len(store.audit) == 0


def test_records_may_come_with_their_learner_in_one_batch(store: Store) -> None:
    """A learner and their records in the same add_all are accepted, in any order."""
    store.add_all([*records_for("L1"), learner("L1")])
    assert len(store.records_of("L1")) == 7


def test_duplicate_id_in_a_batch_rolls_everything_back(store: Store) -> None:
    """Two records with one id in a batch: IntegrityError and no row left behind. (Keys
    commit to the key database before the records that use them, so an unused key of L2
    may stay: it protects nothing, and a later write of L2 uses it.)"""
    with pytest.raises(IntegrityError) as caught:
        store.add_all([learner("L1"), learner("L2"), learner("L1", username="other")])
    assert "L1" not in str(caught.value)
    assert store.count(Learner) == 0
    store.add(learner("L2"))
    assert store.get(Learner, "L2") == learner("L2")
    assert len(list(store._keys.list_entries(store.keyring.key_ref("L2")))) == 1


def test_duplicate_of_a_stored_id_is_refused(store: Store) -> None:
    """Adding a record whose id is already stored fails and changes nothing."""
    store.add(learner("L1"))
    before = store.get(Learner, "L1")
    with pytest.raises(IntegrityError):
        store.add_all([learner("L2"), learner("L1", family_name="Changed")])
    assert store.get(Learner, "L1") == before
    assert store.get(Learner, "L2") is None
    # The failed batch's keys were rolled back with it: L2 can still be added.
    store.add(learner("L2"))
    assert store.get(Learner, "L2") == learner("L2")


def test_wrong_master_key_fails_at_open(store_url: str, keyring: Keyring) -> None:
    """Opening a store with another master key raises WrongMasterKeyError before any read."""
    first = Store(store_url, keys=keys_for(store_url), keyring=keyring)
    first.add(learner("L1"))
    first.close()
    with pytest.raises(WrongMasterKeyError):
        Store(store_url, keys=keys_for(store_url), keyring=Keyring.generate())


def test_wrong_master_key_fails_even_on_an_empty_store(store_url: str) -> None:
    """The master-key check exists from the first open, before any record is added."""
    Store(store_url, keys=keys_for(store_url), keyring=Keyring.generate()).close()
    with pytest.raises(WrongMasterKeyError):
        Store(store_url, keys=keys_for(store_url), keyring=Keyring.generate())


def test_keyring_with_keys_in_memory_is_refused(store_url: str) -> None:
    """A keyring that already encrypted values with in-memory keys cannot silently drop them."""
    keyring = Keyring.generate()
    FieldCipher(keyring).encrypt("x", subject="L1", context="c")
    with pytest.raises(ConfigurationError):
        Store(store_url, keys=keys_for(store_url), keyring=keyring)


def test_bad_urls_and_arguments_are_configuration_errors() -> None:
    """Unsupported or malformed URLs raise ConfigurationError."""
    with pytest.raises(ConfigurationError):
        Store("mysql://localhost/db", keyring=Keyring.generate())
    with pytest.raises(ConfigurationError):
        Store("not a url", keyring=Keyring.generate())
    with pytest.raises(ConfigurationError):
        Store("sqlite://", keyring="not a keyring")  # type: ignore[arg-type]


def test_non_records_and_naive_times_are_validation_errors(store: Store) -> None:
    """Objects that are not records and naive datetimes are refused with ValidationError."""
    import datetime as dt

    from learnprivacy.retention import Period, RetentionRule, Schedule, Trigger

    with pytest.raises(ValidationError):
        store.add(object())
    schedule = Schedule({Learner: RetentionRule(Period.parse("P1Y"), Trigger.CREATED)})
    with pytest.raises(ValidationError):
        store.sweep(schedule, now=dt.datetime(2026, 1, 1))
    with pytest.raises(ValidationError):
        store.erase_subject("L1", now=dt.datetime(2026, 1, 1))


def test_errors_never_quote_personal_values(store: Store) -> None:
    """Messages of refused writes name types and rules, never ids or personal values."""
    store.add(learner("SecretLearnerId"))
    values = ["SecretLearnerId", "secretlearnerid.secret@example.org"]
    for attempt in (
        lambda: store.add(learner("SecretLearnerId")),
        lambda: store.add(records_for("SecretUnknown")[0]),
    ):
        with pytest.raises(IntegrityError) as caught:
            attempt()
        text = str(caught.value) + repr(caught.value)
        assert not any(v.lower() in text.lower() for v in [*values, "SecretUnknown"])
        assert caught.value.__cause__ is None


def test_audit_records_adds(store: Store) -> None:
    """Each add_all writes one audit entry per record type, with counts and no ids."""
    store.add_all([learner("L1"), learner("L2"), *records_for("L1")], now=NOW)
    adds = [e for e in store.audit if e.action == "add"]
    assert {e.record_type: e.details["count"] for e in adds}["Learner"] == 2
    assert all(e.at == NOW for e in adds)
    assert not names(repr(adds), "L1")
    assert store.audit.verify()


def test_progress_without_learner_field_values_are_checked(store: Store) -> None:
    """Learner ids are looked up exactly: a learner with a similar id does not satisfy it."""
    store.add(learner("L1"))
    progress = records_for("l1")[0]
    assert isinstance(progress, Progress)
    with pytest.raises(IntegrityError):
        store.add(progress)

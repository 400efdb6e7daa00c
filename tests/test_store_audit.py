"""The audit log is hash-chained, pseudonymous, and names the first tampered entry."""

from __future__ import annotations

import itertools
import json

import pytest
from sqlalchemy import delete, select, text, update

from learnprivacy.errors import AuditTampered
from learnprivacy.records import Progress
from learnprivacy.store import Store
from learnprivacy.store._audit import AuditEntry
from learnprivacy.store._tables import AUDIT, AUDIT_HEAD
from tests.store_fixtures import NOW, forged_audit_row, keys_for, learner, records_for, table_text


def _fill(store: Store) -> None:
    """Five or more entries: adds, restrictions, an erasure."""
    store.add_all([learner("L1"), *records_for("L1")])
    store.add_all([learner("L2"), *records_for("L2")])
    store.restrict(Progress, "L1-P1", reason="accuracy contested")
    store.lift_restriction(Progress, "L1-P1")
    store.erase_subject("L2", now=NOW)
    assert len(store.audit) >= 8


def test_untouched_log_verifies(store: Store) -> None:
    """verify() returns True on an intact log, empty or not."""
    assert store.audit.verify() is True
    _fill(store)
    assert store.audit.verify() is True


def test_entries_are_chained(store: Store) -> None:
    """Each entry's prev_hash is its predecessor's hash; hashes recompute from the content."""
    _fill(store)
    entries = list(store.audit)
    assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    assert all(e.expected_hash() == e.hash for e in entries)
    assert isinstance(entries[0], AuditEntry)


def test_no_learner_id_or_personal_value_in_the_log(store: Store) -> None:
    """Subjects appear only as keyed pseudonyms; no id of a learner, no personal value."""
    _fill(store)
    with store._db.read() as connection:
        rows = "\n".join(repr(tuple(r)) for r in connection.execute(select(AUDIT)))
    for secret in ("'L1'", "'L2'", '"L1"', '"L2"', "secret@example.org", "GivenL1Zq", "BillingL2"):
        assert secret not in rows
    ref = store.audit.subject_ref("L2")
    assert ref.startswith("p1_")
    assert ref in rows
    assert "L2" not in ref


def _tamper(store: Store, statement: object) -> None:
    with store._db.write() as connection:
        connection.execute(statement)  # type: ignore[call-overload]


def _bad_sequence(store: Store) -> int:
    with pytest.raises(AuditTampered) as caught:
        store.audit.verify()
    assert caught.value.sequence is not None
    return caught.value.sequence


def test_modified_entry_is_named(store: Store) -> None:
    """Changing one field of entry 3 makes verify() raise naming entry 3."""
    _fill(store)
    _tamper(store, update(AUDIT).where(AUDIT.c.sequence == 3).values(outcome="forged"))
    assert _bad_sequence(store) == 3


def test_modified_details_are_named(store: Store) -> None:
    """Rewriting the details JSON of entry 4 is caught at entry 4."""
    _fill(store)
    _tamper(
        store,
        update(AUDIT).where(AUDIT.c.sequence == 4).values(details=json.dumps({"count": 99})),
    )
    assert _bad_sequence(store) == 4


def test_deleted_entry_is_named(store: Store) -> None:
    """Deleting entry 2 makes verify() raise at sequence 2 (the missing one)."""
    _fill(store)
    _tamper(store, delete(AUDIT).where(AUDIT.c.sequence == 2))
    assert _bad_sequence(store) == 2


def test_deleted_last_entry_is_named(store: Store) -> None:
    """Cutting the last entry off is caught by the sealed head."""
    _fill(store)
    last = len(store.audit)
    _tamper(store, delete(AUDIT).where(AUDIT.c.sequence == last))
    assert _bad_sequence(store) == last


def test_reordered_entries_are_named(store: Store) -> None:
    """Swapping entries 2 and 5 (renumbering them) is caught at entry 2."""
    _fill(store)
    _tamper(store, update(AUDIT).where(AUDIT.c.sequence == 2).values(sequence=-2))
    _tamper(store, update(AUDIT).where(AUDIT.c.sequence == 5).values(sequence=2))
    _tamper(store, update(AUDIT).where(AUDIT.c.sequence == -2).values(sequence=5))
    assert _bad_sequence(store) == 2


def test_inserted_entry_is_named(store: Store) -> None:
    """An entry inserted after the last one, with a correct-looking chain, is caught."""
    _fill(store)
    entries = list(store.audit)
    last = entries[-1]
    row = forged_audit_row(last, action="erase", details={"ids": ["L1-P1"]})
    _tamper(store, AUDIT.insert().values(**row))
    assert _bad_sequence(store) == row["sequence"]


def test_inserted_entry_in_the_middle_is_named(store: Store) -> None:
    """Shifting entries up to make room for a forged entry 3 is caught at entry 3."""
    _fill(store)
    count = len(store.audit)
    for sequence in range(count, 2, -1):
        _tamper(
            store, update(AUDIT).where(AUDIT.c.sequence == sequence).values(sequence=sequence + 1)
        )
    row = {
        "sequence": 3,
        "at": NOW.replace(tzinfo=None),
        "action": "add",
        "record_type": "Learner",
        "subject_ref": None,
        "actor": "intruder",
        "outcome": "done",
        "details": "{}",
        "prev_hash": list(store.audit)[1].hash,
        "hash": "0" * 64,
    }
    _tamper(store, AUDIT.insert().values(**row))
    assert _bad_sequence(store) == 3


def test_forged_head_seal_is_caught(store: Store) -> None:
    """Rewriting the head without the store's key is caught (the seal is keyed)."""
    _fill(store)
    _tamper(store, update(AUDIT_HEAD).values(seal="f" * 64))
    with pytest.raises(AuditTampered):
        store.audit.verify()


def test_log_continues_across_reopen(store_url: str, keyring: object) -> None:
    """A reopened store appends to the same chain and it still verifies."""
    from learnprivacy.crypto import Keyring

    first = Store(store_url, keys=keys_for(store_url), keyring=Keyring.from_master_key(bytes(32)))
    first.add(learner("L1"))
    first.close()
    second = Store(store_url, keys=keys_for(store_url), keyring=Keyring.from_master_key(bytes(32)))
    second.add(learner("L2"))
    assert [e.sequence for e in second.audit] == [1, 2]
    assert second.audit.verify()
    second.close()
    del keyring


def test_tampering_message_names_no_value(store: Store) -> None:
    """The AuditTampered message names the sequence, not the content of the entry."""
    _fill(store)
    _tamper(store, text("UPDATE lp_audit SET actor = 'GivenL1Zq' WHERE sequence = 1"))
    with pytest.raises(AuditTampered) as caught:
        store.audit.verify()
    assert "GivenL1Zq" not in str(caught.value)
    assert "1" in str(caught.value)
    assert "GivenL1Zq" in table_text(store)

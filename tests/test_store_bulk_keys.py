"""add_all makes the keys of a batch's new learners in one pass.

The random material of every new key (key, key id, wrapping nonce) comes from one
``os.urandom`` call, cut per key: these tests check that no two learners share any of it,
that every key is wrapped for its own learner, and that a shredded learner still stops
the batch.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select

from learnprivacy.crypto import Keyring
from learnprivacy.crypto._validate import SYSTEM_SUBJECT
from learnprivacy.errors import DecryptionError, KeyShreddedError
from learnprivacy.records import Learner
from learnprivacy.store import Store
from learnprivacy.store._keydb import _KEYS
from tests.store_fixtures import copy_token, keys_for, learner

_COUNT = 40


def _learners(prefix: str = "L") -> list[Learner]:
    return [learner(f"{prefix}{i:02d}") for i in range(_COUNT)]


def test_every_new_learner_gets_a_key_of_its_own(store: Store) -> None:
    written = _learners()
    store.add_all(written)
    refs = {store.keyring.key_ref(r.id): r.id for r in written}
    with store._key_db._db.read() as connection:
        rows = connection.execute(
            select(_KEYS.c.subject_ref, _KEYS.c.key_id, _KEYS.c.wrapped, _KEYS.c.state)
        ).all()
    mine = [row for row in rows if row.subject_ref in refs]
    assert sorted(row.subject_ref for row in mine) == sorted(refs)  # one key each
    assert {row.state for row in mine} == {"active"}
    assert len({row.key_id for row in mine}) == _COUNT
    assert len({bytes(row.wrapped)[:12] for row in mine}) == _COUNT  # wrapping nonces
    entries = [
        e
        for ref in refs
        for e in store.keyring._store.list_entries(ref)
        if not e.subject.startswith(SYSTEM_SUBJECT)
    ]
    # Each wrapped key opens only as its own learner's, and the keys differ.
    assert len({store.keyring._unwrap(e) for e in entries}) == _COUNT
    assert store.query(Learner) == written


def test_a_token_moved_between_learners_of_one_batch_does_not_decrypt(store: Store) -> None:
    store.add_all(_learners())
    copy_token(store, "L01", "L02", column="email_token")
    with pytest.raises(DecryptionError):
        store.get(Learner, "L02")


def test_keys_made_in_bulk_survive_reopening_with_the_master_key(store_url: str) -> None:
    master = os.urandom(32)
    written = _learners()
    with Store(store_url, keys=keys_for(store_url), keyring=Keyring(master)) as store:
        store.add_all(written)
    with Store(store_url, keys=keys_for(store_url), keyring=Keyring(master)) as store:
        assert store.query(Learner) == written


def test_a_shredded_learner_in_a_batch_stops_it_and_nothing_is_added(store: Store) -> None:
    """A learner id whose keys were shredded (remembered even before any key existed):
    a batch naming it among new learners raises KeyShreddedError and adds nobody."""
    store.add_all([learner("K1")])
    store.keyring.shred("S1")
    with pytest.raises(KeyShreddedError):
        store.add_all([*_learners("N"), learner("S1")])
    assert [r.id for r in store.query(Learner)] == ["K1"]

"""Keys made many at a time (``Keyring._sealers``, a flush's new learners): each wrapped
for its own learner and scope, and handed to the cipher's short paths at once, never to
another learner, never after a shred, never past a rolled-back transaction."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from learnprivacy.crypto import FieldCipher, Keyring, _token
from learnprivacy.crypto._keystore import InMemoryKeyStore, KeyState
from learnprivacy.crypto._master import MasterKey
from learnprivacy.errors import DecryptionError, IntegrityError, KeyShreddedError
from learnprivacy.records import Learner
from learnprivacy.store import Store
from tests.store_fixtures import learner

MASTER = bytes(range(32))
SUBJECTS = [f"learner-{i}" for i in range(6)]


def test_the_batch_wrapper_writes_the_bytes_of_wrap() -> None:
    master = MasterKey(MASTER)
    wrap = master.wrapper("contract")
    for subject in ("a", "learner-é", "x" * 300):
        key, key_id, nonce = os.urandom(32), os.urandom(8).hex(), os.urandom(12)
        wrapped = wrap(key, subject, key_id, nonce)
        expected = master.wrap(key, subject=subject, scope="contract", key_id=key_id, nonce=nonce)
        assert wrapped == expected
        assert master.unwrap(wrapped, subject=subject, scope="contract", key_id=key_id) == key
        # Bound to its learner, scope and key id: any other opens nothing.
        for other in (
            {"subject": subject + "x", "scope": "contract", "key_id": key_id},
            {"subject": subject, "scope": "default", "key_id": key_id},
            {"subject": subject, "scope": "contract", "key_id": os.urandom(8).hex()},
        ):
            with pytest.raises(InvalidTag):
                master.unwrap(wrapped, **other)


@pytest.mark.parametrize("scope", ["default", "contract"])
def test_each_new_key_is_its_own_learners_and_reaches_the_short_path(scope: str) -> None:
    store = InMemoryKeyStore()
    keyring = Keyring.from_master_key(MASTER, store=store)
    keyring._sealers(SUBJECTS, scope)
    cache = keyring._cache
    table = cache.texts if scope == "default" else cache.scoped
    assert len(table) == len(SUBJECTS)
    assert (scope == "default") == (not cache.scoped)
    cipher = FieldCipher(keyring)
    fresh = Keyring.from_master_key(MASTER, store=store)  # nothing cached: store only
    tokens = {}
    for subject in SUBJECTS:
        ref = keyring.key_ref(subject)
        (entry,) = [e for e in store.list_entries(ref, scope) if e.state is KeyState.ACTIVE]
        # The wrapped key opens for its learner's reference and scope, and its text on
        # the short path names that key.
        assert MasterKey(MASTER).unwrap(
            entry.wrapped, subject=ref, scope=scope, key_id=entry.key_id
        )
        key = subject if scope == "default" else (subject, scope)
        assert table[key][0] == cache.subjects[subject].sealers[scope][1]  # type: ignore[index]
        tokens[subject] = cipher.encrypt_many(
            ["v1", "v2"], subject=subject, contexts=["f1", "f2"], scope=scope
        )
        assert cipher.key_id(tokens[subject][0]) == entry.key_id
    # Opened by a keyring that reads the keys from the store: each under its own learner,
    # under no other.
    other = FieldCipher(fresh)
    for at, subject in enumerate(SUBJECTS):
        assert other.decrypt(tokens[subject][1], subject=subject, context="f2") == "v2"
        neighbour = SUBJECTS[(at + 1) % len(SUBJECTS)]
        with pytest.raises(DecryptionError):
            other.decrypt(tokens[subject][0], subject=neighbour, context="f1")


def test_a_shred_takes_the_remembered_key_away() -> None:
    keyring = Keyring.from_master_key(MASTER, store=InMemoryKeyStore())
    keyring._sealers(SUBJECTS, "default")
    cipher = FieldCipher(keyring)
    victim = SUBJECTS[2]
    assert victim in keyring._cache.texts
    keyring.shred(victim)
    assert victim not in keyring._cache.texts
    with pytest.raises(KeyShreddedError):
        cipher.encrypt_many(["v1", "v2"], subject=victim, contexts=["f1", "f2"])
    with pytest.raises(KeyShreddedError):
        cipher.encrypt("v", subject=victim, context="f")
    assert cipher.encrypt("v", subject=SUBJECTS[3], context="f")


def test_a_sealer_forgotten_before_it_is_remembered_stays_out() -> None:
    keyring = Keyring.from_master_key(MASTER, store=InMemoryKeyStore())
    keyring._sealers(SUBJECTS[:1], "default")
    cache = keyring._cache
    sealer = cache.subjects[SUBJECTS[0]].sealers["default"]
    cache.forget()
    cache.remember_texts("default", [(SUBJECTS[0], sealer)])
    assert not cache.texts
    # Another entry cached since, with another sealer: the old one is not put there.
    keyring._sealer(SUBJECTS[0], "default")
    cache.forget()
    keyring._sealer(SUBJECTS[0], "default")
    cache.remember_texts("default", [(SUBJECTS[0], sealer)])
    assert not cache.texts


def test_a_rolled_back_ingest_leaves_no_remembered_key(tmp_path: Path) -> None:
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    store = Store(
        f"sqlite:///{tmp_path / 'store.db'}",
        keyring=Keyring.from_master_key(MASTER),
        clock=lambda: now,
        batch_size=3,
    )
    try:
        people = [learner(f"L{i}") for i in range(7)]
        people.append(people[0])  # a duplicate id in the last batch
        with pytest.raises(IntegrityError):
            store.add_all(people)
        cache = store.keyring._cache
        assert not cache.texts
        assert not cache.subjects
        assert store.count(Learner) == 0
        # Added again, each learner's values are its own.
        store.add_all(people[:7])
        for person in people[:7]:
            assert store.get(Learner, person.id).email == person.email  # type: ignore[union-attr]
    finally:
        store.close()


@pytest.mark.parametrize("size", [8, 7, 9, 12])
def test_a_sealer_s_header_texts_are_each_header_s_own(size: int) -> None:
    aead = AESGCM(os.urandom(32))
    for subject in ("k1_abc", "learner-é", ""):
        key_id = os.urandom(size)
        sealer = _token.make_sealer(aead, key_id, subject)
        text = _token.header(_token.KIND_TEXT, key_id)
        data = _token.header(_token.KIND_BYTES, key_id)
        part = _token.subject_part(subject)
        assert sealer == (aead, _token.encode(text), _token.encode(data), text + part, data + part)
        assert sealer[1] != sealer[2]

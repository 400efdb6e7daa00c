"""Reads of many records: the keys of a page of rows are fetched and unwrapped together.

``decode_rows`` hands the codec the keyring's openers of every learner of a page
(``Keyring._openers_of_subjects``) instead of going through the cache one learner at a
time. These tests check that this path reads back exactly what was written and refuses
exactly what the one-token path refuses: tampered keys, shredded keys, tokens moved
between learners.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select, update

from learnprivacy.crypto import FieldCipher, Keyring
from learnprivacy.errors import DecryptionError, KeyShreddedError, WrongMasterKeyError
from learnprivacy.records import Learner
from learnprivacy.store import Store, _reads
from learnprivacy.store._keydb import _KEYS
from tests.store_fixtures import copy_token, keys_for, learner

_COUNT = 23


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 5 rows, so that a read of 23 learners spans several pages."""
    monkeypatch.setattr(_reads, "KEY_PAGE", 5)


def _learners() -> list[Learner]:
    return [learner(f"L{i:02d}", email=f"person{i}@example.org") for i in range(_COUNT)]


def test_many_learners_read_back_over_several_pages_with_a_tiny_cache(
    store_url: str, small_pages: None
) -> None:
    """Every learner comes back equal to what was written, across key pages, even when the
    keyring caches two subjects only; the read does not fill (or churn) that cache."""
    written = _learners()
    master = os.urandom(32)
    with Store(store_url, keys=keys_for(store_url), keyring=Keyring(master)) as store:
        store.add_all(written)
    keyring = Keyring(master, cache_size=2)
    with Store(store_url, keys=keys_for(store_url), keyring=keyring) as store:
        assert store.query(Learner) == sorted(written, key=lambda r: r.id)
        assert len(keyring._cache) == 0
        assert [store.get(Learner, r.id) for r in written] == written


def test_a_retired_key_still_opens_its_values_in_a_bulk_read(
    store: Store, small_pages: None
) -> None:
    """Values written under a key that was retired since (a new key now encrypts) read
    back: the page's openers hold every live key of a learner, not only the active one."""
    store.add_all(_learners())
    assert store.keyring.retire("L03", "contract") == 1
    store.update(learner("L04", email="new@example.org"))
    found = {r.id: r for r in store.query(Learner)}
    assert found["L03"].email == "person3@example.org"
    assert found["L04"].email == "new@example.org"


def test_a_tampered_wrapped_key_fails_the_read(store: Store, small_pages: None) -> None:
    """Attack: one learner's wrapped key altered in the key database. The bulk read does
    not skip that learner or return blanks: it raises WrongMasterKeyError."""
    store.add_all(_learners())
    ref = store.keyring.key_ref("L07")
    with store._key_db._db.write() as connection:
        wrapped = connection.execute(
            select(_KEYS.c.wrapped).where(_KEYS.c.subject_ref == ref)
        ).scalar_one()
        altered = bytes(wrapped[:-1]) + bytes([wrapped[-1] ^ 1])
        connection.execute(update(_KEYS).where(_KEYS.c.subject_ref == ref).values(wrapped=altered))
    store.keyring.clear_cache()
    with pytest.raises(WrongMasterKeyError):
        store.query(Learner)


def test_a_shredded_learner_among_many_raises_key_shredded(store: Store, small_pages: None) -> None:
    """A learner whose keys were shredded while their row stayed: the read of all learners
    raises KeyShreddedError, never a record with a missing value."""
    store.add_all(_learners())
    store.keyring.shred("L11")
    with pytest.raises(KeyShreddedError):
        store.query(Learner)


def test_a_token_moved_between_learners_of_one_page_does_not_decrypt(
    store: Store, small_pages: None
) -> None:
    """Attack: a token copied to another learner of the same page, where both learners'
    keys are at hand, still fails: it is bound to its learner and field."""
    store.add_all(_learners())
    copy_token(store, "L01", "L02", column="email_token")
    with pytest.raises(DecryptionError):
        store.query(Learner)


def test_openers_from_any_key_store_match_the_one_token_path() -> None:
    """A key store without ``live_entries`` (the in-memory one) gives the same openers,
    asked subject by subject: retired keys open, shredded ones are left out (their
    tokens then raise KeyShreddedError through the one-token path)."""
    keyring = Keyring.generate()
    cipher = FieldCipher(keyring)
    old = cipher.encrypt("before", subject="A", context="c")
    keyring.retire("A")
    new = cipher.encrypt("after", subject="A", context="c")
    gone = cipher.encrypt("erased", subject="B", context="c")
    keyring.shred("B")
    openers = keyring._openers_of_subjects(keyring._key_refs(["A", "B"]))
    assert len(openers["A"]) == 2
    assert openers["B"] == {}
    assert cipher._decrypt_with(openers["A"], [old, new], "A", ["c", "c"]) == ["before", "after"]
    with pytest.raises(KeyShreddedError):
        cipher._decrypt_with(openers["B"], [gone], "B", ["c"])
    with pytest.raises(DecryptionError):
        cipher._decrypt_with(openers["A"], [new], "A", ["elsewhere"])

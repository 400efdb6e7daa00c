"""Keyring cache: bounded, second-chance eviction, and no needless unwrapping of keys."""

from __future__ import annotations

import contextlib
import os
import threading

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from learnprivacy.crypto import FieldCipher, Keyring, KeyStore
from learnprivacy.crypto._keycache import KeyCache
from learnprivacy.crypto._keystore import KeyEntry
from learnprivacy.errors import KeyShreddedError

CONTEXT = "Learner/x/email"


class CountingKeyring(Keyring):
    """A keyring that counts how many wrapped keys it opens."""

    __slots__ = ("unwrapped",)

    def __init__(self, master_key: bytes, *, store: KeyStore | None = None) -> None:
        super().__init__(master_key, store=store)
        self.unwrapped: list[str] = []

    def _unwrap(self, entry: KeyEntry) -> bytes:
        self.unwrapped.append(entry.subject)
        return super()._unwrap(entry)


def _encrypt(cipher: FieldCipher, subject: str) -> str:
    return cipher.encrypt(f"value of {subject}", subject=subject, context=CONTEXT)


def test_a_subject_used_since_the_last_eviction_gets_a_second_chance() -> None:
    """When the cache is full, the oldest subject not used again is dropped, not a
    subject that was used after it was cached."""
    keyring = Keyring(os.urandom(32), cache_size=3)
    cipher = FieldCipher(keyring)
    tokens = {subject: _encrypt(cipher, subject) for subject in ("A", "B", "C")}
    cipher.decrypt(tokens["A"], subject="A", context=CONTEXT)
    _encrypt(cipher, "D")
    assert set(keyring._cache) == {"A", "C", "D"}
    # A's second chance was used up when it moved to the end: unused since, it goes
    # once it is the oldest again.
    _encrypt(cipher, "E")
    assert set(keyring._cache) == {"A", "D", "E"}
    _encrypt(cipher, "F")
    _encrypt(cipher, "G")
    assert set(keyring._cache) == {"E", "F", "G"}


def test_a_subject_in_constant_use_survives_a_stream_of_new_subjects() -> None:
    """A learner whose values are read between every new learner's stays cached while
    thousands of one-off learners pass through a small cache."""
    keyring = Keyring(os.urandom(32), cache_size=8)
    cipher = FieldCipher(keyring)
    token = _encrypt(cipher, "hot")
    for index in range(2_000):
        _encrypt(cipher, f"L{index}")
        assert "hot" in keyring._cache
        assert cipher.decrypt(token, subject="hot", context=CONTEXT) == "value of hot"
    assert len(keyring._cache) == 8


def test_an_entry_of_texts_stands_for_a_use_and_is_spent_by_the_second_chance() -> None:
    """A subject whose unpacked text key is in ``texts`` was used (hits there set no
    flag): eviction gives it a second chance and takes the entry; it goes next time
    unless used again. A subject evicted leaves ``texts`` too."""
    keyring = Keyring(os.urandom(32), cache_size=3)
    cipher = FieldCipher(keyring)
    for subject in ("A", "B", "C"):
        _encrypt(cipher, subject)  # made: not in texts, not used
    assert cipher._texts == {}
    _encrypt(cipher, "A")  # a use: remembered
    assert set(cipher._texts) == {"A"}
    _encrypt(cipher, "D")
    assert set(keyring._cache) == {"A", "C", "D"}
    assert cipher._texts == {}
    _encrypt(cipher, "E")
    _encrypt(cipher, "F")
    assert set(keyring._cache) == {"D", "E", "F"}
    _encrypt(cipher, "F")
    assert set(cipher._texts) == {"F"}
    for subject in ("G", "H", "I", "J"):
        _encrypt(cipher, subject)
    assert set(cipher._texts) <= set(keyring._cache)
    assert "F" not in cipher._texts


@pytest.mark.parametrize("scope", ["default", "contract"])
def test_every_way_of_dropping_keys_drops_their_texts_entry(scope: str) -> None:
    """The default scope's entry (``texts``) and a purpose's (``scoped``) alike."""
    cache = KeyCache(10)
    aead = AESGCM(os.urandom(32))
    sealer = (aead, "lp1.header-text", "lp1.header-data", b"text-prefix", b"data-prefix")
    text = ("lp1.header-text", aead, b"text-prefix", b"text-prefix"[:12])

    def remembered() -> dict[object, object]:
        return {**cache.texts, **cache.scoped}

    key = "a" if scope == "default" else ("a", scope)
    for forget in (
        lambda: cache.forget("a"),
        lambda: cache.forget(None),
        lambda: cache.forget_many(["b", "a"]),
    ):
        keys = cache.entry("a")
        keys.sealers[scope] = sealer
        cache.remember_text("a", scope, keys, sealer)
        assert remembered() == {key: text}
        forget()
        assert remembered() == {}
        # Keys forgotten meanwhile (a race with a shred) are never remembered.
        cache.remember_text("a", scope, keys, sealer)
        assert remembered() == {}
    # Nor a sealer that is not (or no longer) the cached one of its scope.
    keys = cache.entry("a")
    cache.remember_text("a", scope, keys, sealer)
    assert remembered() == {}
    keys.sealers[scope] = (aead, "lp1.other", "lp1.other-data", b"x", b"y")
    cache.remember_text("a", scope, keys, sealer)
    assert remembered() == {}


def test_a_purpose_scopes_entry_stands_for_a_use_and_leaves_with_its_subject() -> None:
    """As ``texts`` for the default scope: an entry of ``scoped`` earns its subject a
    second chance, which spends it; an evicted subject leaves no ``scoped`` entry."""
    keyring = Keyring(os.urandom(32), cache_size=3)
    cipher = FieldCipher(keyring)

    def seal(subject: str) -> str:
        return cipher.encrypt(subject, subject=subject, context=CONTEXT, scope="contract")

    for subject in ("A", "B", "C"):
        seal(subject)
    assert cipher._scoped == {}
    seal("A")
    assert set(cipher._scoped) == {("A", "contract")}
    seal("D")
    assert set(keyring._cache) == {"A", "C", "D"}
    assert cipher._scoped == {}
    for subject in ("E", "F", "G", "H"):
        seal(subject)
        seal(subject)
    assert {subject for subject, _ in cipher._scoped} <= set(keyring._cache)
    assert "A" not in keyring._cache


def test_the_cache_stays_at_its_size_through_many_evictions() -> None:
    """After tens of thousands of new subjects the cache holds exactly ``cache_size``
    subjects, the newest among them, and evicted subjects' values still decrypt."""
    keyring = Keyring(os.urandom(32), cache_size=100)
    cipher = FieldCipher(keyring)
    first = _encrypt(cipher, "L0")
    for index in range(1, 20_000):
        _encrypt(cipher, f"L{index}")
    assert len(keyring._cache) == 100
    assert "L19999" in keyring._cache
    assert "L0" not in keyring._cache
    assert cipher.decrypt(first, subject="L0", context=CONTEXT) == "value of L0"


def test_a_key_just_created_is_not_unwrapped_again() -> None:
    """Encrypting for a new subject wraps its new key once and uses the key it made;
    reading the value back in the same process opens nothing either."""
    keyring = CountingKeyring(os.urandom(32))
    cipher = FieldCipher(keyring)
    keyring.verify()
    keyring.blind_index()
    keyring.unwrapped.clear()
    token = _encrypt(cipher, "L1")
    assert cipher.decrypt(token, subject="L1", context=CONTEXT) == "value of L1"
    assert keyring.unwrapped == []
    # The stored entry is the real wrapped key: another keyring on the store opens it.
    other = CountingKeyring(keyring.export_master_key(), store=keyring.store)
    assert FieldCipher(other).decrypt(token, subject="L1", context=CONTEXT) == "value of L1"
    assert other.unwrapped == ["L1"]


def test_the_first_keys_of_an_empty_store_are_not_unwrapped_again() -> None:
    """The check value and blind-index key a keyring creates are used as made."""
    keyring = CountingKeyring(os.urandom(32))
    keyring.verify()
    keyring.blind_index()
    assert keyring.unwrapped == []
    reopened = CountingKeyring(keyring.export_master_key(), store=keyring.store)
    reopened.verify()
    assert reopened.unwrapped == ["learnprivacy:system"]


@pytest.mark.parametrize("scope", ["default", "contract"])
def test_shredding_while_other_threads_evict_leaves_no_usable_key(scope: str) -> None:
    """Threads cycling many subjects through a small cache never bring a shredded
    subject's keys back: after the shred, its values raise KeyShreddedError, and its
    scope's key serves no encryption either (the short path's entry went with it)."""
    keyring = Keyring(os.urandom(32), cache_size=4)
    cipher = FieldCipher(keyring)

    def _encrypt(cipher: FieldCipher, subject: str) -> str:
        return cipher.encrypt(f"value of {subject}", subject=subject, context=CONTEXT, scope=scope)

    _encrypt(cipher, "victim")
    victim = _encrypt(cipher, "victim")
    errors: list[BaseException] = []
    start = threading.Barrier(5)

    def churn(worker: int) -> None:
        try:
            start.wait()
            for index in range(300):
                subject = f"W{worker}-{index % 12}"
                token = _encrypt(cipher, subject)
                assert cipher.decrypt(token, subject=subject, context=CONTEXT).endswith(subject)
                if index % 5 == 0:
                    with contextlib.suppress(KeyShreddedError):
                        cipher.decrypt(victim, subject="victim", context=CONTEXT)
        except BaseException as exc:  # collected for the main thread to re-raise
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    start.wait()
    keyring.shred("victim")
    for thread in threads:
        thread.join()
    assert errors == []
    with pytest.raises(KeyShreddedError):
        cipher.decrypt(victim, subject="victim", context=CONTEXT)
    with pytest.raises(KeyShreddedError):
        _encrypt(cipher, "victim")
    assert "victim" not in cipher._texts
    assert all(subject != "victim" for subject, _ in cipher._scoped)

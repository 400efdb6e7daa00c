"""Keyring: constructors, crypto-shredding, scopes, rotation and the safety of key material."""

from __future__ import annotations

import base64
import os
import pickle
import sys
import threading

import attrs
import pytest

from learnprivacy._inplace._refs import RowRefs
from learnprivacy.crypto import (
    BlindIndex,
    FieldCipher,
    InMemoryKeyStore,
    Keyring,
    Pseudonymiser,
    _nonce,
)
from learnprivacy.crypto._keystore import KeyState
from learnprivacy.crypto._master import MasterKey
from learnprivacy.crypto._prekeyed import PrekeyedHmac
from learnprivacy.errors import (
    ConfigurationError,
    KeyShreddedError,
    ValidationError,
    WrongMasterKeyError,
)

CONTEXT = "Learner/L1/email"
PASSPHRASE = "correct horse battery staple"


def _cipher(keyring: Keyring | None = None) -> FieldCipher:
    return FieldCipher(keyring or Keyring.generate())


# -- constructors ------------------------------------------------------------------------


def test_generate_gives_a_random_master_key_with_a_public_id() -> None:
    """generate() draws a fresh 32-byte master key; its id is 16 hex characters."""
    first, second = Keyring.generate(), Keyring.generate()
    assert len(first.export_master_key()) == 32
    assert first.export_master_key() != second.export_master_key()
    assert len(first.master_key_id) == 16
    int(first.master_key_id, 16)
    assert first.master_key_id != second.master_key_id


def test_a_saved_master_key_reopens_the_same_store() -> None:
    """from_master_key and Keyring(master_key=) on the exported key read earlier values."""
    keyring = Keyring.generate()
    token = _cipher(keyring).encrypt("v", subject="L1", context=CONTEXT)
    raw = keyring.export_master_key()
    for reopened in (
        Keyring.from_master_key(raw, store=keyring.store),
        Keyring(master_key=raw, store=keyring.store),
    ):
        reopened.verify()
        assert _cipher(reopened).decrypt(token, subject="L1", context=CONTEXT) == "v"


@pytest.mark.parametrize("key", [b"", b"\x00" * 31, b"\x00" * 33, b"\x00" * 64, "0" * 32, None])
def test_master_keys_must_be_exactly_32_bytes(key: object) -> None:
    """Short, long and non-bytes master keys are a ValidationError."""
    with pytest.raises(ValidationError) as caught:
        Keyring(master_key=key)  # type: ignore[arg-type]
    assert caught.value.field == "master_key"


def test_from_env_reads_standard_and_urlsafe_base64() -> None:
    """The environment variable holds base64 (either alphabet, padding optional)."""
    raw = bytes(range(200, 232))
    expected = Keyring(raw).master_key_id
    for text in (
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        f"  {base64.b64encode(raw).decode()}\n",
    ):
        keyring = Keyring.from_env(environ={"LEARNPRIVACY_MASTER_KEY": text})
        assert keyring.master_key_id == expected
    named = Keyring.from_env("MY_KEY", environ={"MY_KEY": base64.b64encode(raw).decode()})
    assert named.master_key_id == expected


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit mapping, os.environ is read."""
    raw = os.urandom(32)
    monkeypatch.setenv("LEARNPRIVACY_MASTER_KEY", base64.b64encode(raw).decode())
    assert Keyring.from_env().export_master_key() == raw


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"LEARNPRIVACY_MASTER_KEY": ""},
        {"LEARNPRIVACY_MASTER_KEY": "not base64 at all!"},
        {"LEARNPRIVACY_MASTER_KEY": base64.b64encode(b"short-secret-key").decode()},
    ],
)
def test_from_env_errors_name_the_variable_not_the_value(environ: dict[str, str]) -> None:
    """Missing or bad variables are a ConfigurationError that never quotes the value."""
    with pytest.raises(ConfigurationError) as caught:
        Keyring.from_env(environ=environ)
    message = str(caught.value)
    assert "LEARNPRIVACY_MASTER_KEY" in message
    for value in environ.values():
        if value:
            assert value not in message


def test_passphrase_and_salt_give_a_stable_master_key() -> None:
    """The same passphrase and salt derive the same key; another salt another key."""
    salt = Keyring.new_salt()
    assert len(salt) == 16
    keyring = Keyring.from_passphrase(PASSPHRASE, salt=salt)
    token = _cipher(keyring).encrypt("v", subject="L1", context=CONTEXT)
    again = Keyring.from_passphrase(PASSPHRASE, salt=salt, store=keyring.store)
    assert again.master_key_id == keyring.master_key_id
    assert _cipher(again).decrypt(token, subject="L1", context=CONTEXT) == "v"
    assert Keyring.derive_master_key(PASSPHRASE, salt=salt) == keyring.export_master_key()
    other = Keyring.from_passphrase(PASSPHRASE, salt=Keyring.new_salt(), store=keyring.store)
    assert other.master_key_id != keyring.master_key_id
    with pytest.raises(WrongMasterKeyError):
        other.verify()


@pytest.mark.parametrize(
    ("passphrase", "salt", "field"),
    [
        ("too short", b"s" * 16, "passphrase"),
        (b"correct horse battery staple", b"s" * 16, "passphrase"),
        (PASSPHRASE, b"s" * 15, "salt"),
        (PASSPHRASE, "s" * 16, "salt"),
    ],
)
def test_weak_passphrases_and_short_salts_are_refused(
    passphrase: object, salt: object, field: str
) -> None:
    """Passphrases under 12 characters and salts under 16 bytes are a ValidationError."""
    with pytest.raises(ValidationError) as caught:
        Keyring.from_passphrase(passphrase, salt=salt)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert PASSPHRASE not in str(caught.value)


# -- shredding ---------------------------------------------------------------------------


def test_shredded_values_raise_key_shredded_error() -> None:
    """After shred(subject), the subject's values raise KeyShreddedError; others stay."""
    cipher = _cipher()
    mine = cipher.encrypt("ana@example.org", subject="L1", context=CONTEXT)
    theirs = cipher.encrypt("bob@example.org", subject="L2", context="Learner/L2/email")
    cipher.decrypt(mine, subject="L1", context=CONTEXT)
    assert cipher.keyring.shred("L1") == 1
    with pytest.raises(KeyShreddedError) as caught:
        cipher.decrypt(mine, subject="L1", context=CONTEXT)
    assert "ana" not in str(caught.value)
    assert cipher.decrypt(theirs, subject="L2", context="Learner/L2/email") == "bob@example.org"


def test_shredding_destroys_the_stored_key_material() -> None:
    """Shredded entries keep no wrapped key, only a tombstone."""
    cipher = _cipher()
    cipher.encrypt("v", subject="L1", context=CONTEXT, scope="contract")
    cipher.keyring.shred("L1")
    entries = list(cipher.keyring.store.list_entries("L1"))
    assert entries
    assert all(e.state is KeyState.SHREDDED and e.wrapped == b"" for e in entries)
    assert all(e.master_key_id == "" for e in entries)


def test_shredding_clears_the_memory_cache() -> None:
    """shred() drops the subject's unwrapped keys from this process's cache."""
    cipher = _cipher()
    token = cipher.encrypt("v", subject="L1", context=CONTEXT)
    cipher.decrypt(token, subject="L1", context=CONTEXT)
    assert "L1" in cipher.keyring._cache
    cipher.keyring.shred("L1")
    assert "L1" not in cipher.keyring._cache


def test_encrypting_for_a_shredded_subject_is_refused_until_revived() -> None:
    """Shredded state is remembered: no fresh key appears silently; revive() is explicit."""
    cipher = _cipher()
    keyring = cipher.keyring
    old = cipher.encrypt("old", subject="L1", context=CONTEXT)
    keyring.shred("L1")
    assert keyring.is_shredded("L1")
    with pytest.raises(KeyShreddedError):
        cipher.encrypt("new", subject="L1", context=CONTEXT)
    with pytest.raises(KeyShreddedError):
        cipher.encrypt("new", subject="L1", context=CONTEXT, scope="never-used")
    key_id = keyring.revive("L1")
    assert not keyring.is_shredded("L1")
    new = cipher.encrypt("new", subject="L1", context=CONTEXT)
    assert cipher.key_id(new) == key_id
    assert cipher.decrypt(new, subject="L1", context=CONTEXT) == "new"
    with pytest.raises(KeyShreddedError):
        cipher.decrypt(old, subject="L1", context=CONTEXT)
    assert keyring.is_shredded("L1", "never-used")


def test_shredding_a_subject_that_never_had_keys_is_remembered() -> None:
    """A subject erased before any encryption cannot get keys afterwards either."""
    cipher = _cipher()
    assert cipher.keyring.shred("L9", "contract") == 0
    with pytest.raises(KeyShreddedError):
        cipher.encrypt("v", subject="L9", context=CONTEXT, scope="contract")
    cipher.encrypt("v", subject="L9", context=CONTEXT, scope="legal")


def test_shredding_one_scope_leaves_the_others_readable() -> None:
    """Erasure of contract data keeps legally retained invoice data readable."""
    cipher = _cipher()
    name, billing = "Learner/L1/given_name", "Invoice/I1/billing_name"
    contract = cipher.encrypt("Ana", subject="L1", context=name, scope="contract")
    invoice = cipher.encrypt("Ana M.", subject="L1", context=billing, scope="legal")
    assert cipher.keyring.shred("L1", "contract") == 1
    with pytest.raises(KeyShreddedError):
        cipher.decrypt(contract, subject="L1", context=name)
    assert cipher.decrypt(invoice, subject="L1", context=billing) == "Ana M."
    cipher.encrypt("more", subject="L1", context="Invoice/I2/billing_name", scope="legal")
    assert cipher.keyring.is_shredded("L1", "contract")
    assert not cipher.keyring.is_shredded("L1", "legal")
    assert cipher.keyring.shred("L1") == 1
    with pytest.raises(KeyShreddedError):
        cipher.decrypt(invoice, subject="L1", context=billing)


def test_shred_in_another_process_applies_after_clear_cache() -> None:
    """A keyring sharing the store sees another's shred once its cache is cleared."""
    store = InMemoryKeyStore()
    raw = os.urandom(32)
    reader = _cipher(Keyring(raw, store=store))
    token = reader.encrypt("v", subject="L1", context=CONTEXT)
    reader.decrypt(token, subject="L1", context=CONTEXT)
    Keyring(raw, store=store).shred("L1")
    reader.keyring.clear_cache("L1")
    with pytest.raises(KeyShreddedError):
        reader.decrypt(token, subject="L1", context=CONTEXT)


@pytest.mark.parametrize("subject", ["", None, "learnprivacy:system"])
def test_shred_checks_its_subject(subject: object) -> None:
    """The keyring's own keys and malformed subjects cannot be shredded."""
    with pytest.raises(ValidationError):
        Keyring.generate().shred(subject)  # type: ignore[arg-type]


# -- retiring keys -----------------------------------------------------------------------


def test_retired_keys_decrypt_but_no_longer_encrypt() -> None:
    """retire() makes the next encryption use a new key; old values stay readable."""
    cipher = _cipher()
    first = cipher.encrypt("a", subject="L1", context=CONTEXT)
    assert cipher.keyring.retire("L1") == 1
    assert cipher.keyring.retire("L1") == 0
    second = cipher.encrypt("b", subject="L1", context=CONTEXT)
    assert cipher.key_id(first) != cipher.key_id(second)
    assert cipher.decrypt(first, subject="L1", context=CONTEXT) == "a"
    states = {e.key_id: e.state for e in cipher.keyring.store.list_entries("L1")}
    assert states == {
        cipher.key_id(first): KeyState.RETIRED,
        cipher.key_id(second): KeyState.ACTIVE,
    }


def test_retiring_after_a_revive_does_not_block_encryption() -> None:
    """A revived then retired scope gets a new key, not a KeyShreddedError."""
    cipher = _cipher()
    cipher.keyring.shred("L1")
    cipher.keyring.revive("L1")
    cipher.encrypt("a", subject="L1", context=CONTEXT)
    cipher.keyring.retire("L1")
    cipher.encrypt("b", subject="L1", context=CONTEXT)


# -- rotation and the master key check ---------------------------------------------------


def _populate(cipher: FieldCipher) -> dict[tuple[str, str], str]:
    tokens = {}
    for subject in ("L1", "L2", "L3"):
        for scope in ("contract", "legal"):
            context = f"Learner/{subject}/{scope}"
            tokens[subject, context] = cipher.encrypt(
                f"{subject}-{scope}", subject=subject, context=context, scope=scope
            )
    return tokens


def test_rotate_rewraps_every_key_and_keeps_values_readable() -> None:
    """After rotate(), every value still decrypts, in this process and from the new key."""
    cipher = _cipher()
    keyring = cipher.keyring
    tokens = _populate(cipher)
    keyring.shred("L3", "legal")
    index = keyring.blind_index().compute("ana@example.org", field="Learner.email")
    old_raw, old_id = keyring.export_master_key(), keyring.master_key_id
    new_id = keyring.rotate()
    assert new_id == keyring.master_key_id != old_id
    assert keyring.export_master_key() != old_raw
    live = [e for e in keyring.store.list_entries() if e.state is not KeyState.SHREDDED]
    assert live
    assert all(e.master_key_id == new_id for e in live)
    fresh = _cipher(Keyring(keyring.export_master_key(), store=keyring.store))
    fresh.keyring.verify()
    for (subject, context), token in tokens.items():
        if (subject, context) == ("L3", "Learner/L3/legal"):
            with pytest.raises(KeyShreddedError):
                fresh.decrypt(token, subject=subject, context=context)
            continue
        expected = context.rsplit("/", 1)[1]
        assert cipher.decrypt(token, subject=subject, context=context).endswith(expected)
        assert fresh.decrypt(token, subject=subject, context=context).endswith(expected)
    assert fresh.keyring.blind_index().compute("ana@example.org", field="Learner.email") == index


def test_the_old_master_key_no_longer_opens_the_store() -> None:
    """After rotation the previous master key is refused by verify() and by decryption."""
    cipher = _cipher()
    tokens = _populate(cipher)
    old_raw = cipher.keyring.export_master_key()
    cipher.keyring.rotate(os.urandom(32))
    stale = _cipher(Keyring(old_raw, store=cipher.keyring.store))
    with pytest.raises(WrongMasterKeyError):
        stale.keyring.verify()
    (subject, context), token = next(iter(tokens.items()))
    with pytest.raises(WrongMasterKeyError):
        stale.decrypt(token, subject=subject, context=context)


def test_rotate_to_a_given_key_returns_its_id() -> None:
    """rotate(new_key) switches to exactly that key."""
    keyring = Keyring.generate()
    new = os.urandom(32)
    assert keyring.rotate(new) == Keyring(new).master_key_id
    assert keyring.export_master_key() == new
    with pytest.raises(ValidationError):
        keyring.rotate(b"short")


def test_an_interrupted_rotation_is_finished_by_rewrap() -> None:
    """Keys still under the previous master stay readable and rewrap() moves them."""
    old, new = os.urandom(32), os.urandom(32)
    cipher = _cipher(Keyring(old))
    tokens = _populate(cipher)
    store = cipher.keyring.store
    # Simulate a crash after the first entry was rewrapped: rewrap only L1's entries.
    old_master, new_master = MasterKey(old), MasterKey(new)
    for entry in store.list_entries("L1"):
        key = old_master.unwrap(
            entry.wrapped, subject=entry.subject, scope=entry.scope, key_id=entry.key_id
        )
        wrapped = new_master.wrap(
            key, subject=entry.subject, scope=entry.scope, key_id=entry.key_id
        )
        assert store.update(attrs.evolve(entry, master_key_id=new_master.key_id, wrapped=wrapped))
    with pytest.raises(WrongMasterKeyError):
        _cipher(Keyring(new, store=store)).decrypt(
            tokens["L2", "Learner/L2/legal"], subject="L2", context="Learner/L2/legal"
        )
    resumed = _cipher(Keyring(new, store=store, previous_master_keys=[old]))
    resumed.keyring.verify()
    assert resumed.decrypt(
        tokens["L2", "Learner/L2/legal"], subject="L2", context="Learner/L2/legal"
    )
    assert resumed.keyring.rewrap() == 5  # four data keys of L2 and L3, then the check value
    reopened = _cipher(Keyring(new, store=store))
    reopened.keyring.verify()
    for (subject, context), token in tokens.items():
        reopened.decrypt(token, subject=subject, context=context)


def test_verify_binds_a_store_to_its_master_key() -> None:
    """The first verify() records a check value; another master key is then refused."""
    store = InMemoryKeyStore()
    keyring = Keyring.generate(store=store)
    keyring.verify()
    keyring.verify()
    with pytest.raises(WrongMasterKeyError) as caught:
        Keyring.generate(store=store).verify()
    assert keyring.export_master_key().hex() not in str(caught.value)


def test_first_key_creation_binds_the_store() -> None:
    """Encrypting once is enough for a wrong master key to be detected by verify()."""
    cipher = _cipher()
    cipher.encrypt("v", subject="L1", context=CONTEXT)
    with pytest.raises(WrongMasterKeyError):
        Keyring.generate(store=cipher.keyring.store).verify()


def test_altered_wrapped_keys_are_detected() -> None:
    """A wrapped key changed in the store raises WrongMasterKeyError, never bad plaintext."""
    cipher = _cipher()
    token = cipher.encrypt("v", subject="L1", context=CONTEXT)
    store = cipher.keyring.store
    (entry,) = store.list_entries("L1")
    tampered = bytearray(entry.wrapped)
    tampered[-1] ^= 1
    store.update(attrs.evolve(entry, wrapped=bytes(tampered)))
    cipher.keyring.clear_cache()
    with pytest.raises(WrongMasterKeyError):
        cipher.decrypt(token, subject="L1", context=CONTEXT)


def test_wrapped_keys_are_bound_to_subject_and_scope() -> None:
    """A wrapped key copied to another subject's entry does not unwrap."""
    cipher = _cipher()
    cipher.encrypt("v", subject="L1", context=CONTEXT)
    token = cipher.encrypt("w", subject="L2", context=CONTEXT)
    store = cipher.keyring.store
    (mine,) = store.list_entries("L1")
    (theirs,) = store.list_entries("L2")
    store.update(attrs.evolve(theirs, wrapped=mine.wrapped))
    cipher.keyring.clear_cache()
    with pytest.raises(WrongMasterKeyError):
        cipher.decrypt(token, subject="L2", context=CONTEXT)


# -- key material never leaks ------------------------------------------------------------


def test_reprs_never_show_key_material() -> None:
    """No repr shows a master, data, wrapped, index or pseudonym key in any encoding."""
    keyring = Keyring.generate()
    cipher = _cipher(keyring)
    cipher.encrypt("ana@example.org", subject="L1", context=CONTEXT)
    secret = keyring.export_master_key()
    pseudo_key = os.urandom(32)
    objects: list[object] = [
        keyring,
        cipher,
        keyring.store,
        *keyring.store.list_entries(),
        MasterKey(secret),
        keyring.blind_index(),
        BlindIndex(pseudo_key),
        Pseudonymiser(pseudo_key, domain="employer-report"),
    ]
    wrapped = [e.wrapped for e in keyring.store.list_entries()]
    for thing in objects:
        text = repr(thing) + str(thing)
        for key in (secret, pseudo_key, *wrapped):
            for encoded in (
                key.hex(),
                repr(key),
                base64.b64encode(key).decode(),
                base64.urlsafe_b64encode(key).decode(),
            ):
                assert encoded not in text
        assert "ana@example.org" not in text


def test_key_holders_cannot_be_pickled() -> None:
    """Pickling would write keys in clear, so it is refused, by every holder of a key."""
    keyring = Keyring.generate()
    for thing in (
        keyring,
        MasterKey(os.urandom(32)),
        keyring.blind_index(),
        Pseudonymiser(os.urandom(32), domain="d"),
        PrekeyedHmac(os.urandom(32), b"prefix"),
        RowRefs(os.urandom(32)),
    ):
        with pytest.raises(TypeError, match="cannot be pickled: they hold a key"):
            pickle.dumps(thing)


# -- caches and concurrency --------------------------------------------------------------


def test_cache_is_bounded_and_evictions_reload() -> None:
    """With cache_size=2, at most two subjects stay cached and evicted keys reload."""
    cipher = _cipher(Keyring(os.urandom(32), cache_size=2))
    tokens = {f"L{i}": cipher.encrypt(f"v{i}", subject=f"L{i}", context=CONTEXT) for i in range(6)}
    assert len(cipher.keyring._cache) <= 2
    for subject, token in tokens.items():
        assert cipher.decrypt(token, subject=subject, context=CONTEXT) == f"v{subject[1:]}"
    assert len(cipher.keyring._cache) <= 2
    with pytest.raises(ValidationError):
        Keyring(os.urandom(32), cache_size=0)


def test_concurrent_first_encryptions_share_one_key() -> None:
    """Threads encrypting for a new subject at once converge on a single active key."""
    cipher = _cipher()
    tokens: list[str] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        tokens.append(cipher.encrypt("v", subject="L1", context=CONTEXT))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    active = [e for e in cipher.keyring.store.list_entries("L1") if e.state is KeyState.ACTIVE]
    assert len(active) == 1
    assert {cipher.key_id(t) for t in tokens} == {active[0].key_id}


def test_nonces_are_never_repeated_in_this_process() -> None:
    """Pooled nonces are handed out once each, from threads too."""
    seen: list[bytes] = []

    def work() -> None:
        seen.extend(_nonce.random_nonce() for _ in range(2000))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == len(set(seen)) == 8000
    assert all(len(n) == 12 for n in seen)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_reuse_the_parents_nonces() -> None:
    """The nonce pool is emptied in a forked child, so parent and child never share nonces."""
    _nonce.random_nonce()
    upcoming = list(_nonce._pool)
    assert upcoming
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.write(write, _nonce.random_nonce())
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 64)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 12
    assert child not in upcoming
    assert sys.platform != "win32"


def test_key_references_follow_their_definition() -> None:
    """``k1_`` + URL-safe base64 (unpadded) of HMAC-SHA256(HMAC-SHA256(index key, label),
    subject)[:16]: key databases written by any version name learners this way, so a
    faster computation must give the same text."""
    import hashlib
    import hmac

    from learnprivacy.keys import KeyDatabase

    keys = KeyDatabase("sqlite://")
    keyring = keys.keyring(Keyring.generate())
    index_key = keyring._index_secret()
    ref_key = hmac.new(index_key, b"learnprivacy/v1/key-store-subject", hashlib.sha256).digest()
    for subject in ("L1", "learner-é", "x" * 255, "L2"):
        digest = hmac.new(ref_key, subject.encode(), hashlib.sha256).digest()[:16]
        expected = "k1_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")
        assert keyring.key_ref(subject) == expected
    keys.close()


def test_remembered_key_references_are_bounded_and_exact() -> None:
    """References remembered between a read's key fetch and its decryption are the
    computed ones, and no more than a bounded number stay in memory."""
    import hashlib
    import hmac

    from learnprivacy.crypto import _keyring as keyring_module
    from learnprivacy.keys import KeyDatabase

    keys = KeyDatabase("sqlite://")
    keyring = keys.keyring(Keyring.generate())
    ref_key = hmac.new(
        keyring._index_secret(), b"learnprivacy/v1/key-store-subject", hashlib.sha256
    ).digest()

    def expected(subject: str) -> str:
        digest = hmac.new(ref_key, subject.encode(), hashlib.sha256).digest()[:16]
        return "k1_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")

    many = [f"L{i}" for i in range(keyring_module._REFS_KEPT + 10)]
    assert keyring._key_refs(many[:50]) == {s: expected(s) for s in many[:50]}
    for subject in many:
        assert keyring.key_ref(subject) == expected(subject)
        assert len(keyring._refs) <= keyring_module._REFS_KEPT
    assert keyring._key_refs(many) == {s: expected(s) for s in many}
    assert len(keyring._refs) <= keyring_module._REFS_KEPT
    keys.close()

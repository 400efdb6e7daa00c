"""Personal fields are stored only as tokens bound to their place; keys live in SQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from learnprivacy.crypto import Keyring, KeyStore
from learnprivacy.crypto._keystore import KeyEntry, KeyState
from learnprivacy.errors import DecryptionError, KeyShreddedError
from learnprivacy.records import Invoice, Learner, fields_of
from learnprivacy.store import Store
from tests.store_fixtures import (
    assert_not_stored,
    copy_token,
    keys_for,
    learner,
    personal_values,
    raw_bytes,
    records_for,
)


def test_no_personal_value_is_stored_in_clear(store: Store, store_url: str) -> None:
    """No encrypted field's value appears in any table (nor in the SQLite file's bytes)."""
    records = [learner("L1"), *records_for("L1")]
    store.add_all(records)
    secrets = personal_values(records)
    assert len(secrets) >= 10
    assert_not_stored(store, store_url, secrets)


def test_encrypted_columns_hold_tokens_only(store: Store) -> None:
    """Every token column holds a versioned FieldCipher token (lp1.) or NULL."""
    store.add_all([learner("L1"), *records_for("L1")])
    for rt in store._record_tables():
        for spec in rt.fields:
            if not spec.encrypted:
                continue
            with store._db.read() as connection:
                values = connection.execute(select(rt.table.c[spec.token_column])).scalars()
                assert all(v is None or v.startswith("lp1.") for v in values)


def test_token_moved_to_another_row_does_not_decrypt(store: Store) -> None:
    """A token copied to another learner's row fails: it is bound to Type/id/field and subject."""
    store.add_all([learner("L1"), learner("L2")])
    copy_token(store, "L1", "L2", column="email_token")
    with pytest.raises(DecryptionError):
        store.get(Learner, "L2")
    copy_token(store, "L1", "L1", column="family_name_token", target_column="given_name_token")
    with pytest.raises(DecryptionError):
        store.get(Learner, "L1")


def test_each_record_class_uses_its_key_scope(store: Store) -> None:
    """Tokens are made under the key of the class's scope (invoices under 'legal', ...)."""
    store.add_all([learner("L1"), *records_for("L1")])
    scopes = {e.scope: e.key_id for e in store._keys.list_entries(store.keyring.key_ref("L1"))}
    assert set(scopes) == {"contract", "legal", "consent", "security"}
    for rt in store._record_tables():
        encrypted = [f for f in rt.fields if f.encrypted]
        if not encrypted:
            continue
        with store._db.read() as connection:
            row = connection.execute(select(rt.table)).first()
        assert row is not None
        token = row._mapping[encrypted[0].token_column]
        assert store.cipher.key_id(token) == scopes[rt.scope], rt.name


def test_blind_index_columns_only_for_declared_fields(store: Store) -> None:
    """Blind-index columns exist for fields declared blind_index=True and no other."""
    for rt in store._record_tables():
        declared = {f.name for f in fields_of(rt.cls) if f.blind_index and f.encrypted}
        columns = {
            c.name.removesuffix("_bidx") for c in rt.table.columns if c.name.endswith("_bidx")
        }
        assert columns == declared, rt.name
    assert {c.name for c in store._table(Learner).table.columns} >= {"email_bidx", "username_bidx"}


def test_shredded_keys_make_tokens_unreadable(store: Store) -> None:
    """After shredding a learner's legal scope, their invoice raises KeyShreddedError."""
    store.add_all([learner("L1"), *records_for("L1")])
    store.keyring.shred("L1", "legal")
    with pytest.raises(KeyShreddedError):
        store.get(Invoice, "L1-INV1")
    assert store.get(Learner, "L1") == learner("L1")


def test_master_key_rotation_keeps_the_store_readable(store_url: str) -> None:
    """Rotating the master key rewraps the keys in SQL; the store reopens on the new key."""
    first = Store(store_url, keys=keys_for(store_url), keyring=Keyring.generate())
    records = [learner("L1"), *records_for("L1")]
    first.add_all(records)
    new_key = bytes(reversed(range(32)))
    first.keyring.rotate(new_key)
    first.close()
    second = Store(store_url, keys=keys_for(store_url), keyring=Keyring.from_master_key(new_key))
    assert second.get(Learner, "L1") == records[0]
    assert second.find_learner(email=records[0].email) == records[0]
    assert second.audit.verify()
    second.close()


# -- the KeyStore protocol over SQL ------------------------------------------------------


def _entry(subject: str, scope: str, key_id: str, state: KeyState = KeyState.ACTIVE) -> KeyEntry:
    return KeyEntry(
        subject=subject,
        scope=scope,
        key_id=key_id,
        state=state,
        master_key_id="00112233aabbccdd",
        wrapped=bytes(60),
    )


def test_sql_key_store_implements_the_protocol(store: Store) -> None:
    """SqlKeyStore is a KeyStore: add, get, list, update, shred, tombstones, revive."""
    keys = store._keys
    assert isinstance(keys, KeyStore)
    first = keys.add(_entry("S1", "contract", "aaaaaaaaaaaaaaaa"))
    # A second active key for the same (subject, scope) is not stored: the first wins.
    assert keys.add(_entry("S1", "contract", "bbbbbbbbbbbbbbbb")) == first
    assert keys.get("S1", "bbbbbbbbbbbbbbbb") is None
    assert keys.get("S1", "aaaaaaaaaaaaaaaa") == first
    keys.add(_entry("S1", "legal", "cccccccccccccccc"))
    assert {e.scope for e in keys.list_entries("S1")} == {"contract", "legal"}
    assert [e.key_id for e in keys.list_entries("S1", "legal")] == ["cccccccccccccccc"]
    retired = _entry("S1", "contract", "aaaaaaaaaaaaaaaa", KeyState.RETIRED)
    assert keys.update(retired) is True
    assert keys.get("S1", "aaaaaaaaaaaaaaaa") == retired
    assert keys.update(_entry("S1", "contract", "ffffffffffffffff")) is False
    assert keys.mark_shredded("S1", "contract") == 1
    assert keys.is_shredded("S1", "contract") is True
    assert keys.is_shredded("S1", "legal") is False
    shredded = keys.get("S1", "aaaaaaaaaaaaaaaa")
    assert shredded is not None
    assert shredded.state is KeyState.SHREDDED
    assert shredded.wrapped == b""
    # A shredded entry is never brought back by update.
    assert keys.update(retired) is False
    with pytest.raises(KeyShreddedError):
        keys.add(_entry("S1", "contract", "dddddddddddddddd"))
    revived = keys.add(_entry("S1", "contract", "dddddddddddddddd"), revive=True)
    assert revived.key_id == "dddddddddddddddd"
    assert keys.is_shredded("S1", "contract") is False
    assert keys.mark_shredded("S1") == 2
    assert keys.is_shredded("S1", "consent") is True


def test_shredded_wrapped_key_bytes_are_gone_from_the_file(tmp_path: Path) -> None:
    """The wrapped key is never in the records file; in the key database's file, shredding
    overwrites it: its bytes are not left there (nor in its write-ahead log)."""
    store_url = f"sqlite:///{tmp_path / 'lms.db'}"
    keys_url = f"sqlite:///{tmp_path / 'lms.keys.db'}"
    store = Store(store_url, keys=keys_for(store_url), keyring=Keyring.generate())
    store.add(learner("L1"))
    entry = next(store._keys.list_entries(store.keyring.key_ref("L1"), "contract"))
    assert entry.wrapped not in raw_bytes(store_url)
    assert entry.wrapped in raw_bytes(keys_url)
    store.keyring.shred("L1", "contract")
    assert entry.wrapped not in raw_bytes(keys_url)
    assert entry.wrapped not in raw_bytes(store_url)
    store.close()

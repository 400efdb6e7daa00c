"""Opening a store: migrations, record tables, the keyring binding and the audit key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

from sqlalchemy import Connection, insert, select, text

from learnprivacy.crypto import InMemoryKeyStore, Keyring
from learnprivacy.errors import ConfigurationError
from learnprivacy.records._base import record_types
from learnprivacy.store import _migrate
from learnprivacy.store._engine import Database
from learnprivacy.store._keystore import SqlKeyStore
from learnprivacy.store._schema import BUILTIN_TYPES, METADATA, RecordTable
from learnprivacy.store._tables import META

__all__ = ["audit_keys", "bind_keyring", "ensure_table", "migrate", "read_meta"]

# Any constant works: it only has to be the same in every process opening the store.
_MIGRATION_LOCK = 0x6C70_7374_6F72  # "lpstor"


def migrate(db: Database, connection: Connection) -> None:
    """Bring the schema to the newest revision and create missing record tables."""
    if db.is_postgres:
        # Two processes opening a fresh database at once must not both create the schema.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    current = _migrate.current_revision(connection)
    if current is None:
        # A store created before the store had its own version table.
        current = _migrate.adopt_legacy_version(connection)
    if current != _migrate.head_revision():
        _migrate.upgrade(connection)
    if connection.execute(select(META.c.value).where(META.c.key == "store_id")).first() is None:
        connection.execute(insert(META), [{"key": "store_id", "value": os.urandom(16).hex()}])
    for cls in record_types():
        if cls.__name__ not in BUILTIN_TYPES:
            ensure_table(connection, RecordTable(cls))


def ensure_table(connection: Connection, rt: RecordTable) -> None:
    """Create the table of a record type the migrations do not manage, if missing, and
    the indexes a table created by an older version lacks (the migrations only know the
    built-in tables)."""
    METADATA.create_all(connection, tables=[rt.table], checkfirst=True)
    for index in rt.table.indexes:
        index.create(connection, checkfirst=True)


def read_meta(connection: Connection) -> dict[str, str]:
    """Every row of ``lp_meta``."""
    return {str(k): str(v) for k, v in connection.execute(select(META.c.key, META.c.value))}


def bind_keyring(keyring: Any, keys: SqlKeyStore) -> Keyring:
    """A keyring on ``keyring``'s master key whose data keys live in the store's table.

    A keyring already bound to this store is used as is. One on an in-memory key store is
    rebuilt on the same master key (its in-memory keys, if any, are not the store's and
    are refused rather than silently left behind).
    """
    if not isinstance(keyring, Keyring):
        raise ConfigurationError("Store needs keyring=Keyring(...)")
    if keyring.store is keys:
        return keyring
    if isinstance(keyring.store, InMemoryKeyStore) and _holds_data_keys(keyring.store):
        raise ConfigurationError(
            "this keyring already holds data keys in memory; a store keeps its keys in its "
            "own table: open the store with a fresh keyring on the same master key"
        )
    return Keyring(keyring.export_master_key(), store=keys)


def _holds_data_keys(store: InMemoryKeyStore) -> bool:
    # The keyring's own entries (check value, blind-index key) use a reserved prefix.
    return any(not e.subject.startswith("learnprivacy:") for e in store.list_entries())


def audit_keys(keyring: Keyring, store_id: str) -> tuple[bytes, bytes]:
    """The (pseudonym key, seal key) of the audit log of store ``store_id``.

    Derived from the keyring's blind-index key, which is never shredded and survives
    master key rotation, so references stay stable for the life of the store (and of
    its backups, which is what erasure replay relies on).
    """
    index = keyring.blind_index(size=32)
    encoded = index.compute(store_id, field="learnprivacy.store/audit-key", normalise=str)
    body = encoded.removeprefix("b1_")
    root = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    pseudonym_key = hmac.new(root, b"audit/pseudonym", hashlib.sha256).digest()
    seal_key = hmac.new(root, b"audit/seal", hashlib.sha256).digest()
    return pseudonym_key, seal_key

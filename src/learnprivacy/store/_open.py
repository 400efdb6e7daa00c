"""Opening a store: migrations, record tables, the keyring binding and the audit key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

from sqlalchemy import Connection, MetaData, Table, insert, inspect, select, text

from learnprivacy.crypto import InMemoryKeyStore, Keyring
from learnprivacy.crypto._keystore import KeyEntry, KeyState
from learnprivacy.errors import ConfigurationError
from learnprivacy.records._base import record_types
from learnprivacy.store import _migrate
from learnprivacy.store._engine import Database
from learnprivacy.store._keystore import SqlKeyStore
from learnprivacy.store._schema import ANONYMISED, BUILTIN_TYPES, METADATA, RESTRICTED, RecordTable
from learnprivacy.store._statistics import unsample_ids
from learnprivacy.store._tables import META

__all__ = [
    "audit_keys",
    "bind_keyring",
    "check_key_database",
    "check_record_types",
    "ensure_table",
    "migrate",
    "move_legacy_keys",
    "read_meta",
]

# Any constant works: it only has to be the same in every process opening the store.
_MIGRATION_LOCK = 0x6C70_7374_6F72  # "lpstor"


def check_record_types(known: list[RecordTable], connection: Connection) -> None:
    """``ConfigurationError`` when the database holds a record table whose type this
    process has not registered (``known`` are its tables).

    An erasure or a sweep sees only the types it knows: run by a process that never
    imported the module registering an application type, it would leave that type's
    rows, with the learner id in clear, and report the learner erased. Record tables are
    told from the store's own by their restriction and anonymisation columns.
    """
    inspector = inspect(connection)
    names = {rt.table.name for rt in known}
    unknown = []
    for name in sorted(inspector.get_table_names()):
        if not name.startswith("lp_") or name in names:
            continue
        columns = {c["name"] for c in inspector.get_columns(name)}
        if {ANONYMISED, RESTRICTED} <= columns:
            unknown.append(name)
    if unknown:
        raise ConfigurationError(
            f"the store holds record table(s) {', '.join(unknown)} whose record type this "
            "process has not registered: import the module that registers them (with "
            "register_record_type) before erasing or sweeping; nothing was done"
        )


def migrate(db: Database, connection: Connection) -> bool:
    """Bring the schema to the newest revision and create missing record tables.

    True when PostgreSQL statistics on record ids were dropped
    (:func:`learnprivacy.store._statistics.unsample_ids`): ``pg_statistic`` then wants
    rewriting after the commit.
    """
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
    tables = [RecordTable(cls) for cls in record_types()]
    for rt in tables:
        if rt.name not in BUILTIN_TYPES:
            METADATA.create_all(connection, tables=[rt.table], checkfirst=True)
            for index in rt.table.indexes:
                index.create(connection, checkfirst=True)
    return unsample_ids(connection, tables)


def ensure_table(connection: Connection, rt: RecordTable) -> bool:
    """Create the table of a record type the migrations do not manage, if missing, and
    the indexes a table created by an older version lacks (the migrations only know the
    built-in tables). True as :func:`migrate` says it."""
    METADATA.create_all(connection, tables=[rt.table], checkfirst=True)
    for index in rt.table.indexes:
        index.create(connection, checkfirst=True)
    return unsample_ids(connection, [rt])


def check_key_database(connection: Connection, meta: dict[str, str], keys: Any) -> None:
    """Bind the records database to its key database on first open; refuse another one.

    Opened on the wrong key database (a fresh one, another store's), a store would make
    new keys and read nothing of its records: refuse rather than start afresh.
    """
    found = keys.key_store_id
    bound = meta.get("key_store_id")
    if bound is None:
        connection.execute(insert(META), [{"key": "key_store_id", "value": found}])
        meta["key_store_id"] = found
    elif bound != found:
        raise ConfigurationError(
            "this records database belongs to another key database: open it with the "
            "keys= it was created with (or restore that key database)"
        )


def read_meta(connection: Connection) -> dict[str, str]:
    """Every row of ``lp_meta``."""
    return {str(k): str(v) for k, v in connection.execute(select(META.c.key, META.c.value))}


def bind_keyring(keyring: Any, keys: SqlKeyStore) -> Keyring:
    """A keyring on ``keyring``'s master key whose data keys live in the key database.

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
            "key database: open the store with a fresh keyring on the same master key"
        )
    # The previous master keys come along: a store half-way through a rotation opens
    # and the rotation can be finished (learnprivacy keys rotate --resume).
    return keyring.bound_to(keys)


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


_LEGACY_KEYS = "lp_keys"
_LEGACY_TOMBSTONES = "lp_key_tombstones"


def move_legacy_keys(db: Database, keyring: Keyring) -> int:
    """Move the wrapped keys a store created before 0.1 kept in its own database
    (``lp_keys``, ``lp_key_tombstones``) to the keyring's key database, then drop them.

    Each live key is unwrapped and wrapped again under its key reference (the key
    database never sees a learner id); shredded keys and tombstones move as references.
    The key database commits first, and inserting is idempotent, so a move interrupted
    at any point is finished by the next open. Returns how many keys moved.
    """
    with db.read() as connection:
        names = set(inspect(connection).get_table_names())
        if _LEGACY_KEYS not in names:
            return 0
        legacy = MetaData()
        keys_table = Table(_LEGACY_KEYS, legacy, autoload_with=connection)
        rows = connection.execute(select(keys_table)).mappings().all()
        stones: list[Any] = []
        if _LEGACY_TOMBSTONES in names:
            stones_table = Table(_LEGACY_TOMBSTONES, legacy, autoload_with=connection)
            stones = list(connection.execute(select(stones_table)).mappings().all())
    entries = [
        KeyEntry(
            subject=str(row["subject"]),
            scope=str(row["scope"]),
            key_id=str(row["key_id"]),
            state=KeyState(row["state"]),
            master_key_id=str(row["master_key_id"]),
            wrapped=bytes(row["wrapped"]),
        )
        for row in rows
    ]
    store = keyring.store
    # The keyring's own keys first: the key references derive from one of them.
    system = [e for e in entries if e.subject.startswith("learnprivacy:")]
    for entry in system:
        if store.get(entry.subject, entry.key_id) is None:
            _insert_raw(store, entry)
    moved = 0
    for entry in entries:
        if entry.subject.startswith("learnprivacy:"):
            continue
        ref = keyring.key_ref(entry.subject)
        if store.get(ref, entry.key_id) is not None:
            continue
        _insert_raw(store, keyring.rewrap_entry(entry, subject=ref))
        moved += 1
    for stone in stones:
        subject, scope = str(stone["subject"]), str(stone["scope"])
        if subject.startswith("learnprivacy:"):
            continue
        store.mark_shredded(keyring.key_ref(subject), None if scope == "*" else scope)
    with db.write() as connection:
        connection.execute(text(f"DROP TABLE {_LEGACY_TOMBSTONES}"))
        connection.execute(text(f"DROP TABLE {_LEGACY_KEYS}"))
    db.checkpoint()
    if db.is_sqlite and rows:
        # Rewrite the file: no page of the old key table may survive in it.
        with db.engine.connect() as connection:
            raw = connection.connection.driver_connection
            assert raw is not None  # a live pooled connection
            raw.execute("VACUUM")
        db.checkpoint()
    return moved


def _insert_raw(store: Any, entry: KeyEntry) -> None:
    """Insert ``entry`` as it is (any state) into a key database."""
    from learnprivacy.store._keydb import KeyDatabase

    database = store.key_database if hasattr(store, "key_database") else store
    assert isinstance(database, KeyDatabase)
    database.insert_entries([entry])

"""The key database: wrapped data keys, tombstones and the audit anchor, apart from the data.

Per-learner data keys never live in the database that holds the records. A copy of the
records database (a file copy, ``pg_dump``, ``store.backup()``, dead tuples, the WAL)
holds tokens only; once the key of an erased learner is shredded here, no such copy can
be read again, whatever else its holder has. Restoring such a copy keeps every other
learner readable, as their keys are still here.

Subjects are never stored in clear: each row names its subject by a keyed pseudonym (a
*key reference*, ``k1_...``) that the :class:`~learnprivacy.crypto.Keyring` computes from
a key it keeps wrapped in this same database. A copy of the key database therefore
names no learner either.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.exc import IntegrityError as SQLIntegrityError
from sqlalchemy.sql.elements import ColumnElement

from learnprivacy._vocabulary import BATCH_SIZE
from learnprivacy.crypto._keybatch import EpochRewrap, KeyBatch, batch_for, current_batch
from learnprivacy.crypto._keystore import ALL_SCOPES as _ALL
from learnprivacy.crypto._keystore import KeyEntry, KeyState, scope_blocked
from learnprivacy.crypto._keystore import entry_from_row as _entry
from learnprivacy.errors import ConfigurationError, KeyShreddedError
from learnprivacy.store._bulk import (
    bulk_insert,
    bulk_insert_values,
    driver_rows,
    ids_in,
    insert_plan,
)
from learnprivacy.store._engine import Database, thread_bound

__all__ = [
    "KEY_METADATA",
    "EpochRewrap",
    "KeyDatabase",
    "KeyEpochError",
    "KeyRace",
    "default_keys_url",
    "epoch_guarded",
]

#: The key database's own metadata: never mixed with the records database's tables.
KEY_METADATA = MetaData()

_KEYS = Table(
    "lpk_keys",
    KEY_METADATA,
    # A key reference (keyed pseudonym of the subject), never a learner id.
    Column("subject_ref", String(64), primary_key=True),
    Column("key_id", String(16), primary_key=True),
    Column("scope", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("master_key_id", String(16), nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
    Index("ix_lpk_keys_subject_scope", "subject_ref", "scope"),
    # uq_lpk_keys_active: see _add_active_index.
)
_ACTIVE_INDEX_LOCK = threading.Lock()


def _add_active_index(dialect: str) -> None:
    """At most one active key per (subject, scope): concurrent writers converge on it.

    Added to ``lpk_keys`` when a key database first opens, not at import, and with the
    partial-index condition of the dialects opened so far only: each dialect option makes
    SQLAlchemy import that dialect (PostgreSQL's costs about 40 ms), which a process that
    only opens SQLite key databases never needs.
    """
    partial = dialect in ("sqlite", "postgresql")
    with _ACTIVE_INDEX_LOCK:
        index = next((i for i in _KEYS.indexes if i.name == "uq_lpk_keys_active"), None)
        if index is None:
            index = Index("uq_lpk_keys_active", _KEYS.c.subject_ref, _KEYS.c.scope, unique=True)
        if partial and index.dialect_options[dialect]["where"] is None:
            index.dialect_options[dialect]["where"] = text("state = 'active'")


_TOMBSTONES = Table(
    "lpk_tombstones",
    KEY_METADATA,
    Column("subject_ref", String(64), primary_key=True),
    # ``*`` covers every scope of the subject.
    Column("scope", String(64), primary_key=True),
)
_ANCHORS = Table(
    "lpk_anchors",
    KEY_METADATA,
    # Which log: ``audit:<store id>``.
    Column("name", String(96), primary_key=True),
    Column("sequence", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)
_META = Table(
    "lpk_meta",
    KEY_METADATA,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

#: 2: the shred mark (row ``shred_mark`` of ``lpk_meta``). A version 1 database is
#: upgraded when it opens; learnprivacy before 2 refuses a version 2 database, as its
#: shreds would leave the mark as it was (see :meth:`KeyDatabase.shred_mark`).
_SCHEMA_VERSION = "2"
#: The lpk_meta row holding the shred mark.
_MARK_ROW = "shred_mark"
_CHUNK = 5_000
# One bound array per scope (see _pairs_condition): chunks as large as any other.
_SHRED_CHUNK = _CHUNK
# Any constant works: it only has to be the same in every process opening the database.
_CREATE_LOCK = 0x6C70_6B65_7973  # "lpkeys"
# The lpk_meta row naming the epoch keys data keys may be wrapped under:
# {"current": id, "next": id}, "" for none. Every write of a wrapped key reads it locked
# (FOR SHARE) in its own transaction; compaction changes it under FOR UPDATE.
_EPOCH_ROW = "wrapping_epochs"

_COLUMNS = (
    _KEYS.c.subject_ref,
    _KEYS.c.scope,
    _KEYS.c.key_id,
    _KEYS.c.state,
    _KEYS.c.master_key_id,
    _KEYS.c.wrapped,
)


def _prefetch(
    connection: Connection,
    refs: Sequence[str],
    entries: dict[str, list[KeyEntry]],
    tombstones: set[tuple[str, str]],
) -> None:
    """Put in ``entries`` every entry of ``refs`` (sorted key references; an empty list
    for one without) and in ``tombstones`` their tombstones, a few queries per chunk."""
    dialect = connection.dialect.name
    for start in range(0, len(refs), _CHUNK):
        chunk = refs[start : start + _CHUNK]
        for ref in chunk:
            entries[ref] = []
        query = select(*_COLUMNS).where(ids_in(_KEYS.c.subject_ref, chunk, dialect))
        for row in connection.execute(query).all():
            entries[row[0]].append(_entry(row))
        stones = select(_TOMBSTONES.c.subject_ref, _TOMBSTONES.c.scope).where(
            ids_in(_TOMBSTONES.c.subject_ref, chunk, dialect)
        )
        tombstones.update((s, c) for s, c in connection.execute(stones).all())


class _ShreddedSince(Exception):
    """A scope of a buffered key was shredded after the batch's prefetch."""


def _shredded_since(connection: Connection, batch: KeyBatch, pending: list[KeyEntry]) -> bool:
    """Whether a shred committed since ``batch``'s prefetch blocks a scope of ``pending``
    (not revived on purpose), read in the flush's own write transaction.

    The mark is read first (on PostgreSQL locked ``share``, so that a shred now under way
    waits for this transaction and then destroys what it inserts): unchanged since the
    prefetch, no tombstone was written since, and nothing more is read.
    """
    if _read_mark(connection, lock="share") == batch.mark:
        return False
    asked = [e for e in pending if (e.subject, e.scope) not in batch.revived]
    entries: dict[str, list[KeyEntry]] = {}
    tombstones: set[tuple[str, str]] = set()
    _prefetch(connection, sorted({e.subject for e in asked}), entries, tombstones)
    return any(scope_blocked(entries[e.subject], tombstones, e.subject, e.scope) for e in asked)


class KeyRace(Exception):
    """Another writer created a key for a subject of this batch first; retry the batch."""


class KeyEpochError(ConfigurationError):
    """A data key is wrapped under an epoch key the key database no longer names as
    current, and it cannot be re-wrapped (the current epoch key is not in the vault at
    hand). Nothing was written."""


def _read_epochs(connection: Connection, *, lock: str | None = None) -> tuple[str, str]:
    """``(current, next)`` epoch ids of the key database ("" for none), the row locked
    ``share`` (writers of wrapped keys) or ``update`` (compaction) on PostgreSQL; SQLite
    write transactions hold the database lock already."""
    query = select(_META.c.value).where(_META.c.key == _EPOCH_ROW)
    if lock is not None:
        query = query.with_for_update(read=lock == "share")
    found = connection.execute(query).scalar()
    if found is None:
        return "", ""
    state = json.loads(found)
    return str(state.get("current") or ""), str(state.get("next") or "")


def _new_mark() -> str:
    return os.urandom(12).hex()


def _bump_mark(connection: Connection) -> None:
    """Give the shred mark a fresh value in ``connection``'s transaction (see
    :meth:`KeyDatabase.shred_mark`)."""
    moved = connection.execute(
        update(_META).where(_META.c.key == _MARK_ROW).values(value=_new_mark())
    ).rowcount
    if not moved:
        connection.execute(insert(_META), [{"key": _MARK_ROW, "value": _new_mark()}])


def _lock_mark(connection: Connection, *, lock: str) -> None:
    """Take the shred mark's row first thing in a PostgreSQL transaction (see
    :func:`_read_mark`); nothing on SQLite, whose write transactions hold the database."""
    if connection.dialect.name == "postgresql":
        _read_mark(connection, lock=lock)


def _read_mark(connection: Connection, *, lock: str | None = None) -> str:
    """The shred mark in ``connection``'s transaction. On PostgreSQL ``lock`` takes its row
    ``share`` (writers of new keys) or ``update`` (writers taking keys away or writing
    tombstones), first thing in the transaction: a shred and an insert of a key of the
    same learner then follow one another, and whichever comes second sees the first
    (SQLite write transactions hold the database lock already)."""
    query = select(_META.c.value).where(_META.c.key == _MARK_ROW)
    if lock is not None and connection.dialect.name == "postgresql":
        query = query.with_for_update(read=lock == "share")
    found = connection.execute(query).scalar()
    # A database without the row (its row deleted by hand) gives a mark that matches
    # nothing a keyring holds: every fetch looks its learners up.
    return "" if found is None else str(found)


def _write_epochs(connection: Connection, current: str, nxt: str) -> None:
    value = json.dumps({"current": current, "next": nxt}, sort_keys=True)
    moved = connection.execute(
        update(_META).where(_META.c.key == _EPOCH_ROW).values(value=value)
    ).rowcount
    if not moved:
        connection.execute(insert(_META), [{"key": _EPOCH_ROW, "value": value}])


def _guard_epoch(
    connection: Connection, entries: Sequence[KeyEntry], rewrap: EpochRewrap | None
) -> Sequence[KeyEntry]:
    """``entries`` as they may be written in this transaction: wrapped under the current
    (or, during a compaction, the next) epoch key recorded in the key database.

    Entries wrapped under another key (an epoch key a compaction destroyed since this
    process loaded it) are re-wrapped by ``rewrap`` first; without it, or if it cannot,
    :class:`KeyEpochError` is raised and the transaction writes nothing. The epoch row is
    read locked, so no compaction switches epochs until this transaction ends.
    """
    current, nxt = _read_epochs(connection, lock="share")
    return epoch_guarded(current, nxt, entries, rewrap)


def epoch_guarded(
    current: str, nxt: str, entries: Sequence[KeyEntry], rewrap: EpochRewrap | None
) -> Sequence[KeyEntry]:
    """``entries`` as they may be written while the key store names epochs ``current``
    and ``nxt`` (read locked in the writing transaction): re-wrapped by ``rewrap`` if
    under another key, :class:`KeyEpochError` if that cannot be done. Shared by every
    key store that checks epochs (this one, ``learnprivacy.django``'s)."""
    if not current:
        # No epoch yet: data keys are wrapped under the master key, which no compaction
        # destroys (the first compaction re-wraps whatever was written meanwhile).
        return entries
    allowed = {current, nxt} - {""}
    if all(e.state is KeyState.SHREDDED or e.master_key_id in allowed for e in entries):
        return entries
    if rewrap is None:
        raise KeyEpochError(
            "a data key is wrapped under an epoch key that is no longer current: "
            "reopen the store with its vault"
        )
    fresh = rewrap(current, entries)
    if not all(e.state is KeyState.SHREDDED or e.master_key_id in allowed for e in fresh):
        raise KeyEpochError("a data key could not be re-wrapped under the current epoch key")
    return fresh


def default_keys_url(records_url: str) -> str:
    """The key database of a SQLite records database: ``lms.db`` -> ``lms.keys.db``.

    An in-memory records database gets an in-memory key database of its own. Other
    databases have no default: :class:`~learnprivacy.errors.ConfigurationError` says to
    pass ``keys=``.
    """
    try:
        parsed = make_url(records_url)
    except ArgumentError:
        raise ConfigurationError(
            "not a database URL (sqlite:///file.db or postgresql+psycopg://...)"
        ) from None
    if parsed.get_backend_name() != "sqlite":
        raise ConfigurationError(
            "a PostgreSQL store needs keys=: the URL of a database of its own for the "
            "wrapped data keys (e.g. postgresql+psycopg://host/lms_keys), never the "
            "records database"
        )
    database = parsed.database
    if database in (None, "", ":memory:"):
        return "sqlite://"
    name = database.removesuffix(".db").removesuffix(".sqlite").removesuffix(".sqlite3")
    return parsed.set(database=name + ".keys.db").render_as_string(hide_password=False)


#: The columns of lpk_keys in table order, as :func:`_insert_keys` writes them.
_KEY_COLUMNS = ["subject_ref", "key_id", "scope", "state", "master_key_id", "wrapped"]


def _insert_keys(connection: Connection, entries: Sequence[KeyEntry]) -> None:
    """Insert ``entries``: tuples in column order where the driver takes the values as
    they are (SQLite, psycopg's COPY), column dicts otherwise.

    In key order (reference, key id): references are keyed hashes, so a batch in the
    caller's order lands on random pages of the key indexes; sorted, consecutive rows
    share pages (a third less CPU for 100,000 keys on SQLite).
    """
    plan = insert_plan(connection, _KEYS)
    if plan is not None and plan[0] == _KEY_COLUMNS and not any(plan[1]):
        rows = [
            (e.subject, e.key_id, e.scope, e.state.value, e.master_key_id, e.wrapped)
            for e in entries
        ]
        rows.sort()
        bulk_insert_values(connection, _KEYS, rows)
    else:
        ordered = sorted(entries, key=lambda e: (e.subject, e.key_id))
        bulk_insert(connection, _KEYS, [_values(e) for e in ordered])


def _values(entry: KeyEntry) -> dict[str, object]:
    return {
        "subject_ref": entry.subject,
        "scope": entry.scope,
        "key_id": entry.key_id,
        "state": entry.state.value,
        "master_key_id": entry.master_key_id,
        "wrapped": entry.wrapped,
    }


class KeyDatabase:
    """Wrapped data keys, shredding tombstones and audit anchors, in a database of their own.

    >>> from learnprivacy.crypto import Keyring
    >>> from learnprivacy.keys import KeyDatabase
    >>> keys = KeyDatabase("sqlite://")                 # or a SQLAlchemy Engine
    >>> keyring = keys.keyring(Keyring.generate())      # data keys now live in ``keys``
    >>> keyring.shred("L1")
    0

    It implements the :class:`~learnprivacy.crypto.KeyStore` protocol, so any
    :class:`~learnprivacy.crypto.Keyring` can keep its keys here:
    ``Keyring(master_key, store=KeyDatabase(url))``, or :meth:`keyring` to rebind an
    existing keyring (its master key and previous master keys) to this database. The
    :class:`~learnprivacy.store.Store`, ``learnprivacy.sqlalchemy`` and
    ``learnprivacy.django`` all keep their keys in one of these.

    **Where.** ``url`` is a SQLAlchemy URL (``sqlite:///lms.keys.db``,
    ``postgresql+psycopg://host/lms_keys``) or an ``Engine`` the caller owns (then
    :meth:`close` leaves it open). Use a database of its own, never the one holding the
    records: that separation is what makes erasure survive backups of the records. Its
    tables (``lpk_*``) are created on first use.

    **What it holds.** Per key: a *key reference* naming the subject (``k1_`` and a
    keyed HMAC of the learner id, computed by the keyring; never the id), the scope, the
    key id, its state and the data key wrapped under the master key. Shredding empties
    the wrapped key and keeps the row as a tombstone; on SQLite the freed bytes are
    zeroed (``secure_delete``) and the write-ahead log truncated at once. One row per
    audit log anchors the head of its hash chain (:meth:`read_anchor`).

    **Transactions.** Each method is one transaction. :meth:`batch` prefetches the keys
    of many subjects for a burst of reads or writes on this thread and buffers new keys
    until :meth:`flush`, which inserts them in one statement.

    Thread-safe; usable from several processes at once (the database arbitrates).
    """

    #: Tells :class:`~learnprivacy.crypto.Keyring` to name subjects by key references.
    pseudonymous_subjects = True
    #: Tells :class:`~learnprivacy.crypto.Keyring` that writes check the current epoch
    #: (and to pass ``rewrap=``).
    checks_epochs = True
    #: Tells :class:`~learnprivacy.crypto.Keyring` that :meth:`rewrap_live` (with
    #: ``skip=`` and ``stop_at_epoch=``) and :meth:`epochs` serve a rotation in bulk.
    bulk_rewrap = True

    __slots__ = ("_db", "_local")

    def __init__(self, url: str | Engine) -> None:
        """Open (creating its tables if needed) the key database at ``url``."""
        self._db = Database(url)
        self._local = threading.local()
        _add_active_index(self._db.engine.dialect.name)
        try:
            with self._db.write() as connection:
                if self._db.is_postgres:
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_LOCK}
                    )
                KEY_METADATA.create_all(connection, checkfirst=True)
                found = connection.execute(
                    select(_META.c.value).where(_META.c.key == "schema_version")
                ).scalar()
                if found is None:
                    connection.execute(
                        insert(_META),
                        [
                            {"key": "schema_version", "value": _SCHEMA_VERSION},
                            {"key": "key_store_id", "value": os.urandom(16).hex()},
                            {"key": _MARK_ROW, "value": _new_mark()},
                        ],
                    )
                elif found == "1":
                    # Version 1 -> 2: the shred mark, in this same transaction.
                    _bump_mark(connection)
                    connection.execute(
                        update(_META)
                        .where(_META.c.key == "schema_version")
                        .values(value=_SCHEMA_VERSION)
                    )
                elif found != _SCHEMA_VERSION:
                    raise ConfigurationError(
                        "the key database was written by a newer learnprivacy: upgrade it"
                    )
                if (
                    connection.execute(select(_META.c.key).where(_META.c.key == _EPOCH_ROW)).first()
                    is None
                ):
                    # Present from the start, so that every writer has a row to lock.
                    _write_epochs(connection, "", "")
        except BaseException:
            self._db.dispose()
            raise

    def __repr__(self) -> str:
        return f"KeyDatabase({self._db.engine.dialect.name})"

    def __enter__(self) -> KeyDatabase:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections (of an engine this object made; a caller's stays open)."""
        self._db.dispose()

    @property
    def key_store_id(self) -> str:
        """Random id of this key database, fixed at creation; a store records it to
        refuse being opened on another key database."""
        with self._db.read() as connection:
            found = connection.execute(
                select(_META.c.value).where(_META.c.key == "key_store_id")
            ).scalar()
        return str(found)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine of the key database."""
        return self._db.engine

    @property
    def database(self) -> Database:
        """Engine and transactions, for tools and tests that inspect the tables."""
        return self._db

    def keyring(self, keyring: Any) -> Any:
        """``keyring`` rebound to this database: same master key (and previous master keys,
        so a half-finished rotation can complete), data keys kept here.

        A keyring already bound here is returned as is.
        """
        from learnprivacy.crypto import Keyring

        if not isinstance(keyring, Keyring):
            raise ConfigurationError("keyring must be a learnprivacy.crypto.Keyring")
        if keyring.store is self:
            return keyring
        return keyring.bound_to(self)

    # -- bursts of work on one thread ----------------------------------------------------

    @contextmanager
    def batch(self, refs: Iterable[str]) -> Iterator[None]:
        """Prefetch the entries of ``refs`` (key references) in a few queries, and buffer
        keys added for them until :meth:`flush`, for the duration of the block.

        Keys buffered and not flushed when the block ends are dropped: a caller that
        encrypted with them must flush before it commits anything that uses them.
        """
        batch = KeyBatch()
        with self._db.read() as connection:
            # Read first: it dates every entry read below (see batch_mark).
            batch.mark = _read_mark(connection)
            _prefetch(connection, sorted(set(refs)), batch.entries, batch.tombstones)
        with thread_bound(self._local, "batch", batch):
            yield

    def flush(self, *, rewrap: EpochRewrap | None = None) -> None:
        """Insert (and commit) the keys buffered by the current batch.

        Raises :class:`KeyRace` if another writer created an active key for one of the
        same (subject, scope) pairs first, or shredded one of them (an erasure committed
        since the batch's prefetch, which saw no tombstone yet): the caller retries with
        fresh entries, and a shredded scope then refuses its new key as ever. Keys
        wrapped under an epoch key that is no longer current are re-wrapped first by
        ``rewrap`` (or the one :meth:`add` was given); :class:`KeyEpochError` if that
        cannot be done, and then nothing is inserted and the keys stay buffered.
        """
        batch = current_batch(self._local)
        if batch is None or not batch.pending:
            return
        pending = batch.pending
        try:
            with self._db.write() as connection:
                if _shredded_since(connection, batch, pending):
                    raise _ShreddedSince
                written = _guard_epoch(connection, pending, rewrap or batch.rewrap)
                _insert_keys(connection, written)
        except (SQLIntegrityError, _ShreddedSince):
            batch.pending = []
            batch.forget(entry.subject for entry in pending)
            raise KeyRace("a key was created or shredded concurrently") from None
        batch.flushed(pending, written)

    # -- the shred mark -------------------------------------------------------------------

    def shred_mark(self) -> str:
        """The shred mark as committed now: a random value this database replaces in the
        same transaction as every change that takes a live key away (a shred destroying
        at least one key, an update to the shredded state). Two equal reads mean that no
        such change committed between them, so a keyring holding keys read after the
        first may keep using them; a restored copy of this database brings back an old
        value, never one read since. One small query."""
        with self._db.read() as connection:
            return _read_mark(connection)

    def batch_mark(self) -> str | None:
        """Inside this thread's :meth:`batch`: the shred mark read before its prefetch
        (it dates the entries the batch gives); ``None`` outside a batch."""
        batch = current_batch(self._local)
        return None if batch is None else batch.mark

    # -- the KeyStore protocol (subjects are key references) ----------------------------

    def get(self, subject: str, key_id: str) -> KeyEntry | None:
        """The entry of ``key_id`` for ``subject``, shredded or not; ``None`` if unknown."""
        batch = batch_for(self._local, subject)
        if batch is not None:
            return batch.get(subject, key_id)
        query = select(*_COLUMNS).where(_KEYS.c.subject_ref == subject, _KEYS.c.key_id == key_id)
        with self._db.read() as connection:
            row = connection.execute(query).first()
        return None if row is None else _entry(row)

    def live_entries(self, refs: Sequence[str]) -> list[tuple[str, str, str, str, bytes]]:
        """``(ref, scope, key_id, master_key_id, wrapped)`` of every live (active or
        retired) key of ``refs``, in one query per few thousand references: what a read
        of many records unwraps (see ``Keyring._openers_of_subjects``)."""
        found: list[tuple[str, str, str, str, bytes]] = []
        wanted = sorted(set(refs))
        live = _KEYS.c.state != KeyState.SHREDDED.value
        columns = (_KEYS.c.subject_ref, _KEYS.c.scope, _KEYS.c.key_id, _KEYS.c.master_key_id)
        with self._db.read() as connection:
            dialect = connection.dialect.name
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                query = select(*columns, _KEYS.c.wrapped).where(
                    ids_in(_KEYS.c.subject_ref, chunk, dialect), live
                )
                # Text and bytes as the driver gives them: no SQLAlchemy row per key, and
                # the driver's own tuples where it gives the wrapped keys as bytes.
                rows = driver_rows(connection, query)
                if any(type(row[4]) is not bytes for row in rows):
                    rows = [
                        (ref, scope, key_id, wrapping, bytes(wrapped))
                        for ref, scope, key_id, wrapping, wrapped in rows
                    ]
                found.extend(rows)
        return found

    def list_entries(
        self, subject: str | None = None, scope: str | None = None
    ) -> Iterator[KeyEntry]:
        """Entries of ``subject`` (optionally of one ``scope``), or every entry if ``None``."""
        batch = batch_for(self._local, subject)
        if batch is not None and subject is not None:
            return iter(batch.select(subject, scope))
        query = select(*_COLUMNS).order_by(_KEYS.c.subject_ref, _KEYS.c.scope, _KEYS.c.key_id)
        if subject is not None:
            query = query.where(_KEYS.c.subject_ref == subject)
        if scope is not None:
            query = query.where(_KEYS.c.scope == scope)
        with self._db.read() as connection:
            rows = connection.execute(query).all()
        return iter([_entry(row) for row in rows])

    def iter_entries(self, *, page: int = 5_000) -> Iterator[KeyEntry]:
        """Every entry, streamed a page at a time in key order (for rotation)."""
        after: tuple[str, str] = ("", "")
        while True:
            query = (
                select(*_COLUMNS)
                .where(
                    or_(
                        _KEYS.c.subject_ref > after[0],
                        and_(_KEYS.c.subject_ref == after[0], _KEYS.c.key_id > after[1]),
                    )
                )
                .order_by(_KEYS.c.subject_ref, _KEYS.c.key_id)
                .limit(page)
            )
            with self._db.read() as connection:
                rows = connection.execute(query).all()
            if not rows:
                return
            for row in rows:
                yield _entry(row)
            after = (rows[-1][0], rows[-1][2])

    def add(
        self, entry: KeyEntry, *, revive: bool = False, rewrap: EpochRewrap | None = None
    ) -> KeyEntry:
        """Insert an ACTIVE key unless one exists; refuse a shredded scope unless revived.

        The insert checks, in its transaction, that ``entry`` is wrapped under the epoch
        key the database names as current; if not, ``rewrap`` re-wraps it first (see
        :meth:`flush`) and the entry returned is the one stored.
        """
        batch = batch_for(self._local, entry.subject)
        if batch is not None:
            return batch.add(entry, revive=revive, rewrap=rewrap)
        active = select(*_COLUMNS).where(
            _KEYS.c.subject_ref == entry.subject,
            _KEYS.c.scope == entry.scope,
            _KEYS.c.state == KeyState.ACTIVE.value,
        )
        with self._db.write() as connection:
            _lock_mark(connection, lock="share")
            existing_row = connection.execute(active).first()
            if existing_row is not None:
                return _entry(existing_row)
            if not revive and _blocked_sql(connection, entry.subject, entry.scope):
                raise KeyShreddedError(
                    f"the keys of this subject's scope {entry.scope!r} were shredded"
                )
            (entry,) = _guard_epoch(connection, [entry], rewrap)
            try:
                with connection.begin_nested():
                    connection.execute(insert(_KEYS), [_values(entry)])
            except SQLIntegrityError:
                # A concurrent writer created the active key first: use theirs.
                row = connection.execute(active).first()
                if row is None:
                    raise
                return _entry(row)
            return entry

    def insert_entries(
        self, entries: Sequence[KeyEntry], *, rewrap: EpochRewrap | None = None
    ) -> int:
        """Insert ``entries`` as they are (any state), skipping those already present.

        For moving keys in from another store; normal writes go through :meth:`add`.
        Entries must be wrapped under the current epoch key (``rewrap``: see :meth:`add`).
        """
        count = 0
        with self._db.write() as connection:
            for entry in _guard_epoch(connection, entries, rewrap):
                exists = connection.execute(
                    select(_KEYS.c.key_id).where(
                        _KEYS.c.subject_ref == entry.subject, _KEYS.c.key_id == entry.key_id
                    )
                ).first()
                if exists is None:
                    connection.execute(insert(_KEYS), [_values(entry)])
                    count += 1
        return count

    def live(self, refs: Iterable[str], scope: str) -> list[tuple[str, str]]:
        """``(ref, key_id)`` of the keys of ``refs`` in ``scope`` not yet shredded."""
        wanted = sorted(set(refs))
        found: list[tuple[str, str]] = []
        with self._db.read() as connection:
            dialect = connection.dialect.name
            if dialect == "sqlite":
                # One statement straight to the driver, whatever the count: nothing to
                # compile, rows as plain tuples.
                rows = connection.exec_driver_sql(
                    _LIVE_SQL, (json.dumps(wanted), scope, KeyState.SHREDDED.value)
                ).fetchall()
                return [(str(r), str(k)) for r, k in rows]
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                query = select(_KEYS.c.subject_ref, _KEYS.c.key_id).where(
                    ids_in(_KEYS.c.subject_ref, chunk, dialect),
                    _KEYS.c.scope == scope,
                    _KEYS.c.state != KeyState.SHREDDED.value,
                )
                found.extend((str(r), str(k)) for r, k in connection.execute(query).all())
        return found

    def update(self, entry: KeyEntry, *, rewrap: EpochRewrap | None = None) -> bool:
        """Replace a live entry; a missing or SHREDDED entry is left alone (``False``).

        The entry must be wrapped under the current epoch key (``rewrap``: see :meth:`add`).
        """
        with self._db.write() as connection:
            (entry,) = _guard_epoch(connection, [entry], rewrap)
            changed = self._update(connection, entry)
        batch = batch_for(self._local, entry.subject)
        if changed and batch is not None:
            batch.updated(entry)
        return changed

    def update_many(self, entries: Sequence[KeyEntry], *, rewrap: EpochRewrap | None = None) -> int:
        """:meth:`update` for many entries in one transaction; returns how many changed."""
        if not entries:
            return 0
        with self._db.write() as connection:
            return _rewrite(connection, _guard_epoch(connection, entries, rewrap))

    # -- epochs (used by learnprivacy.store._epochs) --------------------------------------

    def epochs(self) -> tuple[str, str]:
        """``(current, next)`` epoch key ids recorded here ("" for none)."""
        with self._db.read() as connection:
            return _read_epochs(connection)

    @contextmanager
    def epoch_transaction(self) -> Iterator[tuple[Connection, str, str]]:
        """A write transaction holding the epoch row exclusively: ``(connection, current,
        next)``. No wrapped key is written by anyone until it ends."""
        with self._db.write() as connection:
            current, nxt = _read_epochs(connection, lock="update")
            yield connection, current, nxt

    @staticmethod
    def set_epochs(connection: Connection, current: str, nxt: str) -> None:
        """Record ``(current, next)`` inside :meth:`epoch_transaction`."""
        _write_epochs(connection, current, nxt)

    @staticmethod
    def meta_in(connection: Connection) -> dict[str, str]:
        """The key database's state entries (``lpk_meta``), inside a transaction."""
        return {str(k): str(v) for k, v in connection.execute(select(_META.c.key, _META.c.value))}

    @staticmethod
    def put_meta(connection: Connection, values: dict[str, str]) -> None:
        """Set state entries inside :meth:`epoch_transaction`."""
        existing = {
            str(k)
            for (k,) in connection.execute(select(_META.c.key).where(_META.c.key.in_(values)))
        }
        for key, value in values.items():
            if key in existing:
                connection.execute(update(_META).where(_META.c.key == key).values(value=value))
            else:
                connection.execute(insert(_META), [{"key": key, "value": value}])

    @staticmethod
    def erased_in(connection: Connection) -> int:
        """How many subjects have a shredded key, inside a transaction."""
        found = connection.execute(
            select(func.count(func.distinct(_KEYS.c.subject_ref))).where(
                _KEYS.c.state == KeyState.SHREDDED.value
            )
        ).scalar()
        return int(found or 0)

    def read_meta(self) -> dict[str, str]:
        """The key database's state entries (``lpk_meta``)."""
        with self._db.read() as connection:
            return self.meta_in(connection)

    def erased_subjects(self) -> int:
        """How many subjects have a shredded key."""
        with self._db.read() as connection:
            return self.erased_in(connection)

    def rewrap_live(
        self,
        target: str,
        rewrap: Callable[[str, str, str, str, bytes], bytes],
        *,
        batch_size: int = BATCH_SIZE,
        progress: Any = None,
        skip: tuple[str, str] | None = None,
        stop_at_epoch: bool = False,
    ) -> int:
        """Re-wrap under ``target`` (an epoch key, or a new master key) every live key not
        under it yet, ``batch_size`` per transaction; how many. ``rewrap(subject, scope,
        key_id, wrapping_id, wrapped)`` returns the key wrapped under ``target``.

        For compaction's and rotation's bulk passes: rows are read and written as plain
        tuples, and each update applies only if the row is still wrapped as it was read
        (a concurrent writer's change wins). SQLite rows are visited in the table's own
        order, so each batch rewrites a run of neighbouring pages rather than pages spread
        over the whole file; PostgreSQL rows in key order. ``skip``: the ``(subject,
        scope)`` whose keys are left alone (rotation re-wraps the check value last).

        Each batch checks, under the epoch row, that ``target`` is still the current or
        next epoch if the database names one: if not, :class:`KeyEpochError`, or with
        ``stop_at_epoch`` the pass stops there, that batch unwritten. Batches commit
        without waiting for the disk on SQLite: the caller's last write (a compaction's
        switch, a rotation's check value) commits durably, and with it every batch before
        it; a batch lost to a power cut leaves keys under the key they were under, which
        the caller still holds until that last write.
        """
        sqlite = self._db.is_sqlite
        if sqlite:
            # The rowid: a run of rows stored side by side.
            select_sql = (
                "SELECT rowid, subject_ref, scope, key_id, master_key_id, wrapped FROM lpk_keys "
                "WHERE rowid > ? AND state <> ? AND master_key_id <> ?"
            )
            order = " ORDER BY rowid LIMIT ?"
        else:
            select_sql = (
                "SELECT subject_ref, subject_ref, scope, key_id, master_key_id, wrapped "
                "FROM lpk_keys WHERE (subject_ref, key_id) > (?, ?) AND state <> ? "
                "AND master_key_id <> ?"
            )
            order = " ORDER BY subject_ref, key_id LIMIT ?"
        kept: tuple[str, ...] = ()
        if skip is not None:
            select_sql += " AND NOT (subject_ref = ? AND scope = ?)"
            kept = skip
        select_sql += order
        update_sql = (
            "UPDATE lpk_keys SET master_key_id = ?, wrapped = ? "
            "WHERE subject_ref = ? AND key_id = ? AND master_key_id = ? AND state <> ?"
        )
        if self._db.engine.dialect.paramstyle != "qmark":
            select_sql = select_sql.replace("?", "%s")
            update_sql = update_sql.replace("?", "%s")
        shredded = KeyState.SHREDDED.value
        count = 0
        after: tuple[Any, ...] = (0,) if sqlite else ("", "")
        while True:
            with self._db.read() as connection:
                rows = connection.exec_driver_sql(
                    select_sql, (*after, shredded, target, *kept, batch_size)
                ).fetchall()
            if not rows:
                return count
            updates = [
                (
                    target,
                    rewrap(ref, scope, key_id, wrapping, bytes(wrapped)),
                    *(ref, key_id, wrapping, shredded),
                )
                for _at, ref, scope, key_id, wrapping, wrapped in rows
            ]
            with self._db.write(relaxed=True) as connection:
                current, nxt = _read_epochs(connection, lock="share")
                if current and target not in (current, nxt):
                    if stop_at_epoch:
                        return count
                    raise KeyEpochError(
                        "another compaction moved the key database to another epoch "
                        "meanwhile: run the compaction again"
                    )
                count += int(connection.exec_driver_sql(update_sql, updates).rowcount)
            if progress is not None:
                progress.advance(len(rows))
            last = rows[-1]
            after = (last[0],) if sqlite else (last[1], last[3])

    def count_not_under(self, target: str) -> int:
        """How many live keys are not wrapped under ``target``."""
        with self._db.read() as connection:
            found = connection.execute(
                select(func.count())
                .select_from(_KEYS)
                .where(_KEYS.c.state != KeyState.SHREDDED.value, _KEYS.c.master_key_id != target)
            ).scalar()
        return int(found or 0)

    @staticmethod
    def rewrap_all_in(
        connection: Connection,
        target: str,
        rewrap: Callable[[Sequence[KeyEntry]], list[KeyEntry]],
        *,
        page: int = 5_000,
    ) -> int:
        """Inside :meth:`epoch_transaction`: re-wrap under ``target`` every live entry
        that is not under it yet (``rewrap`` does the cryptography); how many."""
        count = 0
        after: tuple[str, str] = ("", "")
        while True:
            rows = connection.execute(
                select(*_COLUMNS)
                .where(
                    _KEYS.c.state != KeyState.SHREDDED.value,
                    _KEYS.c.master_key_id != target,
                    or_(
                        _KEYS.c.subject_ref > after[0],
                        and_(_KEYS.c.subject_ref == after[0], _KEYS.c.key_id > after[1]),
                    ),
                )
                .order_by(_KEYS.c.subject_ref, _KEYS.c.key_id)
                .limit(page)
            ).all()
            if not rows:
                return count
            count += _rewrite(connection, rewrap([_entry(row) for row in rows]))
            after = (rows[-1][0], rows[-1][2])

    @staticmethod
    def _update(connection: Connection, entry: KeyEntry) -> bool:
        if entry.state is KeyState.SHREDDED:
            _lock_mark(connection, lock="update")
        result = connection.execute(
            update(_KEYS)
            .where(
                _KEYS.c.subject_ref == entry.subject,
                _KEYS.c.key_id == entry.key_id,
                _KEYS.c.state != KeyState.SHREDDED.value,
            )
            .values(
                scope=entry.scope,
                state=entry.state.value,
                master_key_id=entry.master_key_id,
                wrapped=entry.wrapped,
            )
        )
        if result.rowcount > 0 and entry.state is KeyState.SHREDDED:
            _bump_mark(connection)
        return result.rowcount > 0

    def mark_shredded(
        self, subject: str, scope: str | None = None, *, key_id: str | None = None
    ) -> int:
        """Destroy key material of ``subject`` (one key, one scope or all) and count it."""
        return self.shred_many([(subject, scope)], key_id=key_id)

    def shred_many(
        self,
        pairs: Iterable[tuple[str, str | None]],
        *,
        key_id: str | None = None,
        tombstone: bool = True,
    ) -> int:
        """Destroy the keys of many ``(ref, scope)`` pairs (scope ``None``: all) at once.

        With ``tombstone`` (the default, as :meth:`mark_shredded`) each pair is remembered
        as shredded, so no fresh key is created for it until revived; without, the keys
        are destroyed but a later write may create new ones (expired data, not an erasure
        request). Returns how many keys were newly shredded. On SQLite the write-ahead log
        is truncated before this returns, so no image of the destroyed keys remains.
        """
        wanted = list(dict.fromkeys(pairs))
        if not wanted:
            return 0
        count = 0
        stoned = False
        with self._db.write() as connection:
            _lock_mark(connection, lock="update")
            for start in range(0, len(wanted), _SHRED_CHUNK):
                chunk = wanted[start : start + _SHRED_CHUNK]
                if key_id is None and connection.dialect.name == "sqlite":
                    # A sweep's thousands of keys: straight to the driver, nothing to compile.
                    count += _shred_sqlite(connection, chunk)
                else:
                    statement = (
                        update(_KEYS)
                        .where(
                            _pairs_condition(chunk, connection.dialect.name),
                            _KEYS.c.state != KeyState.SHREDDED.value,
                        )
                        .values(state=KeyState.SHREDDED.value, master_key_id="", wrapped=b"")
                    )
                    if key_id is not None:
                        statement = statement.where(_KEYS.c.key_id == key_id)
                    count += connection.execute(statement).rowcount
                if key_id is None and tombstone:
                    stones = {(s, _ALL if c is None else c) for s, c in chunk}
                    existing = {
                        (row[0], row[1])
                        for row in connection.execute(
                            select(_TOMBSTONES.c.subject_ref, _TOMBSTONES.c.scope).where(
                                _TOMBSTONES.c.subject_ref.in_({s for s, _ in chunk})
                            )
                        )
                    }
                    fresh = [{"subject_ref": s, "scope": c} for s, c in sorted(stones - existing)]
                    if fresh:
                        connection.execute(insert(_TOMBSTONES), fresh)
                        stoned = True
            if count or stoned:
                # Last, in the same transaction: rolled back with the shreds, and taken
                # after the key rows (every writer locks them in that order). A new
                # tombstone counts even with no key left here: on a key database restored
                # from a backup older than a worker's cached key, the replayed erasure
                # finds none, and the mark would otherwise be the one the worker holds.
                _bump_mark(connection)
        batch = current_batch(self._local)
        if batch is not None:
            batch.forget(ref for ref, _scope in wanted)
        self._db.checkpoint()
        return count

    def count_live(self, pairs: Iterable[tuple[str, str | None]]) -> int:
        """How many keys of these ``(ref, scope)`` pairs are not shredded yet."""
        wanted = list(dict.fromkeys(pairs))
        count = 0
        with self._db.read() as connection:
            for start in range(0, len(wanted), _SHRED_CHUNK):
                chunk = wanted[start : start + _SHRED_CHUNK]
                rows = connection.execute(
                    select(_KEYS.c.key_id).where(
                        _pairs_condition(chunk, connection.dialect.name),
                        _KEYS.c.state != KeyState.SHREDDED.value,
                    )
                ).all()
                count += len(rows)
        return count

    def is_shredded(self, subject: str, scope: str) -> bool:
        """True when ``(subject, scope)`` is tombstoned and none of its keys is alive."""
        batch = batch_for(self._local, subject)
        if batch is not None:
            return batch.is_shredded(subject, scope)
        with self._db.read() as connection:
            return _blocked_sql(connection, subject, scope)

    # -- the audit anchor ---------------------------------------------------------------

    def read_anchor(self, name: str) -> tuple[int, str] | None:
        """The ``(sequence, hash)`` anchored for log ``name``, or ``None`` if never anchored."""
        with self._db.read() as connection:
            row = connection.execute(
                select(_ANCHORS.c.sequence, _ANCHORS.c.hash).where(_ANCHORS.c.name == name)
            ).first()
        return None if row is None else (int(row[0]), str(row[1]))

    def advance_anchor(self, name: str, sequence: int, head_hash: str) -> None:
        """Anchor log ``name`` at ``(sequence, head_hash)`` unless it is already further on.

        Never moves an anchor backwards: writers committing out of order, or a records
        database restored from an older copy, cannot pull it back (see
        :meth:`reset_anchor` for the deliberate way).
        """
        with self._db.write(relaxed=True) as connection:
            moved = connection.execute(
                update(_ANCHORS)
                .where(_ANCHORS.c.name == name, _ANCHORS.c.sequence < sequence)
                .values(sequence=sequence, hash=head_hash)
            ).rowcount
            if not moved:
                exists = connection.execute(
                    select(_ANCHORS.c.sequence).where(_ANCHORS.c.name == name)
                ).first()
                if exists is None:
                    connection.execute(
                        insert(_ANCHORS),
                        [{"name": name, "sequence": sequence, "hash": head_hash}],
                    )

    def reset_anchor(self, name: str, sequence: int, head_hash: str) -> None:
        """Set the anchor of ``name`` to ``(sequence, head_hash)``, backwards too (after a
        deliberate restore of the records database, recorded in its audit log)."""
        with self._db.write() as connection:
            moved = connection.execute(
                update(_ANCHORS)
                .where(_ANCHORS.c.name == name)
                .values(sequence=sequence, hash=head_hash)
            ).rowcount
            if not moved:
                connection.execute(
                    insert(_ANCHORS), [{"name": name, "sequence": sequence, "hash": head_hash}]
                )

    # -- maintenance ----------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """How many keys per state, and tombstones: for status displays."""
        from sqlalchemy import func

        with self._db.read() as connection:
            found = {
                str(state): int(n)
                for state, n in connection.execute(
                    select(_KEYS.c.state, func.count()).group_by(_KEYS.c.state)
                )
            }
            stones = connection.execute(select(func.count()).select_from(_TOMBSTONES)).scalar()
        return {
            **{state.value: found.get(state.value, 0) for state in KeyState},
            "tombstones": int(stones or 0),
        }

    def backup(self, path: str) -> None:
        """Write a consistent copy of a SQLite key database to ``path``.

        Keep key-database backups short-lived (see docs/security.md): a backup taken
        before an erasure still holds the erased learner's wrapped key.
        PostgreSQL key databases raise ``ConfigurationError`` (use ``pg_dump``).
        """
        self._db.backup(str(path))


def _rewrite(connection: Connection, entries: Sequence[KeyEntry]) -> int:
    """Write ``entries`` over their live rows: one statement executed for every entry,
    straight through the driver's executemany (rotation and compaction rewrite every key,
    and per-row parameter processing would cost more than the cryptography)."""
    if not entries:
        return 0
    # Only the driver's placeholder varies; every value is a bound parameter.
    sql = (
        "UPDATE lpk_keys SET scope = ?, state = ?, master_key_id = ?, wrapped = ? "
        "WHERE subject_ref = ? AND key_id = ? AND state <> ?"
    )
    if connection.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    shredded = KeyState.SHREDDED.value
    if any(e.state is KeyState.SHREDDED for e in entries):
        _lock_mark(connection, lock="update")
    params = [
        (e.scope, e.state.value, e.master_key_id, e.wrapped, e.subject, e.key_id, shredded)
        for e in entries
    ]
    count = int(connection.exec_driver_sql(sql, params).rowcount)
    if any(e.state is KeyState.SHREDDED for e in entries):
        # A live key may have been shredded by this rewrite (see KeyDatabase.shred_mark).
        _bump_mark(connection)
    return count


def _blocked_sql(connection: Connection, subject: str, scope: str) -> bool:
    stone = connection.execute(
        select(_TOMBSTONES.c.scope).where(
            _TOMBSTONES.c.subject_ref == subject, _TOMBSTONES.c.scope.in_((scope, _ALL))
        )
    ).first()
    if stone is None:
        return False
    alive = connection.execute(
        select(_KEYS.c.key_id).where(
            _KEYS.c.subject_ref == subject,
            _KEYS.c.scope == scope,
            _KEYS.c.state != KeyState.SHREDDED.value,
        )
    ).first()
    return alive is None


def _pairs_condition(pairs: Sequence[tuple[str, str | None]], dialect: str) -> ColumnElement[bool]:
    """The keys of these ``(ref, scope)`` pairs (scope ``None``: every scope).

    Grouped by scope into one ``IN`` each (a single bound array, see :func:`ids_in`): a
    sweep's thousands of learners share one or two scopes, and one expression per learner
    made building the statement cost far more than running it.
    """
    return or_(
        *(
            ids_in(_KEYS.c.subject_ref, refs, dialect)
            if scope is None
            else and_(_KEYS.c.scope == scope, ids_in(_KEYS.c.subject_ref, refs, dialect))
            for scope, refs in _by_scope(pairs).items()
        )
    )


def _by_scope(pairs: Sequence[tuple[str, str | None]]) -> dict[str | None, list[str]]:
    """The references of ``(ref, scope)`` pairs grouped by scope."""
    by_scope: dict[str | None, list[str]] = {}
    for ref, scope in pairs:
        by_scope.setdefault(scope, []).append(ref)
    return by_scope


_LIVE_SQL = (
    "SELECT subject_ref, key_id FROM lpk_keys "
    "WHERE subject_ref IN (SELECT value FROM json_each(?)) AND scope = ? AND state != ?"
)
_SHRED_SQL = (
    "UPDATE lpk_keys SET state = ?, master_key_id = '', wrapped = ? "
    "WHERE subject_ref IN (SELECT value FROM json_each(?)) AND state != ?"
)


def _shred_sqlite(connection: Connection, pairs: Sequence[tuple[str, str | None]]) -> int:
    """Shred the live keys of ``(ref, scope)`` pairs on SQLite: one ``UPDATE`` per scope
    (the same rows as :func:`_pairs_condition` selects), sent straight to the driver."""
    shredded = KeyState.SHREDDED.value
    count = 0
    for scope, refs in _by_scope(pairs).items():
        params: tuple[object, ...] = (shredded, b"", json.dumps(refs), shredded)
        statement = _SHRED_SQL
        if scope is not None:
            statement += " AND scope = ?"
            params += (scope,)
        count += connection.exec_driver_sql(statement, params).rowcount
    return count

"""The store's view of its key database: shreds that commit with the records.

The wrapped data keys live in a :class:`~learnprivacy.keys.KeyDatabase` of their own, so
deleting a learner's rows (records database) and destroying their keys (key database)
cannot be one transaction. The order that loses nothing:

* **New keys** are committed to the key database (:meth:`SqlKeyStore.flush`) *before*
  the records that use them. A crash in between leaves an unused key, never a record
  without its key.
* **Shreds** asked for inside a store transaction (:meth:`SqlKeyStore.bound`) are written
  to an outbox table, ``lp_key_outbox``, of the *records* database, in that same
  transaction: the outbox row exists if and only if the erasure committed. Once it has,
  the writer destroys the keys it sent (:meth:`SqlKeyStore.apply_sent`; those only, so
  concurrent sweeps never update the same key rows), then deletes its outbox rows. A
  crash in between leaves outbox rows that the next open of the store
  (:meth:`SqlKeyStore.apply_outbox`), or the next writer of the same learner
  (:meth:`SqlKeyStore.settle`), applies: shredding twice is
  shredding once.

The outbox names subjects by their key reference (``k1_...``), never by learner id.
A call that shreds many references of one scope (a sweep page) writes one row naming
them all, as a JSON array in ``subject_refs`` with an empty ``subject_ref``, instead of
one row per reference: a page of 5,000 erased learners inserts, reads back and deletes
one outbox row. A writer settling its learners' shreds takes their references out of
such a row (the row locked on PostgreSQL) and leaves the others owed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Connection,
    String,
    any_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
)

from learnprivacy.crypto._keystore import KeyEntry
from learnprivacy.errors import IntegrityError
from learnprivacy.store._bulk import ids_in
from learnprivacy.store._engine import Database, thread_bound
from learnprivacy.store._keydb import EpochRewrap, KeyDatabase, KeyRace
from learnprivacy.store._tables import KEY_OUTBOX

__all__ = ["KeyRace", "SqlKeyStore"]

_ALL = "*"
#: The ``subject_ref`` of an outbox row naming its references in ``subject_refs``.
_MANY = ""
_OUTBOX_INSERT = (
    "INSERT INTO lp_key_outbox (subject_ref, scope, tombstone, subject_refs) VALUES (?, ?, ?, ?)"
)
#: An outbox row as read: ``(id, subject_ref, scope, tombstone, subject_refs)``.
_Row = tuple[object, ...]
_CHUNK = 5_000
#: Whether the outbox holds any row (see :meth:`SqlKeyStore.settle`).
_ANY_OUTBOX_ROW = select(KEY_OUTBOX.c.id).limit(1)


class SqlKeyStore:
    """A :class:`learnprivacy.crypto.KeyStore` over a key database, for one store."""

    #: Tells :class:`~learnprivacy.crypto.Keyring` to name subjects by key references.
    pseudonymous_subjects = True
    #: Tells :class:`~learnprivacy.crypto.Keyring` that writes check the current epoch
    #: (and to pass ``rewrap=``).
    checks_epochs = True
    #: Tells :class:`~learnprivacy.crypto.Keyring` that :meth:`rewrap_live` (with
    #: ``skip=`` and ``stop_at_epoch=``) and :meth:`epochs` serve a rotation in bulk.
    bulk_rewrap = True

    __slots__ = ("_db", "_keys", "_local")

    def __init__(self, keys: KeyDatabase, db: Database) -> None:
        self._keys = keys
        self._db = db
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"SqlKeyStore({self._keys!r})"

    @property
    def key_database(self) -> KeyDatabase:
        """The key database holding the wrapped keys."""
        return self._keys

    # -- binding to the store's transactions -------------------------------------------

    @contextmanager
    def bound(self, connection: Connection) -> Iterator[None]:
        """Send shreds of this thread to the outbox of ``connection``'s transaction."""
        with thread_bound(self._local, "connection", connection):
            yield

    @contextmanager
    def batch(self, refs: Iterable[str], *, lock: bool = False) -> Iterator[None]:
        """Prefetch the keys of ``refs`` and buffer new ones (see ``KeyDatabase.batch``).

        ``lock`` is kept for callers; writers now serialise with erasers on the learner's
        row in the records database (see :meth:`settle`).
        """
        del lock
        with self._keys.batch(refs):
            yield

    def flush(self) -> None:
        """Commit the keys buffered by the current batch; :class:`KeyRace` on a conflict."""
        self._keys.flush()

    def _connection(self) -> Connection | None:
        return getattr(self._local, "connection", None)

    # -- the KeyStore protocol ---------------------------------------------------------

    def get(self, subject: str, key_id: str) -> KeyEntry | None:
        """The entry of ``key_id`` for ``subject``, shredded or not; ``None`` if unknown."""
        return self._keys.get(subject, key_id)

    def list_entries(
        self, subject: str | None = None, scope: str | None = None
    ) -> Iterator[KeyEntry]:
        """Entries of ``subject`` (optionally of one ``scope``), or every entry if ``None``."""
        return self._keys.list_entries(subject, scope)

    def live_entries(self, refs: Sequence[str]) -> list[tuple[str, str, str, str, bytes]]:
        """The live keys of ``refs``, fetched together (see ``KeyDatabase.live_entries``)."""
        return self._keys.live_entries(refs)

    def shred_mark(self) -> str:
        """The key database's shred mark (see ``KeyDatabase.shred_mark``). Shreds sent
        to the outbox change it when they are applied, as the keys are destroyed then."""
        return self._keys.shred_mark()

    def batch_mark(self) -> str | None:
        """The mark read by this thread's :meth:`batch` (see ``KeyDatabase.batch_mark``)."""
        return self._keys.batch_mark()

    def add(
        self, entry: KeyEntry, *, revive: bool = False, rewrap: EpochRewrap | None = None
    ) -> KeyEntry:
        """Insert an ACTIVE key unless one exists; refuse a shredded scope unless revived
        (under the current epoch key: see ``KeyDatabase.add``)."""
        return self._keys.add(entry, revive=revive, rewrap=rewrap)

    def update(self, entry: KeyEntry, *, rewrap: EpochRewrap | None = None) -> bool:
        """Replace a live entry; a missing or SHREDDED entry is left alone (``False``)."""
        return self._keys.update(entry, rewrap=rewrap)

    def iter_entries(self) -> Iterator[KeyEntry]:
        """Every entry, streamed a page at a time (for rotation)."""
        return self._keys.iter_entries()

    def update_many(self, entries: Sequence[KeyEntry], *, rewrap: EpochRewrap | None = None) -> int:
        """Replace many live entries in one transaction (for rotation)."""
        return self._keys.update_many(entries, rewrap=rewrap)

    def counts(self) -> dict[str, int]:
        """Keys per state and tombstones (for progress and status)."""
        return self._keys.counts()

    def epochs(self) -> tuple[str, str]:
        """``(current, next)`` epoch key ids of the key database ("" for none)."""
        return self._keys.epochs()

    def rewrap_live(
        self, target: str, rewrap: Callable[[str, str, str, str, bytes], bytes], **options: Any
    ) -> int:
        """:meth:`KeyDatabase.rewrap_live <learnprivacy.keys.KeyDatabase.rewrap_live>`
        (for rotation in bulk)."""
        return self._keys.rewrap_live(target, rewrap, **options)

    def is_shredded(self, subject: str, scope: str) -> bool:
        """True when ``(subject, scope)`` is tombstoned and none of its keys is alive."""
        return self._keys.is_shredded(subject, scope)

    def mark_shredded(
        self, subject: str, scope: str | None = None, *, key_id: str | None = None
    ) -> int:
        """Destroy key material of ``subject`` (one key, one scope or all) and count it.

        Inside a store transaction the whole-scope shred goes to the outbox and happens
        once the transaction commits; the count is of the keys it will destroy.
        """
        if key_id is not None:
            return self._keys.mark_shredded(subject, scope, key_id=key_id)
        return self.shred_many([(subject, scope)], tombstone=True)

    def shred_many(
        self,
        pairs: Iterable[tuple[str, str | None]],
        *,
        tombstone: bool = True,
        counted: bool = False,
    ) -> int:
        """Shred the keys of many ``(ref, scope)`` pairs: via the outbox inside a store
        transaction, at once otherwise. Returns how many keys are (to be) destroyed;
        ``counted``: the caller has counted them already, and 0 is returned."""
        wanted = list(dict.fromkeys(pairs))
        if not wanted:
            return 0
        connection = self._connection()
        if connection is None:
            return self._keys.shred_many(wanted, tombstone=tombstone)
        sent = getattr(self._local, "sent", None)
        if not isinstance(sent, set):
            sent = self._local.sent = set()
        sent.update(ref for ref, _scope in wanted)
        rows = _outbox_values(wanted, tombstone)
        if connection.dialect.name == "sqlite":
            # Straight to the driver: a sweep sends thousands of rows. The transaction
            # holds SQLite's write lock, so the rows take the ids just below the last one:
            # remembered, they are read back after the commit by range (see apply_sent).
            connection.exec_driver_sql(_OUTBOX_INSERT, rows)
            last = int(connection.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
            ranges = getattr(self._local, "ranges", None)
            if not isinstance(ranges, list):
                ranges = self._local.ranges = []
            ranges.append((last - len(rows) + 1, last))
        else:
            names = ("subject_ref", "scope", "tombstone", "subject_refs")
            values = [dict(zip(names, row, strict=True)) for row in rows]
            connection.execute(insert(KEY_OUTBOX), values)
        return 0 if counted else self._keys.count_live(wanted)

    # -- the outbox ----------------------------------------------------------------------

    def apply_sent(self, *, checkpoint: bool = True) -> int:
        """Apply the outbox rows this thread's committed transaction sent.

        Only those (found by key reference): concurrent sweeps, each applying its own
        shreds, then never update the same key rows, in whatever order, at the same time
        (two workers each applying the whole outbox deadlocked on PostgreSQL). Rows
        another process left behind are applied by :meth:`apply_outbox` (store opening)
        or by whoever sent them.

        The key database is checkpointed whatever ``checkpoint`` says (no image of a
        destroyed key outlives this call); ``checkpoint=False`` leaves the records
        database's log as it is, for a caller that checkpoints it itself later (a sweep,
        once at its end).
        """
        sent = getattr(self._local, "sent", None)
        ranges = getattr(self._local, "ranges", None)
        self._local.sent = self._local.ranges = None
        if not sent:
            return 0
        return self._apply_and_delete(
            lambda connection: _sent_rows(connection, sent, ranges or []), checkpoint=checkpoint
        )

    def discard_sent(self) -> None:
        """Forget that this thread wrote to the outbox (its transaction rolled back)."""
        self._local.sent = self._local.ranges = None

    def apply_outbox(self) -> int:
        """Destroy the keys of every committed outbox row, then delete those rows.

        Returns how many keys were destroyed. Safe to run at any time, by any process:
        rows are read, applied (idempotent), then deleted by id.
        """
        with self._db.read() as connection:
            if connection.execute(_ANY_OUTBOX_ROW).first() is None:
                return 0  # nothing owed: no write transaction taken (a store opening)
        return self._apply_and_delete(_all_outbox_rows)

    def _apply_and_delete(
        self, read: Callable[[Connection], Sequence[_Row]], *, checkpoint: bool = True
    ) -> int:
        """Apply the committed outbox rows ``read`` finds (idempotent), then delete them
        by id, all in one write transaction of the records database.

        The rows stay held while their keys are destroyed (locked on PostgreSQL, the
        database's write lock on SQLite): a writer settling one of their learners
        (:meth:`settle`) waits, then finds the row gone. Read before and applied after,
        a row a writer had settled meanwhile destroyed the new key that writer made next
        for a learner back after expiry, and with it the records written under it.
        """
        with self._db.write() as connection:
            rows = read(connection)
            if not rows:
                return 0
            count = self._apply(rows)
            _delete_outbox(connection, [int(str(row[0])) for row in rows])
        if checkpoint:
            self._db.checkpoint()
        return count

    def settle(self, connection: Connection, refs: Iterable[str]) -> int:
        """Inside a writer's transaction: apply the outbox rows of ``refs`` first.

        A writer about to use a learner's keys must not use one an erasure committed a
        moment ago has yet to destroy. The writer holds the learner's row (on
        PostgreSQL, ``FOR SHARE``; on SQLite, the write lock), so no erasure of that
        learner commits meanwhile; rows settled here are deleted in its transaction.

        An outbox with no row at all owes nothing to anyone: one probe for any row, in
        the same transaction, stands for the look-up of each reference (a row the probe
        cannot see, the look-up could not see either), so an empty outbox, the usual
        case, costs one small query whatever the number of references.
        """
        if connection.execute(_ANY_OUTBOX_ROW).first() is None:
            return 0
        wanted = set(refs)
        found = _outbox_rows(connection, sorted(wanted))
        if not found:
            return 0
        # What the rows owe these references, applied; each row then deleted, or, when it
        # also names other references, left owing those only.
        owed: list[_Row] = []
        done: list[int] = []
        for row in found:
            named = _refs_of(row)
            mine = [ref for ref in named if ref in wanted]
            if not mine:
                continue
            owed.append((row[0], _MANY, row[2], row[3], json.dumps(mine)))
            rest = [ref for ref in named if ref not in wanted]
            if rest:
                connection.execute(
                    KEY_OUTBOX.update()
                    .where(KEY_OUTBOX.c.id == row[0])
                    .values(subject_refs=json.dumps(rest))
                )
            else:
                done.append(int(str(row[0])))
        count = self._apply(owed)
        if done:
            _delete_outbox(connection, done)
        return count

    def _apply(self, rows: Iterable[_Row]) -> int:
        stones: list[tuple[str, str | None]] = []
        plain: list[tuple[str, str | None]] = []
        # Every row read before any key is touched: a malformed row applies nothing.
        for row in list(rows):
            scope = None if row[2] == _ALL else str(row[2])
            (stones if row[3] else plain).extend((ref, scope) for ref in _refs_of(row))
        count = self._keys.shred_many(stones, tombstone=True) if stones else 0
        if plain:
            count += self._keys.shred_many(plain, tombstone=False)
        return count


_RANGE_SELECT = (
    "SELECT id, subject_ref, scope, tombstone, subject_refs FROM lp_key_outbox "
    "WHERE id BETWEEN ? AND ? ORDER BY id"
)
_COLUMNS = (
    KEY_OUTBOX.c.id,
    KEY_OUTBOX.c.subject_ref,
    KEY_OUTBOX.c.scope,
    KEY_OUTBOX.c.tombstone,
    KEY_OUTBOX.c.subject_refs,
)


def _outbox_values(
    pairs: Sequence[tuple[str, str | None]], tombstone: bool
) -> list[tuple[str, str, bool, str | None]]:
    """The outbox rows ``(subject_ref, scope, tombstone, subject_refs)`` of ``pairs``: one
    per scope, naming its references in ``subject_refs`` when there are several."""
    by_scope: dict[str, list[str]] = {}
    for ref, scope in pairs:
        by_scope.setdefault(_ALL if scope is None else scope, []).append(ref)
    return [
        (refs[0], scope, tombstone, None)
        if len(refs) == 1
        else (_MANY, scope, tombstone, json.dumps(refs))
        for scope, refs in by_scope.items()
    ]


def _refs_of(row: _Row) -> list[str]:
    """The key references an outbox row names: its ``subject_ref``, or the JSON array in
    ``subject_refs``. ``IntegrityError`` for a row of neither form (an altered outbox):
    the shreds it owes cannot be told, and nothing of it may be taken as done."""
    ref, refs = row[1], row[4]
    if ref != _MANY:
        if isinstance(ref, str) and refs is None:
            return [ref]
    elif isinstance(refs, str):
        try:
            named = json.loads(refs)
        except ValueError:
            named = None
        if isinstance(named, list) and named and all(isinstance(r, str) and r for r in named):
            return named
    raise IntegrityError(
        f"key outbox row {row[0]} names no key reference it can be read as: the shreds "
        "it owes are unknown; nothing was applied"
    )


_DELETE_SQLITE = "DELETE FROM lp_key_outbox WHERE id IN (SELECT value FROM json_each(?))"


def _sent_rows(connection: Connection, sent: set[str], ranges: list[tuple[int, int]]) -> list[_Row]:
    """The committed outbox rows ``(id, ref, scope, tombstone)`` of the references in
    ``sent``, oldest first.

    On SQLite, ``ranges`` are the ids the sending transaction gave its rows: read by
    primary-key range, they cost one index walk each. Only rows still there and naming a
    sent reference are kept; if fewer than were sent remain (another writer settled some,
    or SQLite picked ids out of sequence), the whole outbox is read as on other databases
    (the same rows a range would have found, plus any a range missed).
    """
    if ranges and connection.dialect.name == "sqlite":
        rows = [
            tuple(row)
            for lo, hi in ranges
            for row in connection.exec_driver_sql(_RANGE_SELECT, (lo, hi)).fetchall()
            if not sent.isdisjoint(_refs_of(row))
        ]
        if len(rows) == sum(hi - lo + 1 for lo, hi in ranges):
            return rows
    # The whole outbox is this transaction's rows, but for other writers' rows in flight
    # and a crash's leftovers: reading it all and keeping ours costs less than looking
    # thousands of references up.
    mine = [
        row
        for row in _all_outbox_rows(connection, lock=False)
        if not sent.isdisjoint(_refs_of(row))
    ]
    if not mine or connection.dialect.name != "postgresql":
        return mine
    # Then these rows only, locked and read again (a writer may have settled some
    # meanwhile): other workers' rows stay free for them to apply at the same time.
    again = select(*_COLUMNS).where(KEY_OUTBOX.c.id.in_([row[0] for row in mine]))
    locked = connection.execute(again.order_by(KEY_OUTBOX.c.id).with_for_update()).all()
    return [tuple(row) for row in locked if not sent.isdisjoint(_refs_of(tuple(row)))]


def _all_outbox_rows(connection: Connection, *, lock: bool = True) -> list[_Row]:
    """Every outbox row ``(id, ref, scope, tombstone, refs)``, oldest first; with
    ``lock``, locked on PostgreSQL until the caller's (write) transaction ends."""
    query = select(*_COLUMNS).order_by(KEY_OUTBOX.c.id)
    if lock and connection.dialect.name == "postgresql":
        query = query.with_for_update()
    return [tuple(row) for row in connection.execute(query).all()]


def _outbox_rows(connection: Connection, refs: list[str]) -> list[_Row]:
    """The outbox rows ``(id, ref, scope, tombstone, refs)`` that may name these key
    references: theirs, and every row naming many (read once, with the first chunk).

    On PostgreSQL the rows are locked, in id order, until the caller's transaction ends:
    two writers taking their references out of one row must not overwrite each other's
    change (the reference one of them took out would be owed again, and its new key
    destroyed when the row is applied).
    """
    found: list[_Row] = []
    dialect = connection.dialect.name
    for start in range(0, len(refs), _CHUNK):
        chunk = refs[start : start + _CHUNK]
        where = ids_in(KEY_OUTBOX.c.subject_ref, chunk, dialect)
        if not start:
            where = where | (KEY_OUTBOX.c.subject_ref == _MANY)
        query = select(*_COLUMNS).where(where).order_by(KEY_OUTBOX.c.id)
        if dialect == "postgresql":
            query = query.with_for_update()
        found.extend(tuple(row) for row in connection.execute(query).all())
    return found


def _delete_outbox(connection: Connection, ids: list[int]) -> None:
    if connection.dialect.name == "sqlite":
        # One statement straight to the driver (nothing to compile), whatever the count.
        connection.exec_driver_sql(_DELETE_SQLITE, (json.dumps(ids),))
        return
    for start in range(0, len(ids), _CHUNK):
        connection.execute(
            delete(KEY_OUTBOX).where(_ids_in(connection, ids[start : start + _CHUNK]))
        )


def _ids_in(connection: Connection, ids: list[int]) -> ColumnElement[bool]:
    """``KEY_OUTBOX.id IN ids`` as one bound value (an expanding ``IN`` would process one
    parameter per row, thousands after a sweep)."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        param = bindparam("ids", ids, type_=ARRAY(BigInteger()), unique=True)
        return KEY_OUTBOX.c.id == any_(param)
    if dialect == "sqlite":
        array = bindparam("ids", json.dumps(ids), type_=String(), unique=True)
        return KEY_OUTBOX.c.id.in_(
            select(literal_column("value")).select_from(func.json_each(array))
        )
    return KEY_OUTBOX.c.id.in_(ids)

"""The crypto ``KeyStore`` protocol over the store's ``lp_keys`` table.

Each method is one transaction of its own, unless the store has *bound* a connection
(see :meth:`SqlKeyStore.bound`): then it runs inside the store's current transaction,
so that deleting a learner's rows and shredding their keys commit or roll back together.

For bulk writes the store also opens a *batch* (:meth:`SqlKeyStore.batch`): the entries
of the subjects about to be written are read in one query, and new keys are buffered and
inserted with one ``executemany`` by :meth:`SqlKeyStore.flush`, instead of two queries
per new learner.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update

from learnprivacy.crypto._keystore import KeyEntry, KeyState
from learnprivacy.errors import KeyShreddedError
from learnprivacy.store._bulk import bulk_insert, ids_in
from learnprivacy.store._engine import Database
from learnprivacy.store._tables import KEYS, TOMBSTONES

__all__ = ["KeyRace", "SqlKeyStore"]

_ALL = "*"
_CHUNK = 5_000
# Shredding builds one condition per (subject, scope): keep those statements small.
_SHRED_CHUNK = 200


class KeyRace(Exception):
    """Another writer created a key for a subject of this batch first; retry the batch."""


def _entry(row: Sequence[Any]) -> KeyEntry:
    subject, scope, key_id, state, master_key_id, wrapped = row
    return KeyEntry(
        subject=subject,
        scope=scope,
        key_id=key_id,
        state=KeyState(state),
        master_key_id=master_key_id,
        wrapped=bytes(wrapped),
    )


def _values(entry: KeyEntry) -> dict[str, object]:
    return {
        "subject": entry.subject,
        "scope": entry.scope,
        "key_id": entry.key_id,
        "state": entry.state.value,
        "master_key_id": entry.master_key_id,
        "wrapped": entry.wrapped,
    }


_COLUMNS = (
    KEYS.c.subject,
    KEYS.c.scope,
    KEYS.c.key_id,
    KEYS.c.state,
    KEYS.c.master_key_id,
    KEYS.c.wrapped,
)


class _Batch:
    """Entries and tombstones of a known set of subjects, and keys not yet inserted."""

    __slots__ = ("entries", "pending", "tombstones")

    def __init__(self) -> None:
        self.entries: dict[str, list[KeyEntry]] = {}
        self.tombstones: set[tuple[str, str]] = set()
        self.pending: list[KeyEntry] = []


class SqlKeyStore:
    """A :class:`learnprivacy.crypto.KeyStore` kept in the store's database."""

    __slots__ = ("_db", "_local")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"SqlKeyStore({self._db.engine.dialect.name})"

    # -- binding to the store's transactions -------------------------------------------

    @contextmanager
    def bound(self, connection: Connection) -> Iterator[None]:
        """Run every key operation of this thread inside ``connection``'s transaction."""
        previous = getattr(self._local, "connection", None)
        self._local.connection = connection
        try:
            yield
        finally:
            self._local.connection = previous
            self._local.batch = None

    @contextmanager
    def batch(self, subjects: Iterable[str], *, lock: bool = False) -> Iterator[None]:
        """Prefetch the keys of ``subjects`` and buffer new ones (needs :meth:`bound`).

        ``lock`` (for writers, PostgreSQL only) share-locks those key rows until the
        transaction ends, so a concurrent shred waits and then sees the new rows that use
        the keys instead of destroying a key that has just been used to encrypt.
        """
        connection = self._connection()
        if connection is None:
            raise RuntimeError("SqlKeyStore.batch needs a bound connection")
        batch = _Batch()
        wanted = sorted(set(subjects))
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            for subject in chunk:
                batch.entries[subject] = []
            dialect = connection.dialect.name
            query = select(*_COLUMNS).where(ids_in(KEYS.c.subject, chunk, dialect))
            if lock and self._db.is_postgres:
                query = query.with_for_update(read=True)
            for row in connection.execute(query).all():
                batch.entries[row[0]].append(_entry(row))
            for subject, scope in connection.execute(
                select(TOMBSTONES.c.subject, TOMBSTONES.c.scope).where(
                    ids_in(TOMBSTONES.c.subject, chunk, dialect)
                )
            ).all():
                batch.tombstones.add((subject, scope))
        self._local.batch = batch
        try:
            yield
        finally:
            self._local.batch = None

    def flush(self) -> None:
        """Insert the keys buffered by the current batch; :class:`KeyRace` on a conflict."""
        batch: _Batch | None = getattr(self._local, "batch", None)
        connection = self._connection()
        if batch is None or connection is None or not batch.pending:
            return
        pending, batch.pending = batch.pending, []
        try:
            with connection.begin_nested():
                bulk_insert(connection, KEYS, [_values(e) for e in pending])
        except Exception as exc:
            from sqlalchemy.exc import IntegrityError

            if isinstance(exc, IntegrityError):
                raise KeyRace("a key was created concurrently") from None
            raise

    def _connection(self) -> Connection | None:
        return getattr(self._local, "connection", None)

    def _batch_for(self, subject: str | None) -> _Batch | None:
        batch: _Batch | None = getattr(self._local, "batch", None)
        if batch is None or subject is None or subject not in batch.entries:
            return None
        return batch

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        connection = self._connection()
        if connection is not None:
            yield connection
        else:
            with self._db.write() as own:
                yield own

    # -- the KeyStore protocol ---------------------------------------------------------

    def get(self, subject: str, key_id: str) -> KeyEntry | None:
        """The entry of ``key_id`` for ``subject``, shredded or not; ``None`` if unknown."""
        batch = self._batch_for(subject)
        if batch is not None:
            return next((e for e in batch.entries[subject] if e.key_id == key_id), None)
        query = select(*_COLUMNS).where(KEYS.c.subject == subject, KEYS.c.key_id == key_id)
        connection = self._connection()
        if connection is not None:
            row = connection.execute(query).first()
        else:
            with self._db.read() as own:
                row = own.execute(query).first()
        return None if row is None else _entry(row)

    def list_entries(
        self, subject: str | None = None, scope: str | None = None
    ) -> Iterator[KeyEntry]:
        """Entries of ``subject`` (optionally of one ``scope``), or every entry if ``None``."""
        batch = self._batch_for(subject)
        if batch is not None and subject is not None:
            found = list(batch.entries[subject])
            return iter([e for e in found if scope is None or e.scope == scope])
        query = select(*_COLUMNS).order_by(KEYS.c.subject, KEYS.c.scope, KEYS.c.key_id)
        if subject is not None:
            query = query.where(KEYS.c.subject == subject)
        if scope is not None:
            query = query.where(KEYS.c.scope == scope)
        connection = self._connection()
        if connection is not None:
            rows = connection.execute(query).all()
        else:
            with self._db.read() as own:
                rows = own.execute(query).all()
        return iter([_entry(row) for row in rows])

    def add(self, entry: KeyEntry, *, revive: bool = False) -> KeyEntry:
        """Insert an ACTIVE key unless one exists; refuse a shredded scope unless revived."""
        batch = self._batch_for(entry.subject)
        if batch is not None:
            for existing in batch.entries[entry.subject]:
                if existing.scope == entry.scope and existing.state is KeyState.ACTIVE:
                    return existing
            if not revive and _blocked(
                batch.entries[entry.subject], batch.tombstones, entry.subject, entry.scope
            ):
                raise KeyShreddedError(
                    f"the keys of this subject's scope {entry.scope!r} were shredded"
                )
            batch.entries[entry.subject].append(entry)
            batch.pending.append(entry)
            return entry
        with self._transaction() as connection:
            existing_row = connection.execute(
                select(*_COLUMNS).where(
                    KEYS.c.subject == entry.subject,
                    KEYS.c.scope == entry.scope,
                    KEYS.c.state == KeyState.ACTIVE.value,
                )
            ).first()
            if existing_row is not None:
                return _entry(existing_row)
            if not revive and self._blocked_sql(connection, entry.subject, entry.scope):
                raise KeyShreddedError(
                    f"the keys of this subject's scope {entry.scope!r} were shredded"
                )
            try:
                with connection.begin_nested():
                    connection.execute(insert(KEYS), [_values(entry)])
            except Exception as exc:
                from sqlalchemy.exc import IntegrityError

                if not isinstance(exc, IntegrityError):
                    raise
                # A concurrent writer created the active key first: use theirs.
                row = connection.execute(
                    select(*_COLUMNS).where(
                        KEYS.c.subject == entry.subject,
                        KEYS.c.scope == entry.scope,
                        KEYS.c.state == KeyState.ACTIVE.value,
                    )
                ).first()
                if row is None:
                    raise
                return _entry(row)
            return entry

    def update(self, entry: KeyEntry) -> bool:
        """Replace a live entry; a missing or SHREDDED entry is left alone (``False``)."""
        with self._transaction() as connection:
            result = connection.execute(
                update(KEYS)
                .where(
                    KEYS.c.subject == entry.subject,
                    KEYS.c.key_id == entry.key_id,
                    KEYS.c.state != KeyState.SHREDDED.value,
                )
                .values(
                    scope=entry.scope,
                    state=entry.state.value,
                    master_key_id=entry.master_key_id,
                    wrapped=entry.wrapped,
                )
            )
            changed = result.rowcount > 0
        batch = self._batch_for(entry.subject)
        if changed and batch is not None:
            batch.entries[entry.subject] = [
                entry if e.key_id == entry.key_id else e for e in batch.entries[entry.subject]
            ]
        return changed

    def mark_shredded(
        self, subject: str, scope: str | None = None, *, key_id: str | None = None
    ) -> int:
        """Destroy key material of ``subject`` (one key, one scope or all) and count it."""
        return self.shred_many([(subject, scope)], key_id=key_id)

    def shred_many(
        self, pairs: Iterable[tuple[str, str | None]], *, key_id: str | None = None
    ) -> int:
        """:meth:`mark_shredded` for many ``(subject, scope)`` pairs in a few statements."""
        wanted = list(dict.fromkeys(pairs))
        if not wanted:
            return 0
        count = 0
        own = self._connection() is None
        with self._transaction() as connection:
            for start in range(0, len(wanted), _SHRED_CHUNK):
                chunk = wanted[start : start + _SHRED_CHUNK]
                conditions = [
                    and_(KEYS.c.subject == s, *(() if c is None else (KEYS.c.scope == c,)))
                    for s, c in chunk
                ]
                statement = (
                    update(KEYS)
                    .where(or_(*conditions), KEYS.c.state != KeyState.SHREDDED.value)
                    .values(state=KeyState.SHREDDED.value, master_key_id="", wrapped=b"")
                )
                if key_id is not None:
                    statement = statement.where(KEYS.c.key_id == key_id)
                count += connection.execute(statement).rowcount
                if key_id is None:
                    stones = [{"subject": s, "scope": _ALL if c is None else c} for s, c in chunk]
                    existing = {
                        (row[0], row[1])
                        for row in connection.execute(
                            select(TOMBSTONES.c.subject, TOMBSTONES.c.scope).where(
                                TOMBSTONES.c.subject.in_({s for s, _ in chunk})
                            )
                        )
                    }
                    fresh = [t for t in stones if (t["subject"], t["scope"]) not in existing]
                    if fresh:
                        connection.execute(insert(TOMBSTONES), fresh)
        for subject, _scope in wanted:
            batch = self._batch_for(subject)
            if batch is not None:
                # Simplest correct answer: forget the prefetched state of that subject.
                batch.entries.pop(subject, None)
        if own:
            # Inside a store transaction the store checkpoints once it commits.
            self._db.checkpoint()
        return count

    def is_shredded(self, subject: str, scope: str) -> bool:
        """True when ``(subject, scope)`` is tombstoned and none of its keys is alive."""
        batch = self._batch_for(subject)
        if batch is not None:
            return _blocked(batch.entries[subject], batch.tombstones, subject, scope)
        connection = self._connection()
        if connection is not None:
            return self._blocked_sql(connection, subject, scope)
        with self._db.read() as own:
            return self._blocked_sql(own, subject, scope)

    def _blocked_sql(self, connection: Connection, subject: str, scope: str) -> bool:
        stone = connection.execute(
            select(TOMBSTONES.c.scope).where(
                TOMBSTONES.c.subject == subject, TOMBSTONES.c.scope.in_((scope, _ALL))
            )
        ).first()
        if stone is None:
            return False
        alive = connection.execute(
            select(KEYS.c.key_id).where(
                KEYS.c.subject == subject,
                KEYS.c.scope == scope,
                KEYS.c.state != KeyState.SHREDDED.value,
            )
        ).first()
        return alive is None


def _blocked(
    entries: list[KeyEntry], tombstones: set[tuple[str, str]], subject: str, scope: str
) -> bool:
    if (subject, scope) not in tombstones and (subject, _ALL) not in tombstones:
        return False
    return all(e.state is KeyState.SHREDDED for e in entries if e.scope == scope)

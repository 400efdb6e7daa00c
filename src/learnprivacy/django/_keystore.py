"""The crypto ``KeyStore`` protocol over the key store's own database alias.

Each method is one transaction on ``LEARNPRIVACY["KEYS"]``, in plain SQL through
Django's connection (the keyring calls it on every first use of a learner's key, so the
ORM's per-query cost would show). The tables are ``learnprivacy.django.models.KeyEntry``
and ``KeyTombstone``, created by ``manage.py migrate --database <KEYS alias>``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from learnprivacy.crypto._keystore import ALL_SCOPES as _ALL
from learnprivacy.crypto._keystore import KeyEntry, KeyState
from learnprivacy.crypto._keystore import entry_from_row as _entry
from learnprivacy.crypto._keystore import scope_blocked as _blocked
from learnprivacy.errors import ConfigurationError, KeyShreddedError

__all__ = ["DjangoKeyStore"]

_COLUMNS = "subject, scope, key_id, state, master_key_id, wrapped"
_KEYS = "lpdj_keys"
_TOMBSTONES = "lpdj_key_tombstones"
_META = "lpdj_key_meta"


class _Batch:
    """Entries and tombstones of a known set of subjects, and keys not yet inserted."""

    __slots__ = ("entries", "pending", "tombstones")

    def __init__(self) -> None:
        self.entries: dict[str, list[KeyEntry]] = {}
        self.tombstones: set[tuple[str, str]] = set()
        self.pending: list[KeyEntry] = []


class DjangoKeyStore:
    """A :class:`learnprivacy.crypto.KeyStore` in the database alias ``alias``.

    :meth:`batch` serves many learners at once: their entries are read in a few queries
    and their new keys inserted in one transaction when the batch ends (see
    :func:`learnprivacy.django.prepare_keys`).
    """

    __slots__ = ("_alias", "_local")

    def __init__(self, alias: str) -> None:
        from django.conf import settings

        if alias not in settings.DATABASES:
            raise ConfigurationError(
                f'LEARNPRIVACY["KEYS"] names {alias!r}, which is not in settings.DATABASES'
            )
        self._alias = alias
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"DjangoKeyStore({self._alias!r})"

    @property
    def alias(self) -> str:
        """The database alias holding the keys."""
        return self._alias

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        from django.db import connections

        with connections[self._alias].cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    # -- batches ---------------------------------------------------------------------

    @contextmanager
    def batch(self, subjects: Iterable[str]) -> Iterator[None]:
        """Read the keys of ``subjects`` at once; insert their new keys when done.

        The new keys are committed to the key store when the block ends, in one
        transaction: end the batch *before* committing data encrypted under them.
        """
        batch = _Batch()
        wanted = sorted(set(subjects))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for subject in chunk:
                batch.entries[subject] = []
            marks = ", ".join(["%s"] * len(chunk))
            for row in self._rows(
                f"SELECT {_COLUMNS} FROM {_KEYS} WHERE subject IN ({marks}) ORDER BY id", chunk
            ):
                batch.entries[row[0]].append(_entry(row))
            for subject, scope in self._rows(
                f"SELECT subject, scope FROM {_TOMBSTONES} WHERE subject IN ({marks})", chunk
            ):
                batch.tombstones.add((subject, scope))
        self._local.batch = batch
        try:
            yield
            self._flush(batch)
        finally:
            self._local.batch = None

    def _flush(self, batch: _Batch) -> None:
        from django.db import connections, transaction

        if not batch.pending:
            return
        rows = [
            [e.subject, e.scope, e.key_id, e.state.value, e.master_key_id, e.wrapped]
            for e in batch.pending
        ]
        # Multi-row INSERTs of a few hundred keys: one round trip each, on every backend.
        with transaction.atomic(using=self._alias), connections[self._alias].cursor() as cursor:
            for start in range(0, len(rows), 200):
                chunk = rows[start : start + 200]
                marks = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
                cursor.execute(
                    f"INSERT INTO {_KEYS} ({_COLUMNS}) VALUES {marks}",
                    [value for row in chunk for value in row],
                )
        batch.pending = []

    def _batch_for(self, subject: str | None) -> _Batch | None:
        batch: _Batch | None = getattr(self._local, "batch", None)
        if batch is None or subject is None or subject not in batch.entries:
            return None
        return batch

    # -- the KeyStore protocol ---------------------------------------------------------

    def get(self, subject: str, key_id: str) -> KeyEntry | None:
        """The entry of ``key_id`` for ``subject``, shredded or not; ``None`` if unknown."""
        batch = self._batch_for(subject)
        if batch is not None:
            return next((e for e in batch.entries[subject] if e.key_id == key_id), None)
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM {_KEYS} WHERE subject = %s AND key_id = %s",
            [subject, key_id],
        )
        return _entry(rows[0]) if rows else None

    def list_entries(
        self, subject: str | None = None, scope: str | None = None
    ) -> Iterator[KeyEntry]:
        """Entries of ``subject`` (optionally of one ``scope``), or every entry if ``None``."""
        batch = self._batch_for(subject)
        if batch is not None and subject is not None:
            found = batch.entries[subject]
            return iter([e for e in found if scope is None or e.scope == scope])
        where: list[str] = []
        params: list[str] = []
        if subject is not None:
            where.append("subject = %s")
            params.append(subject)
        if scope is not None:
            where.append("scope = %s")
            params.append(scope)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM {_KEYS}{clause} ORDER BY subject, scope, id", params
        )
        return iter([_entry(row) for row in rows])

    def add(self, entry: KeyEntry, *, revive: bool = False) -> KeyEntry:
        """Insert an ACTIVE key unless one exists; refuse a shredded scope unless revived.

        One statement in the common case: the INSERT itself checks the tombstones, and
        the unique index on active keys turns a concurrent writer's key into an
        ``IntegrityError``, after which theirs is used.
        """
        from django.db import IntegrityError, connections, transaction

        batch = self._batch_for(entry.subject)
        if batch is not None:
            known = batch.entries[entry.subject]
            for existing in known:
                if existing.scope == entry.scope and existing.state is KeyState.ACTIVE:
                    return existing
            if not revive and _blocked(known, batch.tombstones, entry.subject, entry.scope):
                raise KeyShreddedError(
                    f"the keys of this subject's scope {entry.scope!r} were shredded"
                )
            known.append(entry)
            batch.pending.append(entry)
            return entry
        connection = connections[self._alias]
        values = [
            entry.subject,
            entry.scope,
            entry.key_id,
            entry.state.value,
            entry.master_key_id,
            entry.wrapped,
        ]
        insert = f"INSERT INTO {_KEYS} ({_COLUMNS}) SELECT %s, %s, %s, %s, %s, %s"
        if not revive:
            insert += (
                f" WHERE NOT EXISTS (SELECT 1 FROM {_TOMBSTONES} "
                "WHERE subject = %s AND scope IN (%s, %s))"
            )
            values += [entry.subject, entry.scope, _ALL]
        try:
            # Inside a transaction (tests, callers' atomic blocks) a failed INSERT must
            # not abort it: a savepoint then. In autocommit the statement is atomic alone.
            if connection.in_atomic_block:
                with transaction.atomic(using=self._alias), connection.cursor() as cursor:
                    cursor.execute(insert, values)
                    inserted = cursor.rowcount
            else:
                with connection.cursor() as cursor:
                    cursor.execute(insert, values)
                    inserted = cursor.rowcount
        except IntegrityError:
            inserted = 0
        if inserted == 1:
            return entry
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {_COLUMNS} FROM {_KEYS} WHERE subject = %s AND scope = %s AND state = %s",
                [entry.subject, entry.scope, KeyState.ACTIVE.value],
            )
            row = cursor.fetchone()
            if row is not None:
                # A concurrent writer created the active key first: use theirs.
                return _entry(row)
            if revive or not self._blocked(cursor, entry.subject, entry.scope):
                # Tombstoned but revived since (a live key exists): insert without the check.
                return self.add(entry, revive=True)
        raise KeyShreddedError(f"the keys of this subject's scope {entry.scope!r} were shredded")

    def update(self, entry: KeyEntry) -> bool:
        """Replace a live entry; a missing or SHREDDED entry is left alone (``False``)."""
        from django.db import connections, transaction

        with transaction.atomic(using=self._alias), connections[self._alias].cursor() as cursor:
            cursor.execute(
                f"UPDATE {_KEYS} SET scope = %s, state = %s, master_key_id = %s, wrapped = %s "
                "WHERE subject = %s AND key_id = %s AND state <> %s",
                [
                    entry.scope,
                    entry.state.value,
                    entry.master_key_id,
                    entry.wrapped,
                    entry.subject,
                    entry.key_id,
                    KeyState.SHREDDED.value,
                ],
            )
            return bool(cursor.rowcount > 0)

    def mark_shredded(
        self, subject: str, scope: str | None = None, *, key_id: str | None = None
    ) -> int:
        """Destroy key material of ``subject`` (one key, one scope or all) and count it."""
        return self.shred_many([(subject, scope)], key_id=key_id)

    def shred_many(
        self, pairs: Iterable[tuple[str, str | None]], *, key_id: str | None = None
    ) -> int:
        """:meth:`mark_shredded` for many ``(subject, scope)`` pairs in one transaction."""
        from django.db import connections, transaction

        wanted = list(dict.fromkeys(pairs))
        batch: _Batch | None = getattr(self._local, "batch", None)
        if batch is not None:
            # Simplest correct answer: the batch forgets what it knew of these subjects.
            for subject, _scope in wanted:
                batch.entries.pop(subject, None)
        count = 0
        with transaction.atomic(using=self._alias), connections[self._alias].cursor() as cursor:
            for subject, scope in wanted:
                sql = (
                    f"UPDATE {_KEYS} SET state = %s, master_key_id = '', wrapped = %s "
                    "WHERE subject = %s AND state <> %s"
                )
                params: list[Any] = [KeyState.SHREDDED.value, b"", subject, KeyState.SHREDDED.value]
                if scope is not None:
                    sql += " AND scope = %s"
                    params.append(scope)
                if key_id is not None:
                    sql += " AND key_id = %s"
                    params.append(key_id)
                cursor.execute(sql, params)
                count += max(cursor.rowcount, 0)
                if key_id is None:
                    stone = _ALL if scope is None else scope
                    cursor.execute(
                        f"SELECT 1 FROM {_TOMBSTONES} WHERE subject = %s AND scope = %s",
                        [subject, stone],
                    )
                    if cursor.fetchone() is None:
                        cursor.execute(
                            f"INSERT INTO {_TOMBSTONES} (subject, scope) VALUES (%s, %s)",
                            [subject, stone],
                        )
        return count

    # -- rotation and maintenance -------------------------------------------------------

    def iter_entries(self, *, page: int = 5_000) -> Iterator[KeyEntry]:
        """Every entry, streamed a page at a time in insertion order (for rotation)."""
        after = 0
        while True:
            rows = self._rows(
                f"SELECT id, {_COLUMNS} FROM {_KEYS} WHERE id > %s ORDER BY id LIMIT %s",
                [after, page],
            )
            if not rows:
                return
            for row in rows:
                yield _entry(row[1:])
            after = int(rows[-1][0])

    def update_many(self, entries: Sequence[KeyEntry]) -> int:
        """:meth:`update` for many entries in one transaction; returns how many changed.

        One statement run for every entry through the driver's ``executemany``: a
        rotation rewrites every key, and one round trip each would cost more than the
        cryptography. The batch commits whole or not at all, so a rotation killed
        half-way leaves each entry wrapped under the old key or the new one, never lost.
        """
        from django.db import connections, transaction

        if not entries:
            return 0
        shredded = KeyState.SHREDDED.value
        params = [
            [e.scope, e.state.value, e.master_key_id, e.wrapped, e.subject, e.key_id, shredded]
            for e in entries
        ]
        with transaction.atomic(using=self._alias), connections[self._alias].cursor() as cursor:
            cursor.executemany(
                f"UPDATE {_KEYS} SET scope = %s, state = %s, master_key_id = %s, wrapped = %s "
                "WHERE subject = %s AND key_id = %s AND state <> %s",
                params,
            )
            changed = cursor.rowcount
        # Some drivers report -1 for executemany: the entries were live when read.
        return len(entries) if changed is None or changed < 0 else int(changed)

    def counts(self) -> dict[str, int]:
        """How many keys per state, and tombstones: for status displays and progress."""
        found = {
            str(state): int(n)
            for state, n in self._rows(f"SELECT state, count(*) FROM {_KEYS} GROUP BY state", [])
        }
        stones = self._rows(f"SELECT count(*) FROM {_TOMBSTONES}", [])[0][0]
        return {
            **{state.value: found.get(state.value, 0) for state in KeyState},
            "tombstones": int(stones or 0),
        }

    def wrapping_counts(self) -> dict[str, int]:
        """How many live (not shredded) keys each wrapping key id wraps."""
        return {
            str(key_id): int(n)
            for key_id, n in self._rows(
                f"SELECT master_key_id, count(*) FROM {_KEYS} WHERE state <> %s "
                "GROUP BY master_key_id",
                [KeyState.SHREDDED.value],
            )
        }

    def read_meta(self) -> dict[str, str]:
        """The key store's own state (``lpdj_key_meta``): rotation, epochs."""
        return {str(k): str(v) for k, v in self._rows('SELECT "key", value FROM ' + _META, [])}

    def write_meta(self, values: dict[str, str | None]) -> None:
        """Set (or, for ``None``, remove) entries of the key store's state, in one
        transaction."""
        from django.db import connections, transaction

        with transaction.atomic(using=self._alias), connections[self._alias].cursor() as cursor:
            for key, value in values.items():
                cursor.execute(f'DELETE FROM {_META} WHERE "key" = %s', [key])
                if value is not None:
                    cursor.execute(
                        f'INSERT INTO {_META} ("key", value) VALUES (%s, %s)', [key, value]
                    )

    def backup(self, path: str) -> None:
        """Write a consistent copy of a SQLite key store to ``path`` (a new file).

        A PostgreSQL key store raises ``ConfigurationError``: back it up with
        ``pg_dump --table 'lpdj_key*'``. Keep key backups short-lived: a backup taken
        before an erasure still holds the erased learner's wrapped key until the next
        compaction (see docs/security.md).
        """
        import sqlite3

        from django.db import connections

        connection = connections[self._alias]
        if connection.vendor != "sqlite":
            raise ConfigurationError(
                f"the key store is on {connection.vendor}: back it up with pg_dump "
                "(--table 'lpdj_key*'), not learnprivacy_keys backup"
            )
        connection.ensure_connection()
        source = connection.connection
        target = sqlite3.connect(path)
        try:
            source.backup(target)
        finally:
            target.close()

    def is_shredded(self, subject: str, scope: str) -> bool:
        """True when ``(subject, scope)`` is tombstoned and none of its keys is alive."""
        from django.db import connections

        batch = self._batch_for(subject)
        if batch is not None:
            return _blocked(batch.entries[subject], batch.tombstones, subject, scope)
        with connections[self._alias].cursor() as cursor:
            return self._blocked(cursor, subject, scope)

    @staticmethod
    def _blocked(cursor: Any, subject: str, scope: str) -> bool:
        cursor.execute(
            f"SELECT 1 FROM {_TOMBSTONES} WHERE subject = %s AND scope IN (%s, %s)",
            [subject, scope, _ALL],
        )
        if cursor.fetchone() is None:
            return False
        cursor.execute(
            f"SELECT 1 FROM {_KEYS} WHERE subject = %s AND scope = %s AND state <> %s",
            [subject, scope, KeyState.SHREDDED.value],
        )
        return cursor.fetchone() is None

"""The crypto ``KeyStore`` protocol over the key store's own database alias.

Each method is one transaction on ``LEARNPRIVACY["KEYS"]``, in plain SQL through
Django's connection (the keyring calls it on every first use of a learner's key, so the
ORM's per-query cost would show). The tables are ``learnprivacy.django.models.KeyEntry``
and ``KeyTombstone``, created by ``manage.py migrate --database <KEYS alias>``.

Learners are never named in clear here: the keyring names each by its key reference
(``k1_`` and a keyed HMAC of the id, :meth:`~learnprivacy.crypto.Keyring.key_ref`), as
in the store's key database. :func:`convert_clear_subjects` converts the rows of key
stores written before (migration ``0004_key_refs_convert``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any

from learnprivacy._vocabulary import BATCH_SIZE
from learnprivacy.crypto._keybatch import KeyBatch, batch_for, current_batch
from learnprivacy.crypto._keystore import ALL_SCOPES as _ALL
from learnprivacy.crypto._keystore import KeyEntry, KeyState, scope_blocked
from learnprivacy.crypto._keystore import entry_from_row as _entry
from learnprivacy.errors import ConfigurationError, KeyShreddedError
from learnprivacy.store._keydb import EpochRewrap, KeyEpochError, epoch_guarded

__all__ = ["DjangoKeyStore", "convert_clear_subjects", "unconverted_rows"]

_COLUMNS = "subject_ref, scope, key_id, state, master_key_id, wrapped"
_KEYS = "lpdj_keys"
_TOMBSTONES = "lpdj_key_tombstones"
_META = "lpdj_key_meta"
# The lpdj_key_meta row naming the epoch keys data keys may be wrapped under, as
# ``|current|next|`` ("" for none). Every transaction writing a wrapped key reads it
# locked; compaction changes it holding it exclusively (see learnprivacy.store._epochs).
_EPOCH_ROW = "wrapping_epochs"
# The lpdj_key_meta row given a new random value by every transaction that shreds or
# destroys keys, in that transaction (the key store's shred mark, see shred_mark).
_SHRED_MARK = "shred_mark"


class DjangoKeyStore:
    """A :class:`learnprivacy.crypto.KeyStore` in the database alias ``alias``.

    :meth:`batch` serves many learners at once: their entries are read in a few queries
    and their new keys inserted in one transaction when the batch ends (see
    :func:`learnprivacy.django.prepare_keys`).
    """

    #: Tells :class:`~learnprivacy.crypto.Keyring` to name subjects by key references.
    pseudonymous_subjects = True
    #: Tells :class:`~learnprivacy.crypto.Keyring` that writes check the current epoch
    #: (and to pass ``rewrap=``).
    checks_epochs = True

    __slots__ = ("_alias", "_epoch_seen", "_local")

    def __init__(self, alias: str) -> None:
        from django.conf import settings

        if alias not in settings.DATABASES:
            raise ConfigurationError(
                f'LEARNPRIVACY["KEYS"] names {alias!r}, which is not in settings.DATABASES'
            )
        self._alias = alias
        self._local = threading.local()
        # The epoch row's value as last read locked ("" for no row; None: unknown), for
        # the one-statement insert of add() (see there).
        self._epoch_seen: str | None = None

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

    def _chunks(self, subjects: Iterable[str]) -> Iterator[tuple[list[str], str, Sequence[Any]]]:
        """``subjects`` (sorted, once each) in chunks, each with the ``WHERE subject_ref``
        condition and parameters that select it."""
        wanted = sorted(set(subjects))
        # PostgreSQL takes the whole list as one array parameter: Django's client-side
        # binding splits a query's text at every placeholder, which cost more than the
        # query itself with hundreds of them. SQLite takes chunks of placeholders.
        array = self._vendor() == "postgresql"
        size = 10_000 if array else 500
        for start in range(0, len(wanted), size):
            chunk = wanted[start : start + size]
            where = "= ANY(%s)" if array else f"IN ({', '.join(['%s'] * len(chunk))})"
            yield chunk, where, [chunk] if array else chunk

    def live_entries(self, refs: Sequence[str]) -> list[tuple[str, str, str, str, bytes]]:
        """``(ref, scope, key_id, master_key_id, wrapped)`` of every live (active or
        retired) key of ``refs``, a chunk of references per query (see
        ``Keyring._live_keys``)."""
        if current_batch(self._local) is not None:
            # An open batch's new keys are not stored yet: read as list_entries reads.
            return [
                (ref, e.scope, e.key_id, e.master_key_id, e.wrapped)
                for ref in sorted(set(refs))
                for e in self.list_entries(ref)
                if e.state is not KeyState.SHREDDED
            ]
        found: list[tuple[str, str, str, str, bytes]] = []
        for _chunk, where, params in self._chunks(refs):
            rows = self._rows(
                "SELECT subject_ref, scope, key_id, master_key_id, wrapped "
                f"FROM {_KEYS} WHERE subject_ref {where} AND state <> %s",
                [*params, KeyState.SHREDDED.value],
            )
            found.extend((str(a), str(b), str(c), str(d), bytes(e)) for a, b, c, d, e in rows)
        return found

    # -- batches ---------------------------------------------------------------------

    @contextmanager
    def batch(self, subjects: Iterable[str]) -> Iterator[None]:
        """Read the keys of ``subjects`` at once; insert their new keys when done.

        The new keys are committed to the key store when the block ends, in one
        transaction: end the batch *before* committing data encrypted under them.
        """
        batch = KeyBatch()
        # Read before the entries: it dates the keys the keyring unwraps from them.
        batch.mark = self.shred_mark()
        self._prefetch(subjects, batch.entries, batch.tombstones)
        self._local.batch = batch
        try:
            yield
            self._flush(batch)
        finally:
            self._local.batch = None

    def _prefetch(
        self,
        subjects: Iterable[str],
        entries: dict[str, list[KeyEntry]],
        tombstones: set[tuple[str, str]],
    ) -> None:
        """Put in ``entries`` every entry of ``subjects`` (an empty list for one without)
        and in ``tombstones`` their tombstones, a chunk of subjects per query; inside a
        transaction of this alias, read in it."""
        for chunk, where, params in self._chunks(subjects):
            for subject in chunk:
                entries[subject] = []
            for row in self._rows(
                f"SELECT {_COLUMNS} FROM {_KEYS} WHERE subject_ref {where} ORDER BY id", params
            ):
                entries[row[0]].append(_entry(row))
            for subject, scope in self._rows(
                f"SELECT subject_ref, scope FROM {_TOMBSTONES} WHERE subject_ref {where}", params
            ):
                tombstones.add((str(subject), str(scope)))

    def _flush(self, batch: KeyBatch) -> None:
        from django.db import connections, transaction

        if not batch.pending:
            return
        pending = batch.pending
        # Multi-row INSERTs of a few hundred keys: one round trip each, on every backend.
        with transaction.atomic(using=self._alias), connections[self._alias].cursor() as cursor:
            self._refuse_shredded_since(cursor, batch, pending)
            written = epoch_guarded(*self._lock_epochs(cursor), pending, batch.rewrap)
            rows = [
                [e.subject, e.scope, e.key_id, e.state.value, e.master_key_id, e.wrapped]
                for e in written
            ]
            # In key-reference order (stable: a learner's keys keep theirs): references
            # are keyed hashes, so in the batch's order every row lands on a random page
            # of each index, and once the indexes outgrow the database's page cache most
            # inserts read a page back; sorted, neighbouring rows share pages. On SQLite
            # this took a 20,000-key batch's inserts from about 0.39 s to 0.08 s.
            rows.sort(key=itemgetter(0))
            if connections[self._alias].vendor == "postgresql":
                # One array parameter per column (see batch()).
                cursor.execute(
                    f"INSERT INTO {_KEYS} ({_COLUMNS}) SELECT * FROM unnest("
                    "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::bytea[])",
                    [list(column) for column in zip(*rows, strict=True)],
                )
            else:
                for start in range(0, len(rows), 200):
                    chunk = rows[start : start + 200]
                    marks = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
                    cursor.execute(
                        f"INSERT INTO {_KEYS} ({_COLUMNS}) VALUES {marks}",
                        [value for row in chunk for value in row],
                    )
        batch.flushed(pending, written)

    def _hold_mark(self, cursor: Any, *, exclusive: bool) -> None:
        """:meth:`_mark_locked` for the lock alone: PostgreSQL only (SQLite's writing
        statement takes the database's write lock)."""
        if self._vendor() == "postgresql":
            self._mark_locked(cursor, exclusive=exclusive)

    def _mark_locked(self, cursor: Any, *, exclusive: bool) -> str:
        """The shred mark read in ``cursor``'s transaction, first thing in it. On
        PostgreSQL its row is locked, shared by writers of new keys and exclusively by
        writers taking keys away or writing tombstones: a shred and an insert of a key
        of the same learner then follow one another, and the second sees the first
        (SQLite: the statement that writes takes the database's write lock)."""
        sql = f'SELECT value FROM {_META} WHERE "key" = %s'
        if self._vendor() == "postgresql":
            sql += " FOR UPDATE" if exclusive else " FOR SHARE"
        cursor.execute(sql, [_SHRED_MARK])
        row = cursor.fetchone()
        return "" if row is None else str(row[0])

    def _refuse_shredded_since(
        self, cursor: Any, batch: KeyBatch, pending: Sequence[KeyEntry]
    ) -> None:
        """``KeyShreddedError`` if a shred committed since ``batch``'s prefetch blocks a
        scope of ``pending`` not revived on purpose: an erasure that wrote its tombstone
        after the prefetch must not see a live key inserted beside it, which would revive
        the learner's scope. An unchanged mark means no tombstone since: nothing read."""
        if self._mark_locked(cursor, exclusive=False) == batch.mark:
            return
        asked = [e for e in pending if (e.subject, e.scope) not in batch.revived]
        entries: dict[str, list[KeyEntry]] = {}
        tombstones: set[tuple[str, str]] = set()
        self._prefetch({e.subject for e in asked}, entries, tombstones)
        for entry in asked:
            if scope_blocked(entries[entry.subject], tombstones, entry.subject, entry.scope):
                raise KeyShreddedError(
                    f"the keys of this subject's scope {entry.scope!r} were shredded "
                    "while its new key waited to be stored; nothing was stored"
                )

    # -- the KeyStore protocol ---------------------------------------------------------

    def get(self, subject: str, key_id: str) -> KeyEntry | None:
        """The entry of ``key_id`` for ``subject``, shredded or not; ``None`` if unknown."""
        batch = batch_for(self._local, subject)
        if batch is not None:
            return batch.get(subject, key_id)
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM {_KEYS} WHERE subject_ref = %s AND key_id = %s",
            [subject, key_id],
        )
        return _entry(rows[0]) if rows else None

    def list_entries(
        self, subject: str | None = None, scope: str | None = None
    ) -> Iterator[KeyEntry]:
        """Entries of ``subject`` (optionally of one ``scope``), or every entry if ``None``."""
        batch = batch_for(self._local, subject)
        if batch is not None and subject is not None:
            return iter(batch.select(subject, scope))
        where: list[str] = []
        params: list[str] = []
        if subject is not None:
            where.append("subject_ref = %s")
            params.append(subject)
        if scope is not None:
            where.append("scope = %s")
            params.append(scope)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM {_KEYS}{clause} ORDER BY subject_ref, scope, id", params
        )
        return iter([_entry(row) for row in rows])

    def add(
        self, entry: KeyEntry, *, revive: bool = False, rewrap: EpochRewrap | None = None
    ) -> KeyEntry:
        """Insert an ACTIVE key unless one exists; refuse a shredded scope unless revived.

        One transaction: the epoch row read locked (the key must be wrapped under the
        current epoch key; ``rewrap`` re-wraps it first if a compaction elsewhere moved
        the epoch, and the entry returned is the one stored), then one INSERT that checks
        the tombstones itself; the unique index on active keys turns a concurrent
        writer's key into an ``IntegrityError``, after which theirs is used.
        """
        batch = batch_for(self._local, entry.subject)
        if batch is not None:
            return batch.add(entry, revive=revive, rewrap=rewrap)
        from django.db import IntegrityError, connections, transaction

        connection = connections[self._alias]
        insert = f"INSERT INTO {_KEYS} ({_COLUMNS}) SELECT %s, %s, %s, %s, %s, %s WHERE 1 = 1"
        if not revive:
            insert += (
                f" AND NOT EXISTS (SELECT 1 FROM {_TOMBSTONES} "
                "WHERE subject_ref = %s AND scope IN (%s, %s))"
            )
        seen = self._epoch_seen
        try:
            # A transaction of its own, or a savepoint inside the caller's: a failed
            # INSERT must not abort it.
            with transaction.atomic(using=self._alias), connection.cursor() as cursor:
                if not revive:
                    # Before the INSERT reads the tombstones (see _mark_locked).
                    self._hold_mark(cursor, exclusive=False)
                inserted = 0
                if seen is not None:
                    # One statement instead of three: the key wrapped for the epochs last
                    # read, inserted only if the epoch row still says so, read in the
                    # INSERT itself (locked as _lock_epochs locks it: the statement takes
                    # SQLite's write lock; FOR SHARE on PostgreSQL, held to the commit).
                    # Anything else (a compaction since, a tombstone, a concurrent key)
                    # inserts nothing and takes the checked path below.
                    (fast,) = epoch_guarded(*_epochs_of(seen), [entry], rewrap)
                    lock = "" if connection.vendor == "sqlite" else " FOR SHARE"
                    cursor.execute(
                        f"{insert} AND coalesce((SELECT value FROM {_META} "
                        f'WHERE "key" = %s{lock}), %s) = %s',
                        [*self._insert_values(fast, revive), _EPOCH_ROW, "", seen],
                    )
                    inserted = cursor.rowcount
                    entry = fast if inserted == 1 else entry
                if inserted != 1:
                    (entry,) = epoch_guarded(*self._lock_epochs(cursor), [entry], rewrap)
                    cursor.execute(insert, self._insert_values(entry, revive))
                    inserted = cursor.rowcount
        except IntegrityError:
            inserted = 0
        if inserted == 1:
            return entry
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {_COLUMNS} FROM {_KEYS} "
                "WHERE subject_ref = %s AND scope = %s AND state = %s",
                [entry.subject, entry.scope, KeyState.ACTIVE.value],
            )
            row = cursor.fetchone()
            if row is not None:
                # A concurrent writer created the active key first: use theirs.
                return _entry(row)
            if revive or not self._blocked(cursor, entry.subject, entry.scope):
                # Tombstoned but revived since (a live key exists): insert without the check.
                return self.add(entry, revive=True, rewrap=rewrap)
        raise KeyShreddedError(f"the keys of this subject's scope {entry.scope!r} were shredded")

    @staticmethod
    def _insert_values(entry: KeyEntry, revive: bool) -> list[Any]:
        values: list[Any] = [
            entry.subject,
            entry.scope,
            entry.key_id,
            entry.state.value,
            entry.master_key_id,
            entry.wrapped,
        ]
        if not revive:
            values += [entry.subject, entry.scope, _ALL]
        return values

    def update(self, entry: KeyEntry, *, rewrap: EpochRewrap | None = None) -> bool:
        """Replace a live entry; a missing or SHREDDED entry is left alone (``False``).

        The entry must be wrapped under the current epoch key (``rewrap``: see :meth:`add`).
        """
        from django.db import connections, transaction

        with transaction.atomic(using=self._alias), connections[self._alias].cursor() as cursor:
            if entry.state is KeyState.SHREDDED:
                self._hold_mark(cursor, exclusive=True)
            (entry,) = epoch_guarded(*self._lock_epochs(cursor), [entry], rewrap)
            cursor.execute(
                f"UPDATE {_KEYS} SET scope = %s, state = %s, master_key_id = %s, wrapped = %s "
                "WHERE subject_ref = %s AND key_id = %s AND state <> %s",
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
            changed = bool(cursor.rowcount > 0)
            if changed and entry.state is KeyState.SHREDDED:
                self._new_mark(cursor)
        batch = batch_for(self._local, entry.subject)
        if changed and batch is not None:
            batch.updated(entry)
        return changed

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
        batch = current_batch(self._local)
        if batch is not None:
            # Simplest correct answer: the batch forgets what it knew of these subjects.
            batch.forget(subject for subject, _scope in wanted)
        count = 0
        with transaction.atomic(using=self._alias), connections[self._alias].cursor() as cursor:
            if wanted:
                self._hold_mark(cursor, exclusive=True)
            for subject, scope in wanted:
                sql = (
                    f"UPDATE {_KEYS} SET state = %s, master_key_id = '', wrapped = %s "
                    "WHERE subject_ref = %s AND state <> %s"
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
                        f"SELECT 1 FROM {_TOMBSTONES} WHERE subject_ref = %s AND scope = %s",
                        [subject, stone],
                    )
                    if cursor.fetchone() is None:
                        cursor.execute(
                            f"INSERT INTO {_TOMBSTONES} (subject_ref, scope) VALUES (%s, %s)",
                            [subject, stone],
                        )
            if wanted:
                self._new_mark(cursor)
        return count

    def _new_mark(self, cursor: Any) -> None:
        """Give the shred mark a new random value, inside the transaction that takes keys
        away. A store migrated before the mark existed gets its row now."""
        import secrets

        mark = secrets.token_hex(16)
        cursor.execute(f'UPDATE {_META} SET value = %s WHERE "key" = %s', [mark, _SHRED_MARK])
        if cursor.rowcount < 1:
            cursor.execute(
                f'INSERT INTO {_META} ("key", value) VALUES (%s, %s)', [_SHRED_MARK, mark]
            )

    def shred_mark(self) -> str:
        """The shred mark (see ``learnprivacy.crypto._keystore``): a random value replaced
        in every transaction that shreds or destroys keys here ("" before the first), as
        committed now. Random, not a count: a key database restored from a backup, or
        emptied, never brings back a mark a reader has already seen."""
        rows = self._rows(f'SELECT value FROM {_META} WHERE "key" = %s', [_SHRED_MARK])
        return str(rows[0][0]) if rows else ""

    def batch_mark(self) -> str | None:
        """Inside this thread's :meth:`batch`, the shred mark read before its prefetch;
        ``None`` outside one."""
        batch = current_batch(self._local)
        return None if batch is None else batch.mark

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

    def update_many(self, entries: Sequence[KeyEntry], *, rewrap: EpochRewrap | None = None) -> int:
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
        with transaction.atomic(using=self._alias), connections[self._alias].cursor() as cursor:
            entries = epoch_guarded(*self._lock_epochs(cursor), entries, rewrap)
            params = [
                [e.scope, e.state.value, e.master_key_id, e.wrapped, e.subject, e.key_id, shredded]
                for e in entries
            ]
            cursor.executemany(
                f"UPDATE {_KEYS} SET scope = %s, state = %s, master_key_id = %s, wrapped = %s "
                "WHERE subject_ref = %s AND key_id = %s AND state <> %s",
                params,
            )
            changed = cursor.rowcount
            if any(e.state is KeyState.SHREDDED for e in entries):
                self._new_mark(cursor)
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

    # -- epochs (learnprivacy.store._epochs.EpochKeys) -----------------------------------

    def _vendor(self) -> str:
        from django.db import connections

        return str(connections[self._alias].vendor)

    def _lock_epochs(self, cursor: Any, *, exclusive: bool = False) -> tuple[str, str]:
        """``(current, next)`` epoch ids, read locked until the transaction ends: shared
        by writers of wrapped keys, exclusive for compaction. SQLite has one writer at a
        time: the row is touched first, which takes the write lock before it is read."""
        query = f'SELECT value FROM {_META} WHERE "key" = %s'
        if self._vendor() == "sqlite":
            cursor.execute(f'UPDATE {_META} SET value = value WHERE "key" = %s', [_EPOCH_ROW])
        else:
            query += " FOR UPDATE" if exclusive else " FOR SHARE"
        cursor.execute(query, [_EPOCH_ROW])
        row = cursor.fetchone()
        # A compaction (exclusive) is about to change the row: nothing is remembered.
        self._epoch_seen = None if exclusive else ("" if row is None else str(row[0]))
        if row is None:
            if exclusive:
                # Created once, by the first compaction; no epoch before it, so writers
                # that found no row wrapped under the master key, which no compaction
                # destroys.
                cursor.execute(
                    f'INSERT INTO {_META} ("key", value) VALUES (%s, %s)', [_EPOCH_ROW, "||"]
                )
            return "", ""
        return _epochs_of(str(row[0]))

    def epochs(self) -> tuple[str, str]:
        """``(current, next)`` epoch key ids recorded here ("" for none)."""
        value = self.read_meta().get(_EPOCH_ROW)
        if value is None:
            return "", ""
        _, current, nxt, _ = value.split("|")
        return current, nxt

    @contextmanager
    def epoch_transaction(self) -> Iterator[tuple[Any, str, str]]:
        """A transaction holding the epoch row exclusively: ``(cursor, current, next)``.
        No wrapped key is written by anyone until it ends."""
        from django.db import connections, transaction

        with transaction.atomic(using=self._alias), connections[self._alias].cursor() as cursor:
            current, nxt = self._lock_epochs(cursor, exclusive=True)
            yield cursor, current, nxt

    def set_epochs(self, cursor: Any, current: str, nxt: str) -> None:
        """Record ``(current, next)`` inside :meth:`epoch_transaction`."""
        cursor.execute(
            f'UPDATE {_META} SET value = %s WHERE "key" = %s', [f"|{current}|{nxt}|", _EPOCH_ROW]
        )

    def meta_in(self, cursor: Any) -> dict[str, str]:
        """The key store's state entries, inside a transaction."""
        cursor.execute(f'SELECT "key", value FROM {_META}')
        return {str(k): str(v) for k, v in cursor.fetchall()}

    def put_meta(self, cursor: Any, values: dict[str, str]) -> None:
        """Set state entries inside :meth:`epoch_transaction`."""
        for key, value in values.items():
            cursor.execute(f'DELETE FROM {_META} WHERE "key" = %s', [key])
            cursor.execute(f'INSERT INTO {_META} ("key", value) VALUES (%s, %s)', [key, value])

    def erased_in(self, cursor: Any) -> int:
        """How many subjects have a shredded key, inside a transaction."""
        cursor.execute(
            f"SELECT count(DISTINCT subject_ref) FROM {_KEYS} WHERE state = %s",
            [KeyState.SHREDDED.value],
        )
        return int(cursor.fetchone()[0] or 0)

    def erased_subjects(self) -> int:
        """How many subjects have a shredded key."""
        from django.db import connections

        with connections[self._alias].cursor() as cursor:
            return self.erased_in(cursor)

    def count_not_under(self, target: str) -> int:
        """How many live keys are not wrapped under ``target``."""
        rows = self._rows(
            f"SELECT count(*) FROM {_KEYS} WHERE state <> %s AND master_key_id <> %s",
            [KeyState.SHREDDED.value, target],
        )
        return int(rows[0][0] or 0)

    def rewrap_all_in(
        self,
        cursor: Any,
        target: str,
        rewrap: Callable[[Sequence[KeyEntry]], list[KeyEntry]],
        *,
        page: int = 5_000,
    ) -> int:
        """Inside :meth:`epoch_transaction`: re-wrap under ``target`` every live entry not
        under it yet (``rewrap`` does the cryptography); how many."""
        count = 0
        after = 0
        shredded = KeyState.SHREDDED.value
        while True:
            cursor.execute(
                f"SELECT id, {_COLUMNS} FROM {_KEYS} WHERE id > %s AND state <> %s "
                "AND master_key_id <> %s ORDER BY id LIMIT %s",
                [after, shredded, target, page],
            )
            rows = cursor.fetchall()
            if not rows:
                return count
            fresh = rewrap([_entry(row[1:]) for row in rows])
            cursor.executemany(
                f"UPDATE {_KEYS} SET master_key_id = %s, wrapped = %s "
                "WHERE subject_ref = %s AND key_id = %s AND state <> %s",
                [[e.master_key_id, e.wrapped, e.subject, e.key_id, shredded] for e in fresh],
            )
            count += len(fresh)
            after = int(rows[-1][0])

    def rewrap_live(
        self,
        target: str,
        rewrap: Callable[[str, str, str, str, bytes], bytes],
        *,
        batch_size: int = BATCH_SIZE,
        progress: Any = None,
    ) -> int:
        """Re-wrap under epoch ``target`` every live key not under it yet, ``batch_size``
        per transaction (compaction's bulk pass); how many. Each update applies only if
        the row is still wrapped as it was read, and each batch checks under the epoch
        row that ``target`` is still the current or next epoch."""
        from django.db import connections, transaction

        shredded = KeyState.SHREDDED.value
        count = 0
        after = 0
        while True:
            rows = self._rows(
                f"SELECT id, subject_ref, scope, key_id, master_key_id, wrapped FROM {_KEYS} "
                "WHERE id > %s AND state <> %s AND master_key_id <> %s ORDER BY id LIMIT %s",
                [after, shredded, target, batch_size],
            )
            if not rows:
                return count
            updates = [
                [target, rewrap(ref, scope, key_id, wrapping, bytes(wrapped)), row_id, wrapping]
                for row_id, ref, scope, key_id, wrapping, wrapped in rows
            ]
            with (
                transaction.atomic(using=self._alias),
                connections[self._alias].cursor() as cursor,
            ):
                current, nxt = self._lock_epochs(cursor)
                if current and target not in (current, nxt):
                    raise KeyEpochError(
                        "another compaction moved the key store to another epoch "
                        "meanwhile: run the compaction again"
                    )
                cursor.executemany(
                    f"UPDATE {_KEYS} SET master_key_id = %s, wrapped = %s "
                    f"WHERE id = %s AND master_key_id = %s AND state <> '{shredded}'",
                    updates,
                )
            count += len(updates)
            if progress is not None:
                progress.advance(len(rows))
            after = int(rows[-1][0])

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

        batch = batch_for(self._local, subject)
        if batch is not None:
            return batch.is_shredded(subject, scope)
        with connections[self._alias].cursor() as cursor:
            return self._blocked(cursor, subject, scope)

    @staticmethod
    def _blocked(cursor: Any, subject: str, scope: str) -> bool:
        cursor.execute(
            f"SELECT 1 FROM {_TOMBSTONES} WHERE subject_ref = %s AND scope IN (%s, %s)",
            [subject, scope, _ALL],
        )
        if cursor.fetchone() is None:
            return False
        cursor.execute(
            f"SELECT 1 FROM {_KEYS} WHERE subject_ref = %s AND scope = %s AND state <> %s",
            [subject, scope, KeyState.SHREDDED.value],
        )
        return cursor.fetchone() is None


# -- key stores written before key references --------------------------------------------


def unconverted_rows(alias: str) -> int:
    """How many key and tombstone rows still name their learner in clear (migration
    ``0004_key_refs_convert`` has not finished); 0 once the clear column is gone."""
    from django.db import connections

    connection = connections[alias]
    with connection.cursor() as cursor:
        columns = {c.name for c in connection.introspection.get_table_description(cursor, _KEYS)}
        if "subject" not in columns:
            return 0
        total = 0
        for table in (_KEYS, _TOMBSTONES):
            cursor.execute(f"SELECT count(*) FROM {table} WHERE subject_ref IS NULL")
            total += int(cursor.fetchone()[0])
    return total


def _conversion_keyring(alias: str) -> Any:
    """A keyring that computes key references and re-wraps keys for them, its system
    keys (the reference key among them) read from the key store at ``alias``.

    The system keys keep their reserved name; a key store holding none yet (keys made
    before the first key reference) gets them written here, so the references computed
    now are the ones the application computes later.
    """
    from django.db import connections, transaction

    from learnprivacy.crypto import Keyring
    from learnprivacy.crypto._keystore import InMemoryKeyStore
    from learnprivacy.crypto._validate import SYSTEM_SUBJECT
    from learnprivacy.django._settings import _master_key, previous_master_keys, setting

    class _SystemKeys(InMemoryKeyStore):
        pseudonymous_subjects = True

    system = _SystemKeys()
    known: set[str] = set()
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT subject_ref, scope, key_id, state, master_key_id, wrapped "
            f"FROM {_KEYS} WHERE subject = %s OR subject_ref = %s ORDER BY id",
            [SYSTEM_SUBJECT, SYSTEM_SUBJECT],
        )
        for row in cursor.fetchall():
            entry = _entry([SYSTEM_SUBJECT, *row[1:]])
            system.add(entry, revive=True)
            known.add(entry.key_id)
    keyring = Keyring(
        _master_key(setting("MASTER_KEY_ENV")),
        store=system,
        previous_master_keys=previous_master_keys(),
    )
    keyring.verify()
    keyring.key_ref("x")  # loads (or creates) the reference key
    made = [e for e in system.list_entries(SYSTEM_SUBJECT) if e.key_id not in known]
    if made:
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            for e in made:
                cursor.execute(
                    f"INSERT INTO {_KEYS} (subject_ref, scope, key_id, state, master_key_id, "
                    "wrapped) VALUES (%s, %s, %s, %s, %s, %s)",
                    [e.subject, e.scope, e.key_id, e.state.value, e.master_key_id, e.wrapped],
                )
    return keyring


def convert_clear_subjects(
    alias: str,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Give every row of the key store at ``alias`` that names its learner in clear the
    learner's key reference instead; returns how many rows were converted.

    A data key's wrapping binds the name its row carries, so each key is re-wrapped for
    the reference (under the same master key). ``batch_size`` rows per transaction: a
    conversion killed at any point leaves each row converted or intact, and calling
    again carries on. The clear name is emptied in the same update; on PostgreSQL the
    tables are then rewritten (``VACUUM FULL``) so that no dead row version keeps it, on
    SQLite the write-ahead log is truncated (``secure_delete`` zeroes freed space).
    ``progress(done, total)`` is called after each committed batch.
    """
    from django.db import connections, transaction

    from learnprivacy.crypto._validate import SYSTEM_SUBJECT

    total = unconverted_rows(alias)
    if not total:
        return 0
    keyring = _conversion_keyring(alias)
    connection = connections[alias]
    done = 0
    for table, keys in ((_KEYS, True), (_TOMBSTONES, False)):
        columns = f"id, subject, {_COLUMNS[len('subject_ref, ') :]}" if keys else "id, subject"
        while True:
            with transaction.atomic(using=alias), connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT {columns} FROM {table} WHERE subject_ref IS NULL ORDER BY id LIMIT %s",
                    [batch_size],
                )
                rows = cursor.fetchall()
                if not rows:
                    break
                for row in rows:
                    subject = str(row[1])
                    ref = subject if subject == SYSTEM_SUBJECT else keyring.key_ref(subject)
                    if not keys:
                        cursor.execute(
                            f"UPDATE {table} SET subject_ref = %s, subject = NULL WHERE id = %s",
                            [ref, row[0]],
                        )
                        continue
                    entry = _entry(row[1:])
                    if subject != SYSTEM_SUBJECT:
                        entry = keyring.rewrap_entry(entry, subject=ref)
                    cursor.execute(
                        f"UPDATE {table} SET subject_ref = %s, subject = NULL, "
                        "master_key_id = %s, wrapped = %s WHERE id = %s",
                        [ref, entry.master_key_id, entry.wrapped, row[0]],
                    )
            done += len(rows)
            if progress is not None:
                progress(done, total)
    scrub_tables(alias, (_KEYS, _TOMBSTONES))
    return done


def _wait_for_quiet(cursor: Any, wait: float) -> None:
    """Wait up to ``wait`` seconds until no other backend of this database holds a
    snapshot or a transaction (a killed client's backend not yet ended, an automatic
    ANALYZE): ``VACUUM FULL`` keeps every row version such a snapshot may still see."""
    import time

    deadline = time.monotonic() + wait
    while True:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() "
            "AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL)"
        )
        if not cursor.fetchone()[0] or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def _epochs_of(value: str) -> tuple[str, str]:
    """``(current, next)`` from the epoch row's value (``""``: no row, no epoch)."""
    if not value:
        return "", ""
    _, current, nxt, _ = value.split("|")
    return current, nxt


def scrub_tables(alias: str, tables: Sequence[str], *, wait: float = 60.0) -> None:
    """Leave no old row version of ``tables`` in the database files at ``alias``.

    After values were overwritten or emptied: PostgreSQL rewrites the tables (``VACUUM
    FULL``: dead tuples keep old values until then), replaces their statistics and
    rewrites ``pg_statistic`` (histogram bounds and most common values are old values
    too; a role that neither owns the database nor is superuser gets a warning there,
    not an error) and checkpoints; SQLite truncates
    its write-ahead log (``secure_delete`` has zeroed the freed space). Outside a
    transaction only (``VACUUM`` cannot run in one).

    ``VACUUM FULL`` copies the old row versions a snapshot still open may see: on
    PostgreSQL each table waits first (up to ``wait`` seconds) until no other backend of
    the database holds one, such as the backend of a conversion killed a moment ago
    (the server ends it once it notices its client is gone) or an automatic ANALYZE.
    """
    from django.db import connections

    connection = connections[alias]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in tables:
                _wait_for_quiet(cursor, wait)
                # ANALYZE too: the planner's statistics of the old rows (most common
                # values, histogram bounds) are old values, kept in pg_statistic.
                cursor.execute(f"VACUUM (FULL, ANALYZE) {connection.ops.quote_name(table)}")
            # ...and the replaced statistics rows are dead versions in pg_statistic.
            _wait_for_quiet(cursor, wait)
            cursor.execute("VACUUM FULL pg_statistic")
            cursor.execute("CHECKPOINT")
        elif connection.vendor == "sqlite":
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")

"""The crypto ``KeyStore`` protocol over the key store's own database alias.

Each method is one transaction on ``LEARNPRIVACY["KEYS"]``, in plain SQL through
Django's connection (the keyring calls it on every first use of a learner's key, so the
ORM's per-query cost would show). The tables are ``learnprivacy.django.models.KeyEntry``
and ``KeyTombstone``, created by ``manage.py migrate --database <KEYS alias>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from learnprivacy.crypto import KeyEntry, KeyState
from learnprivacy.errors import ConfigurationError, KeyShreddedError

__all__ = ["DjangoKeyStore"]

_ALL = "*"
_COLUMNS = "subject, scope, key_id, state, master_key_id, wrapped"
_KEYS = "lpdj_keys"
_TOMBSTONES = "lpdj_key_tombstones"


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


class DjangoKeyStore:
    """A :class:`learnprivacy.crypto.KeyStore` in the database alias ``alias``."""

    __slots__ = ("_alias",)

    def __init__(self, alias: str) -> None:
        from django.conf import settings

        if alias not in settings.DATABASES:
            raise ConfigurationError(
                f'LEARNPRIVACY["KEYS"] names {alias!r}, which is not in settings.DATABASES'
            )
        self._alias = alias

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

    def get(self, subject: str, key_id: str) -> KeyEntry | None:
        """The entry of ``key_id`` for ``subject``, shredded or not; ``None`` if unknown."""
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM {_KEYS} WHERE subject = %s AND key_id = %s",
            [subject, key_id],
        )
        return _entry(rows[0]) if rows else None

    def list_entries(
        self, subject: str | None = None, scope: str | None = None
    ) -> Iterator[KeyEntry]:
        """Entries of ``subject`` (optionally of one ``scope``), or every entry if ``None``."""
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
        """Insert an ACTIVE key unless one exists; refuse a shredded scope unless revived."""
        from django.db import IntegrityError, connections, transaction

        with transaction.atomic(using=self._alias), connections[self._alias].cursor() as cursor:
            active = (
                f"SELECT {_COLUMNS} FROM {_KEYS} WHERE subject = %s AND scope = %s AND state = %s"
            )
            cursor.execute(active, [entry.subject, entry.scope, KeyState.ACTIVE.value])
            row = cursor.fetchone()
            if row is not None:
                return _entry(row)
            if not revive and self._blocked(cursor, entry.subject, entry.scope):
                raise KeyShreddedError(
                    f"the keys of this subject's scope {entry.scope!r} were shredded"
                )
            try:
                with transaction.atomic(using=self._alias):
                    cursor.execute(
                        f"INSERT INTO {_KEYS} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",
                        [
                            entry.subject,
                            entry.scope,
                            entry.key_id,
                            entry.state.value,
                            entry.master_key_id,
                            entry.wrapped,
                        ],
                    )
            except IntegrityError:
                # A concurrent writer created the active key first: use theirs.
                cursor.execute(active, [entry.subject, entry.scope, KeyState.ACTIVE.value])
                row = cursor.fetchone()
                if row is None:
                    raise
                return _entry(row)
            return entry

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

    def is_shredded(self, subject: str, scope: str) -> bool:
        """True when ``(subject, scope)`` is tombstoned and none of its keys is alive."""
        from django.db import connections

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

"""What the store's operations need of a store: its private core, as a protocol.

The operation modules (``_reads``, ``_writes``, ``_sweep``, ``_erasure``, ``_actions``,
``_selection``) are written against :class:`StoreCore`, not against the
:class:`~learnprivacy.store.Store` facade that calls them, so ``store/`` has no import
cycle: the facade imports the operations, the operations import this protocol only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from learnprivacy.crypto import Keyring
    from learnprivacy.records import Granularity, Record
    from learnprivacy.retention import Hold, Override, Schedule
    from learnprivacy.store._audit import AuditLog
    from learnprivacy.store._codec import Codec
    from learnprivacy.store._engine import Database
    from learnprivacy.store._keydb import KeyDatabase
    from learnprivacy.store._keystore import SqlKeyStore
    from learnprivacy.store._schema import RecordTable

__all__ = ["StoreCore"]

R = TypeVar("R", bound="Record")


class StoreCore(Protocol):
    """The database, keys, tables, codecs, clock and audit log of one store."""

    audit: AuditLog
    batch_size: int
    anonymise_dates_to: Granularity

    @property
    def keyring(self) -> Keyring: ...

    _db: Database
    _keys: SqlKeyStore
    _key_db: KeyDatabase

    def now(self, now: dt.datetime | None = None) -> dt.datetime: ...

    def _table(self, record_type: type[Any] | str) -> RecordTable: ...

    def _record_tables(self) -> list[RecordTable]: ...

    def _codec(self, cls: type[Any]) -> Codec: ...

    def _writing(
        self, *, relaxed: bool = False, refresh_statistics: bool = True, checkpoint: bool = True
    ) -> AbstractContextManager[Connection]: ...

    def _reading(self) -> AbstractContextManager[Connection]: ...

    def get(
        self, record_type: type[R], record_id: str, *, include_restricted: bool = False
    ) -> R | None: ...

    def iter_records_of(
        self,
        learner_id: str,
        *,
        include_restricted: bool = False,
        record_types: Iterable[type[Any] | str] | None = None,
    ) -> Iterator[Record]: ...

    def erase_records(
        self,
        records: Iterable[Record],
        *,
        now: dt.datetime | None = None,
        reason: str = "erasure",
        schedule: Schedule | None = None,
        holds: Sequence[Hold] = (),
        override: Override | None = None,
    ) -> int: ...

    def anonymise_records(
        self,
        records: Iterable[Record],
        *,
        now: dt.datetime | None = None,
        reason: str = "anonymisation",
        schedule: Schedule | None = None,
        holds: Sequence[Hold] = (),
        override: Override | None = None,
    ) -> int: ...

    def restrict(
        self,
        record_type: type[Any] | str | None = None,
        record_id: str | None = None,
        *,
        learner_id: str | None = None,
        reason: str,
        now: dt.datetime | None = None,
    ) -> int: ...

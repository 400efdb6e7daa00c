"""The Store: records in SQL, personal fields encrypted, every change audited."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine

from learnprivacy._arguments import checked_arguments
from learnprivacy._lazy import LazyModule
from learnprivacy._progress import ProgressReporter
from learnprivacy._validators import require_aware
from learnprivacy._vocabulary import BATCH_SIZE
from learnprivacy.crypto import FieldCipher, Keyring
from learnprivacy.errors import (
    ArgumentError,
    ConfigurationError,
    RestrictedRecordError,
    ValidationError,
)
from learnprivacy.records import Granularity, Record
from learnprivacy.records._base import record_types
from learnprivacy.store import _reads, _writes
from learnprivacy.store import _statistics as statistics
from learnprivacy.store._audit import AuditLog
from learnprivacy.store._codec import Codec
from learnprivacy.store._engine import Database
from learnprivacy.store._epochs import (
    CompactionReport,
    Vault,
    as_vault,
    compact,
    compaction_details,
    epoch_status,
    open_epochs,
)
from learnprivacy.store._keydb import KeyDatabase, default_keys_url
from learnprivacy.store._keystore import SqlKeyStore
from learnprivacy.store._open import (
    audit_keys,
    bind_keyring,
    check_key_database,
    ensure_table,
    migrate,
    move_legacy_keys,
    read_meta,
)
from learnprivacy.store._parts import SweepPart, sweep_parts
from learnprivacy.store._reports import ErasureReport, ReplayReport, SweepReport
from learnprivacy.store._schema import BUILTIN_TYPES, RecordTable

if TYPE_CHECKING:
    from learnprivacy import retention
else:
    # Annotations only: the retention engine loads with the first sweep or erasure, or
    # when typing.get_type_hints evaluates these annotations.
    retention = LazyModule("learnprivacy.retention")

__all__ = ["Store"]

R = TypeVar("R", bound=Record)

# ``BATCH_SIZE`` (10,000) is rows per write transaction of ``add_all`` and of a sweep, and
# per page of streamed reads and copies (a sweep at 10,000 rows is 2.7x the hand-written
# SQL floor, against 4.1x at 1,000: benchmarks/bench_store.py).


def _system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _open_keys(url: str, keys: str | Engine | KeyDatabase | None) -> tuple[KeyDatabase, bool]:
    """The key database of the store at ``url`` and whether the store opened it."""
    if isinstance(keys, KeyDatabase):
        return keys, False
    if keys is None:
        keys = default_keys_url(url)
    elif isinstance(keys, str) and keys == url and not keys.rstrip("/").endswith(":"):
        raise ConfigurationError(
            "keys= names the records database itself: the data keys need a database of their own"
        )
    return KeyDatabase(keys), True


class Store:
    """Persistence of learnprivacy records on SQLite or PostgreSQL.

    >>> store = Store("sqlite:///lms.db", keyring=keyring)      # doctest: +SKIP
    >>> store.add(learner); store.get(Learner, "L1")             # doctest: +SKIP

    One table per record type; personal fields are stored only as
    :class:`~learnprivacy.crypto.FieldCipher` tokens bound to ``Type/id/field`` and to the
    learner, under the key scope of the record class. The schema is created (and
    migrated) on first use; a store opened with another master key than the one its keys
    were wrapped with raises :class:`~learnprivacy.errors.WrongMasterKeyError` at once.

    **Keys apart from data.** The wrapped per-learner data keys live in a key database of
    their own (``keys``: a URL, an Engine or a :class:`~learnprivacy.keys.KeyDatabase`),
    never in the records database: a copy of the records database, whatever its age, plus
    the master key reads nothing of a learner erased since. A SQLite store defaults to the
    sibling file (``lms.db`` -> ``lms.keys.db``); a PostgreSQL store must name one
    (``ConfigurationError`` otherwise), typically another database. Back the key database
    up on its own schedule (docs/security.md).

    ``actor`` names who the audit log records as acting (a service or role, not a person's
    name). ``clock`` is the one clock of the store: every time-based method (adding,
    updating, restricting, sweeping, erasing, and ``export_subject`` of this store) reads
    it when ``now=`` is omitted; it defaults to the system clock, and tests pass their own.
    ``batch_size`` is the one batch size (writes, sweeps, streamed reads, copies).

    Reading restricted records, one rule: :meth:`get` returns ``None`` only when the
    record is absent and raises ``RestrictedRecordError`` for a restricted one unless
    ``include_restricted=True``; reads of many records leave restricted ones out unless
    ``include_restricted=True``.
    """

    @checked_arguments
    def __init__(
        self,
        url: str,
        *,
        keyring: Keyring,
        keys: str | Engine | KeyDatabase | None = None,
        vault: Vault | str | os.PathLike[str] | None = None,
        actor: str = "learnprivacy",
        clock: Callable[[], dt.datetime] | None = None,
        batch_size: int = BATCH_SIZE,
        anonymise_dates_to: Granularity = Granularity.MONTH,
    ) -> None:
        """Open (and if needed create or migrate) the store at ``url``."""
        if not isinstance(anonymise_dates_to, Granularity):
            raise ValidationError(
                "anonymise_dates_to must be a Granularity", field="anonymise_dates_to"
            )
        #: How far anonymisation generalises dates that are quasi-identifiers.
        self.anonymise_dates_to = anonymise_dates_to
        if not isinstance(actor, str) or not actor.strip():
            raise ValidationError("actor must be non-empty text", field="actor")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError("batch_size must be a positive int", field="batch_size")
        if keys is None and isinstance(url, str):
            default_keys_url(url)  # a missing keys= is named before any connection is tried
        self._db = Database(url)
        try:
            self._key_db, self._owns_keys = _open_keys(url, keys)
        except BaseException:
            self._db.dispose()
            raise
        self._keys = SqlKeyStore(self._key_db, self._db)
        self._clock = clock or _system_clock
        self.batch_size = batch_size
        self._table_cache: dict[type[Any], RecordTable] = {}
        self._codecs: dict[type[Any], Codec] = {}
        try:
            with self._db.write() as connection:
                dropped_statistics = migrate(self._db, connection)
                meta = read_meta(connection)
                check_key_database(connection, meta, self._key_db)
            if dropped_statistics:
                statistics.rewrite_catalog(self._db)
            if any(key.startswith(statistics.MARK) for key in meta):
                # An erasure committed, its statistics not refreshed yet.
                statistics.refresh_if_marked(self._db)
            self._keyring = bind_keyring(keyring, self._keys)
            # The epoch keys the data keys are wrapped under (none before a compaction).
            self._vault = as_vault(vault, self._key_db)
            open_epochs(self._keyring, self._key_db, self._vault)
            # A store from before the key database: its keys move out, then verify.
            move_legacy_keys(self._db, self._keyring)
            # The master-key check: fails here, not on the first read.
            self._keyring.verify()
            # Shreds an interrupted erasure committed but did not apply yet.
            self._keys.apply_outbox()
            # A sweep killed before the checkpoint that ends it left the file with images
            # of the rows its pages erased: the log is folded into it now (without waiting
            # for another process's readers).
            self._db.checkpoint(wait=False)
            self._cipher = FieldCipher(self._keyring)
            self._index = self._keyring.blind_index()
            if self._keyring is not keyring:
                # The keyring object the caller holds derives the same pseudonyms and
                # blind indexes as this store's (xAPI actors pushed live with it match
                # those of exports and erasure notifications).
                keyring.share_index_key(self._keyring)
            pseudonym_key, seal_key = audit_keys(self._keyring, meta["store_id"])
            from learnprivacy.crypto import Pseudonymiser

            self.audit = AuditLog(
                self._db,
                pseudonymiser=Pseudonymiser(pseudonym_key, domain="learnprivacy-audit"),
                seal_key=seal_key,
                actor=actor,
                anchor=(self._key_db, f"audit:{meta['store_id']}"),
                lanes=True,
            )
            self.audit.open_head()
            self.audit.anchor_if_new()
        except BaseException:
            self._db.dispose()
            if self._owns_keys:
                self._key_db.close()
            raise
        self.store_id = meta["store_id"]
        for cls in record_types():
            self._table(cls)

    def __repr__(self) -> str:
        return f"Store({self._db.engine.dialect.name}, store_id={self.store_id!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store's database connections (and its key database's, if it opened it)."""
        self._db.dispose()
        if self._owns_keys:
            self._key_db.close()

    # -- what other modules of the store use --------------------------------------------

    @property
    def keyring(self) -> Keyring:
        """The keyring bound to this store's key table."""
        return self._keyring

    @property
    def cipher(self) -> FieldCipher:
        """The cipher of the store's personal fields."""
        return self._cipher

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine of the store's database, for components that keep their
        own tables next to the store's (``requests.SQLBackend(store)``)."""
        return self._db.engine

    @property
    def vault(self) -> Vault:
        """The vault holding the epoch key the data keys are wrapped under."""
        return self._vault

    @checked_arguments
    def compact_keys(
        self,
        *,
        now: dt.datetime | None = None,
        progress: ProgressReporter | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> CompactionReport:
        """Wrap every live data key under a new epoch key and destroy the previous one.

        Afterwards a copy of the key database taken before (file copy, ``pg_dump``, dead
        tuples, WAL), even with the master key and the current vault, opens no key of a
        learner erased before this call; every live learner stays readable. The first
        compaction of a store whose keys are wrapped directly under the master key moves
        it to epochs (copies taken before that one stay open to the master key: see
        docs/security.md). Interrupted at any point, nothing is lost and calling it again
        finishes. ``progress`` is told the number of keys, then each key examined. The
        audit log records the counts. Other processes holding this store open go on
        writing during and after it: each key they write is checked, in its own
        transaction, to be wrapped under the current epoch, and re-wrapped first if not.
        """
        at = self.now(now)
        report = compact(
            self._keyring,
            self._key_db,
            self._vault,
            now=at,
            progress=progress,
            batch_size=batch_size,
        )
        self.audit.record(
            "compact_keys",
            "done",
            now=at,
            details=compaction_details(report),
        )
        return report

    def key_epoch_status(self) -> dict[str, Any]:
        """Epoch number, last compaction (ISO time or ``None``), subjects erased since
        (``erased_awaiting_compaction``), whether a compaction is under way, the vault."""
        return epoch_status(self._key_db, self._vault)

    def now(self, now: dt.datetime | None = None) -> dt.datetime:
        """``now`` if given (timezone-aware, else ``ValidationError``), else the clock."""
        return require_aware(self._clock() if now is None else now, "now")

    def _table(self, record_type: type[Any] | str) -> RecordTable:
        """The table layout of a record class (or class name), created when missing."""
        if isinstance(record_type, str):
            from learnprivacy.records._base import record_type as named

            record_type = named(record_type)
        if not isinstance(record_type, type):
            raise ValidationError(
                f"a record type is a record class, got {type(record_type).__name__}",
                field="record_type",
            )
        rt = self._table_cache.get(record_type)
        if rt is None:
            rt = RecordTable(record_type)
            if record_type.__name__ not in BUILTIN_TYPES:
                with self._db.write() as connection:
                    dropped_statistics = ensure_table(connection, rt)
                if dropped_statistics:
                    statistics.rewrite_catalog(self._db)
            self._table_cache[record_type] = rt
        return rt

    def _ensure_tables(self) -> None:
        """Give every registered record type its table (created when missing)."""
        cache = self._table_cache
        for cls in record_types():
            if cls not in cache:
                self._table(cls)

    def _record_tables(self) -> list[RecordTable]:
        """Every record table, the learner's own first."""
        self._ensure_tables()
        return sorted(self._table_cache.values(), key=lambda rt: rt.has_learner)

    def _codec(self, cls: type[Any]) -> Codec:
        """The codec of a record class."""
        codec = self._codecs.get(cls)
        if codec is None:
            codec = self._codecs[cls] = Codec(self._table(cls), self._cipher, self._index)
        return codec

    @contextmanager
    def _writing(
        self,
        *,
        relaxed: bool = False,
        refresh_statistics: bool = True,
        checkpoint: bool = True,
    ) -> Iterator[Connection]:
        """A write transaction with the key store bound to it (``relaxed``: see
        :meth:`Database.write`).

        On PostgreSQL, tables whose statistics sample a learner the transaction erased or
        anonymised are marked before the commit and refreshed after it; with
        ``refresh_statistics=False`` the caller refreshes them later (a sweep, once).
        ``checkpoint=False``: once the keys the transaction shredded are destroyed (and
        the key database checkpointed), the records database is not checkpointed; the
        caller does it later (a sweep, once at its end).

        On failure the keyring's cache is cleared: it may hold keys created in the
        transaction that was just rolled back.
        """
        # A record type registered after the store opened gets its table here, in a
        # transaction of its own: made inside the write below, on SQLite it would wait
        # for the write lock this very transaction holds.
        self._ensure_tables()
        try:
            with self._db.write(relaxed=relaxed) as connection, self._keys.bound(connection):
                yield connection
                sampled = statistics.unsample_if_removed(connection)
        except BaseException:
            self._keyring.clear_cache()
            self._keys.discard_sent()
            self.audit.discard_anchor()
            raise
        # Committed: destroy the keys the transaction's erasures sent to the outbox, and
        # anchor the audit head in the key database.
        self._keys.apply_sent(checkpoint=checkpoint)
        self.audit.publish_anchor()
        if sampled and refresh_statistics:
            statistics.refresh_if_marked(self._db)

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A read transaction with the key store bound to it."""
        with self._db.read() as connection, self._keys.bound(connection):
            yield connection

    def backup(self, path: str) -> None:
        """Write a consistent copy of a SQLite store's records to ``path`` (SQLite's backup
        API). The keys are not in it: they have their own backup
        (``learnprivacy.keys.KeyDatabase(KEYS_URL).backup(path)``, ``learnprivacy keys backup``).

        Copying the file of an open store can miss recent commits, which live in its
        write-ahead log until a checkpoint. PostgreSQL stores raise ``ConfigurationError``;
        a ``path`` that is not a path (``None``...) raises ``ArgumentError``.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise ArgumentError(
                f"backup takes a path (str or os.PathLike), got {type(path).__name__}"
            )
        self._db.backup(os.fspath(path))

    # -- writing records ----------------------------------------------------------------

    def add(self, record: Record, *, now: dt.datetime | None = None) -> None:
        """Store a new record. Duplicate id or unknown learner: ``IntegrityError``."""
        _writes.add_all(self, [record], now=self.now(now))

    def add_all(self, records: Iterable[Record], *, now: dt.datetime | None = None) -> int:
        """Store many records in one transaction (all or nothing); return how many."""
        return _writes.add_all(self, records, now=self.now(now))

    def update(self, record: Record, *, now: dt.datetime | None = None) -> None:
        """Rectify a stored record: every field replaced, personal ones re-encrypted.

        ``NotFoundError`` if absent, ``RestrictedRecordError`` if restricted.
        """
        _writes.rectify(self, record, now=self.now(now))

    @checked_arguments
    def restrict(
        self,
        record_type: type[Any] | str | None = None,
        record_id: str | None = None,
        *,
        learner_id: str | None = None,
        reason: str,
        now: dt.datetime | None = None,
    ) -> int:
        """Restrict processing (GDPR Art. 18) of one record or of a learner's records.

        Restricted rows are left out of normal reads (pass ``include_restricted=True``)
        and refuse updates. ``reason`` is kept with the rows and in the audit log: name a
        case or a rule, never a person. Returns how many rows became restricted.
        """
        return _writes.set_restriction(
            self, record_type, record_id, learner_id, reason=reason, now=self.now(now)
        )

    @checked_arguments
    def lift_restriction(
        self,
        record_type: type[Any] | str | None = None,
        record_id: str | None = None,
        *,
        learner_id: str | None = None,
        now: dt.datetime | None = None,
    ) -> int:
        """Lift a restriction set by :meth:`restrict`; returns how many rows changed."""
        return _writes.set_restriction(
            self, record_type, record_id, learner_id, reason=None, now=self.now(now)
        )

    # -- reading records ----------------------------------------------------------------

    def get(
        self, record_type: type[R], record_id: str, *, include_restricted: bool = False
    ) -> R | None:
        """The record of that type and id, decrypted; ``None`` only when there is none.

        A restricted record (GDPR Art. 18) raises ``RestrictedRecordError`` unless
        ``include_restricted=True``: the caller learns that it exists and must not be
        processed, instead of mistaking it for an absent one. Reads of many records
        (:meth:`records_of`, :meth:`query`, :meth:`find`...) leave restricted ones out
        unless ``include_restricted=True``. A ``record_id`` that is not a ``str`` raises
        ``ValidationError`` (``None`` would otherwise read as "no such record").
        """
        if type(record_id) is not str:
            raise ValidationError(
                f"record_id must be str, got {type(record_id).__name__}", field="record_id"
            )
        found = _reads.select_records(
            self, record_type, {"id": record_id}, limit=1, include_restricted=True
        )
        if not found:
            return None
        if not include_restricted and not _reads.select_records(
            self, record_type, {"id": record_id}, limit=1, include_restricted=False
        ):
            raise RestrictedRecordError(
                f"the {record_type.__name__} record is restricted (GDPR Art. 18): "
                "pass include_restricted=True to read it"
            )
        return found[0]

    def records_of(self, learner_id: str, *, include_restricted: bool = False) -> list[Record]:
        """Every record of the learner (their account first), decrypted and typed."""
        return _reads.records_of(self, learner_id, include_restricted=include_restricted)

    def iter_records_of(
        self,
        learner_id: str,
        *,
        include_restricted: bool = False,
        record_types: Iterable[type[Any] | str] | None = None,
    ) -> Iterator[Record]:
        """Every record of the learner, as :meth:`records_of` orders them, streamed.

        Memory stays flat however long the learner's history: records are read a page
        at a time (by id, one short read transaction per page) and decrypted page by
        page. No transaction is held between pages, so a slow consumer blocks no writer;
        a record added or erased meanwhile is seen by the pages read after that commit.
        ``record_types`` (classes or names) restricts the read to those types.
        """
        return _reads.iter_records_of(
            self, learner_id, include_restricted=include_restricted, record_types=record_types
        )

    def query(
        self,
        record_type: type[R],
        *,
        limit: int | None = None,
        include_restricted: bool = False,
        **filters: Any,
    ) -> list[R]:
        """Records of ``record_type`` whose fields equal ``filters`` (clear fields only)."""
        return _reads.select_records(
            self, record_type, filters, limit=limit, include_restricted=include_restricted
        )

    def find(
        self, record_type: type[R], *, include_restricted: bool = False, **values: str
    ) -> list[R]:
        """Records whose blind-indexed fields equal ``values`` (normalised, case-folded)."""
        return _reads.find(self, record_type, values, include_restricted=include_restricted)

    def find_learner(self, *, email: str | None = None, username: str | None = None) -> Any | None:
        """The learner with that e-mail address or username (blind-index lookup), or None.

        Both are matched case-insensitively. If several learners share the value, the
        one with the smallest id is returned; :meth:`find` returns them all.
        """
        from learnprivacy.records import Learner

        values = {k: v for k, v in (("email", email), ("username", username)) if v is not None}
        if not values:
            raise ValidationError("find_learner needs email= or username=", field="find_learner")
        found = _reads.find(self, Learner, values, include_restricted=False)
        return found[0] if found else None

    def subjects(
        self, course_id: str | None = None, *, include_restricted: bool = False
    ) -> list[str]:
        """Learner ids with data in the store (those with records in ``course_id``)."""
        return _reads.subjects(self, course_id, include_restricted=include_restricted)

    def count(
        self, record_type: type[Any], *, include_restricted: bool = True, anonymised: bool = False
    ) -> int:
        """How many rows of ``record_type`` (anonymised ones only when ``anonymised``)."""
        return _reads.count(self, record_type, include_restricted, anonymised)

    def anonymised(self, record_type: type[Any]) -> Iterator[dict[str, Any]]:
        """The non-personal fields of anonymised rows, streamed, for statistics.

        Each row has a fresh random ``id`` and, as ``learner_id``, a random person id
        shared by the rows of one learner anonymised together (so statistics count
        people); dates that are quasi-identifiers are generalised
        (``anonymise_dates_to``).
        """
        return _reads.anonymised(self, record_type)

    # -- retention and erasure ----------------------------------------------------------

    @checked_arguments
    def sweep(
        self,
        schedule: retention.Schedule,
        *,
        now: dt.datetime | None = None,
        dry_run: bool = False,
        batch_size: int | None = None,
        holds: Sequence[retention.Hold] = (),
        review_limit: int = 10_000,
        progress: ProgressReporter | None = None,
        compact: bool = True,
        part: SweepPart | None = None,
    ) -> SweepReport:
        """Apply ``schedule`` to every row: erase, anonymise, restrict, or list for review.

        Rows are selected in SQL with each rule's exact cutoff, then confirmed by the
        retention engine in Python; nothing is erased on SQL alone. Each batch of
        ``batch_size`` rows is one transaction (audit entries first), so an interrupted
        sweep can simply be run again; on PostgreSQL concurrent sweeps skip rows another
        one has locked. Smaller batches hold the write lock for less time and cost more
        in all (docs/concepts-store.md). ``progress`` (``expect(n)``/``advance(n)``) is
        told each record type's row count, then the rows decided page by page.
        ``batch_size`` defaults to the store's; ``now`` to the store's clock. A sweep that
        erased anything ends with :meth:`compact_keys` (``compact=False`` to leave that to
        a separate schedule), so that key-database copies taken before it open nothing of
        what it erased; writers elsewhere may keep running.

        ``part`` (one of :meth:`sweep_parts`) sweeps only the records of the learners in
        that range: several workers, one part each, share a sweep without walking over
        each other's rows. Workers sweeping parts pass ``compact=False`` and one of them
        (or a scheduler) calls :meth:`compact_keys` once they are all done.
        """
        at = self.now(now)
        from learnprivacy.store import _sweep  # loaded when first used

        report = _sweep.sweep(
            self,
            schedule,
            now=at,
            dry_run=dry_run,
            batch_size=self.batch_size if batch_size is None else batch_size,
            holds=tuple(holds),
            review_limit=review_limit,
            progress=progress,
            part=part,
        )
        if compact and not dry_run and report.erased:
            self.compact_keys(now=at)
        return report

    @checked_arguments
    def sweep_parts(self, count: int) -> tuple[SweepPart, ...]:
        """Split the learners into at most ``count`` contiguous ranges of about equal size,
        one per sweep worker (``sweep(..., part=...)``).

        Computed once by whoever starts the workers, and handed to each
        (:meth:`SweepPart.to_json`): together the parts cover every learner id, including
        ids written after the split, so no record falls between two workers. Fewer parts
        come back when there are fewer distinct learners than ``count``.
        """
        return sweep_parts(self, count)

    @checked_arguments
    def erase_subject(
        self,
        learner_id: str,
        *,
        now: dt.datetime | None = None,
        holds: Sequence[retention.Hold] = (),
        schedule: retention.Schedule | None = None,
    ) -> ErasureReport:
        """The right to erasure (GDPR Art. 17) for one learner, in one transaction.

        Erases every record no legal minimum or hold protects and restricts the others;
        key scopes no remaining record uses are shredded. Without a ``schedule``, records
        under ``LEGAL_OBLIGATION`` (or public task) are restricted (Art. 17(3)(b)) and all
        others erased (Art. 17(1)); with one, the schedule decides with
        ``erasure_requested=True``.
        """
        from learnprivacy.store import _erasure  # loaded when first used

        return _erasure.erase_subject(
            self, learner_id, now=self.now(now), holds=tuple(holds), schedule=schedule
        )

    @checked_arguments
    def erase_records(
        self,
        records: Iterable[Record],
        *,
        now: dt.datetime | None = None,
        reason: str = "erasure",
        schedule: retention.Schedule | None = None,
        holds: Sequence[retention.Hold] = (),
        override: retention.Override | None = None,
    ) -> int:
        """Erase exactly ``records`` (e.g. what one provider context holds), in one
        transaction, audited first; return how many rows were deleted.

        What a legal minimum or a hold protects is restricted, not erased (GDPR Art.
        17(3)): with a ``schedule``, its decision for an erasure request rules; without
        one, holds and records under a basis the law keeps (``LEGAL_OBLIGATION``, public
        task) are restricted. An audited ``override`` (who and why, written to the log
        first) releases a ``GOVERNANCE``-mode minimum, never a hold; trying to cut a
        ``COMPLIANCE``-mode minimum short raises ``RetentionViolation`` with nothing
        erased.

        Idempotent: records already gone are skipped. Keys no remaining row of the learner
        uses any more are shredded (without tombstone, as sweeps do). ``reason`` names a
        rule or a request, never a person.
        """
        return self._end_records(
            records, retention.Action.ERASE, now, reason, schedule, holds, override
        )

    @checked_arguments
    def anonymise_records(
        self,
        records: Iterable[Record],
        *,
        now: dt.datetime | None = None,
        reason: str = "anonymisation",
        schedule: retention.Schedule | None = None,
        holds: Sequence[retention.Hold] = (),
        override: retention.Override | None = None,
    ) -> int:
        """Anonymise exactly ``records``, in one transaction, audited first; return how
        many rows were anonymised. Then check them (:meth:`verify_anonymised`).

        The rows lose every personal value (ciphertexts, blind indexes, clear ones) and
        get fresh random ids; the learner id becomes a random person id, one per learner
        for the call, so statistics (:meth:`anonymised`) still count people; dates that
        are quasi-identifiers are generalised (``anonymise_dates_to``). What a legal
        minimum or hold protects is restricted instead, as in :meth:`erase_records`
        (``schedule``, ``holds`` and ``override`` work the same way), and keys no
        remaining row of the learner uses are shredded.

        After the commit the rows written are read again, column by column: one that
        still identifies someone of ``records`` raises ``IntegrityError`` naming the
        field and the defect. Idempotent: records already anonymised or gone are
        skipped. The audit entry (``anonymise``) is replayed by :meth:`replay_erasures`.
        """
        return self._end_records(
            records, retention.Action.ANONYMISE, now, reason, schedule, holds, override
        )

    def _end_records(
        self,
        records: Iterable[Record],
        action: retention.Action,
        now: dt.datetime | None,
        reason: str,
        schedule: retention.Schedule | None,
        holds: Sequence[retention.Hold],
        override: retention.Override | None,
    ) -> int:
        from learnprivacy.store import _erasure  # loaded when first used

        return _erasure.end_records(
            self, list(records), action, self.now(now), reason, schedule, tuple(holds), override
        )

    def verify_anonymised(
        self,
        known: Iterable[Record],
        *,
        since: dt.datetime | None = None,
        learner_ids: Iterable[str] = (),
        record_ids: Iterable[tuple[str, str]] = (),
    ) -> int:
        """Check that the anonymised rows no longer identify anyone of ``known``; return
        how many rows were read.

        ``known`` is identified data (the records as they were before anonymisation);
        the anonymised rows of their record types (those anonymised at or after
        ``since``, else all) are read column by column. A row that keeps a ciphertext or
        personal value, carries an id, learner id or personal value of ``known`` in any
        column, or keeps a quasi-identifier date more precise than ``anonymise_dates_to``
        raises ``IntegrityError``, which counts rows per field and defect (never a value).

        ``learner_ids`` and ``record_ids`` (pairs of record type name and id) name people
        and records that can no longer be passed in ``known`` (anonymised by an earlier,
        interrupted run): their record types are read too, and their ids must not
        reappear.
        """
        from learnprivacy.store import _anonymisation  # loaded when first used

        return _anonymisation.check_anonymised(
            self,
            list(known),
            since=since,
            learner_ids=list(learner_ids),
            record_ids=list(record_ids),
        )

    @checked_arguments
    def replay_erasures(
        self, from_log: AuditLog | Iterable[Any], *, now: dt.datetime | None = None
    ) -> ReplayReport:
        """Re-apply to this (restored) store the erasures recorded in ``from_log``.

        After restoring a backup taken before some erasures, pass the audit log of the
        live store: erased rows are deleted again, anonymised ones anonymised, shredded
        keys shredded, so the restore does not bring erased learners back. The dates a
        rectification changed (a consent's ``withdrawn_at``) are written again; other
        rectified values (the log carries no personal value) are counted in
        ``ReplayReport.rectifications_left``.
        """
        from learnprivacy.store import _erasure  # loaded when first used

        return _erasure.replay(self, from_log, now=self.now(now))

"""``LearnPrivacy``: privacy on an application's own SQLAlchemy or SQLModel models."""

from __future__ import annotations

import datetime as dt
import logging
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Engine, delete, func, insert, inspect, select
from sqlalchemy.orm import InstrumentedAttribute, Session, scoped_session
from sqlalchemy.orm.attributes import instance_state

from learnprivacy._collector import collector_paused
from learnprivacy._inplace import ModelSpec, RowCipher, build_spec, row_key
from learnprivacy._inplace._audit import erasure_events
from learnprivacy._inplace._binding import ERASED
from learnprivacy._inplace._plan import check_holds, plan_erasure
from learnprivacy._inplace._provider import DeclaredProvider, DeclaredRegister
from learnprivacy._inplace._refs import RowRefs
from learnprivacy._pgstatistics import qualified
from learnprivacy._progress import ProgressReporter
from learnprivacy._validators import is_aware, require_aware
from learnprivacy._vocabulary import BATCH_SIZE, Action
from learnprivacy.crypto import FieldCipher, Keyring, Pseudonymiser
from learnprivacy.crypto._blind_index import normalise_text
from learnprivacy.errors import (
    ConfigurationError,
    IntegrityError,
    RestrictedRecordError,
    ValidationError,
)
from learnprivacy.retention import Hold, Schedule
from learnprivacy.sqlalchemy import _statistics as statistics
from learnprivacy.sqlalchemy._auditdb import AuditDatabase
from learnprivacy.sqlalchemy._bulk import refuse_cascaded
from learnprivacy.sqlalchemy._columns import declaration_of
from learnprivacy.sqlalchemy._keys import open_key_store, same_database
from learnprivacy.sqlalchemy._rowkeys import check_key_types, identity, key_columns, key_in
from learnprivacy.sqlalchemy._states import convert, prepare
from learnprivacy.sqlalchemy._tables import ANONYMISED, RESTRICTED, SideTables, side_tables
from learnprivacy.store._actions import as_written, every_row
from learnprivacy.store._audit import AuditEvent, AuditLog
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
from learnprivacy.store._keydb import KeyDatabase
from learnprivacy.store._open import audit_keys
from learnprivacy.store._reports import ErasureOutcome, ErasureReport, SweepReport

__all__ = ["LearnPrivacy"]

_log = logging.getLogger("learnprivacy.sqlalchemy")

_PENDING = "learnprivacy.pending_shreds"
_HOOKED = "learnprivacy.after_commit"
_AUDIT_PENDING = "learnprivacy.audit_outbox"


def _once(function: Callable[[], None]) -> Callable[[], None]:
    """``function``, run at most once however often it is called."""
    done: list[bool] = []

    def run() -> None:
        if not done:
            done.append(True)
            function()

    return run


SessionSource = Session | scoped_session[Any] | Callable[[], Session]


def _system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(now: object, name: str = "now") -> dt.datetime:
    return require_aware(now, name)


def _subject_text(subject: object) -> str:
    if isinstance(subject, bool) or not isinstance(subject, str | int) or subject == "":
        raise ValidationError("subject must be a non-empty learner id", field="subject")
    return str(subject)


def _mappers_of(base: Any) -> tuple[Any, Any, list[Any]]:
    """The registry, MetaData and mappers of a declarative base, a registry or SQLModel."""
    registry = getattr(base, "registry", None)
    if registry is None:
        registry = getattr(base, "_sa_registry", None)
    if registry is None and hasattr(base, "mappers") and hasattr(base, "metadata"):
        registry = base
    if registry is None or not hasattr(registry, "mappers"):
        raise ConfigurationError("LearnPrivacy binds to a declarative base, a registry or SQLModel")
    return registry, registry.metadata, list(registry.mappers)


class LearnPrivacy(DeclaredRegister):
    """Privacy on the application's own models, in place.

    >>> privacy = LearnPrivacy(Base, keyring=keyring, keys="sqlite:///keys.db")  # doctest: +SKIP

    Binding checks every model of ``base`` that has a ``__privacy__`` declaration (or a
    column declared with ``personal``/``not_personal``): each column must be declared,
    the subject and date columns must exist. From then on, through ordinary ORM
    sessions, personal values are written as tokens under the learner's key, bound to
    ``(table, primary key, column)``, and decrypted on load.

    ``keys`` is the key database (a URL, never the application's database) or a
    :class:`~learnprivacy.crypto.KeyStore`. ``component`` names the models in privacy
    requests and exports and keeps audit references apart from another integration's.
    ``sessions`` (a ``sessionmaker``, a ``scoped_session`` or a session) is what
    :attr:`provider` opens when a :class:`~learnprivacy.providers.PrivacyManager` calls it.
    ``schedule`` and ``holds`` are what the provider's erasures and metadata use.
    ``cache_size`` is how many learners' unwrapped keys stay in memory (size it to the
    learners active at once: a key not cached costs a read of the key database).
    ``vault`` (a path or a vault object such as ``Pkcs11Vault``) holds the epoch key the
    data keys are wrapped under, as ``Store(..., vault=)``: by default ``<keys>.vault``
    beside a SQLite key database; see :meth:`compact_keys`.

    The integration's tables (audit log, row states, pending shreds) are added to the
    base's ``MetaData``, so ``create_all`` and Alembic create them with the models'.
    """

    def __init__(
        self,
        base: Any,
        *,
        keyring: Keyring,
        keys: object,
        component: str = "lms",
        actor: str = "learnprivacy",
        sessions: SessionSource | None = None,
        schedule: Schedule | None = None,
        holds: Sequence[Hold] = (),
        clock: Callable[[], dt.datetime] | None = None,
        cache_size: int = 10_000,
        vault: object = None,
        audit: str | Engine | None = None,
    ) -> None:
        if not isinstance(keyring, Keyring):
            raise ConfigurationError("LearnPrivacy needs keyring=Keyring(...)")
        if not isinstance(component, str) or not component.isidentifier():
            raise ConfigurationError("component must be an identifier such as 'lms'")
        if not isinstance(actor, str) or not actor.strip():
            raise ValidationError("actor must be non-empty text", field="actor")
        if schedule is not None and not isinstance(schedule, Schedule):
            raise ConfigurationError("schedule must be a Schedule")
        self._registry, metadata, mappers = _mappers_of(base)
        # Declarations first: a model that fails its checks must not touch the key store.
        specs = [spec for spec in map(_spec_of, mappers) if spec is not None]
        store, self._keys_url = open_key_store(keys)
        self._keyring = (
            keyring
            if keyring.store is store
            else Keyring(keyring.export_master_key(), store=store, cache_size=cache_size)
        )
        # The epoch keys the data keys are wrapped under (none before a compaction), the
        # store's machinery unchanged: a key database on epochs refuses to open without
        # its vault.
        self._key_db: KeyDatabase | None = store if isinstance(store, KeyDatabase) else None
        self._vault: Vault | None = None
        if self._key_db is not None:
            self._vault = as_vault(cast(Any, vault), self._key_db)
            open_epochs(self._keyring, self._key_db, self._vault)
        elif vault is not None:
            raise ConfigurationError(
                "vault= needs keys= to be a key database (its URL or a KeyDatabase)"
            )
        self._keyring.verify()
        self.rows = RowCipher(FieldCipher(self._keyring), self._keyring.blind_index())
        #: How the row states name rows: by keyed reference, never by a key in clear.
        self.row_refs = RowRefs.of_keyring(self._keyring)
        pseudonym_key, self._seal_key = audit_keys(
            self._keyring, f"learnprivacy.sqlalchemy/{component}"
        )
        self._audit_names = Pseudonymiser(pseudonym_key, domain="learnprivacy-audit")
        self._export_key = audit_keys(self._keyring, f"learnprivacy.sqlalchemy/{component}/export")[
            0
        ]
        self.component = component
        self.actor = actor
        self.sessions = sessions
        self.schedule = schedule
        self.holds = check_holds(holds)
        self._clock = clock or _system_clock
        if audit is not None and not isinstance(audit, str | Engine):
            raise ConfigurationError("audit= must be a database URL or an Engine")
        self.side: SideTables = side_tables(metadata, audit_here=audit is None)
        self._marks = statistics.marks_of(self.side)
        self._audit_db: AuditDatabase | None = None
        if audit is not None:
            assert self.side.outbox is not None
            self._audit_db = AuditDatabase(audit, self.side.outbox, self._audit_log)
        self._specs: dict[type[Any], ModelSpec] = {}
        self._tables: dict[str, ModelSpec] = {}
        self._ready: set[int] = set()
        self._converted: set[int] = set()
        for spec in specs:
            self._specs[spec.model] = spec
            self._tables[spec.table] = spec
        from learnprivacy.sqlalchemy._events import install

        for spec in self._specs.values():
            bound = getattr(spec.model, "__learnprivacy_bound__", None)
            if bound is not None and bound() is not None:
                raise ConfigurationError(
                    f"{spec.table} is already bound to a LearnPrivacy (close() it first)"
                )
        for spec in self._specs.values():
            # A binding dropped without close(): its listeners went inert when it was
            # collected; they are removed now, outside any event.
            stale = spec.model.__dict__.get("__learnprivacy_unbind__")
            if stale is not None:
                stale()
        self._uninstall: list[Callable[[], None]] = []
        for spec in self._specs.values():
            uninstall = install(self, spec)
            # Weakly: the model must not keep a dropped binding alive.
            spec.model.__learnprivacy_bound__ = weakref.ref(self)
            spec.model.__learnprivacy_unbind__ = _once(uninstall)
            self._uninstall.append(spec.model.__learnprivacy_unbind__)
        # What the flush hook reads per new object: subject attribute, scope, personal names.
        self._flush_plans = {
            spec.model: (spec.subject, spec.scope, tuple(c.attribute for c in spec.personal))
            for spec in self._specs.values()
            if spec.personal
        }
        # Ordinary queries leave restricted rows out and decrypt personal columns selected
        # on their own (see _queries). The session-wide hooks reach this binding through
        # _scope, weakly, and only for statements on its own tables.
        from learnprivacy.sqlalchemy._queries import query_listener
        from learnprivacy.sqlalchemy._scope import attach

        self._table_set = frozenset(spec.model.__table__ for spec in self._specs.values())
        self._query_hooks = query_listener(self)
        attach(self)

    def _after_flush(self, session: Session, _context: Any) -> None:
        """Audit the rows of declared tables the application deleted in this flush.

        One entry per table, written in the flush's transaction: the deletion and its
        entry commit or roll back together. The learners' keys are left alone (the
        application may write new rows for them); an erasure request shreds them. On
        PostgreSQL, a learner left with no row in a table is checked for in its planner
        statistics before the commit, as after an erasure.
        """
        from learnprivacy.sqlalchemy._events import DELETED

        deleted = session.info.get(DELETED)
        if not deleted:
            return
        mine = [(spec, key, subject) for spec, key, subject in deleted if spec.model in self._specs]
        if not mine:
            return
        # Rows of another binding's models are left for its own hook.
        others = [row for row in deleted if row[0].model not in self._specs]
        if others:
            session.info[DELETED] = others
        else:
            session.info.pop(DELETED, None)
        connection = session.connection()
        self._audit_deleted(session, connection, mine)

    def _audit_deleted(
        self,
        session: Session,
        connection: Connection,
        rows: Sequence[tuple[ModelSpec, Any, str | None]],
    ) -> None:
        """Audit ``rows`` ``(spec, key, subject)`` as deleted by the application, in
        ``connection``'s transaction (one entry per table), and on PostgreSQL check the
        planner statistics for the learners left with no row in a table: the flush of
        ``session.delete()`` and a bulk ``delete(...)`` alike."""
        from learnprivacy._inplace._audit import rows_event

        by_table: dict[str, list[tuple[ModelSpec, Any, str]]] = {}
        for spec, key, subject in rows:
            by_table.setdefault(spec.table, []).append((spec, key, subject or ""))
        events = [
            rows_event(
                "erase",
                self.subject_ref,
                found[0][0],
                [key for _, key, _ in found],
                [subject for _, _, subject in found if subject],
                reason="deleted by the application",
            )
            for found in by_table.values()
        ]
        if id(connection.engine) not in self._ready:
            self.side.ensure(connection)
        self._record(session, connection, events, _aware(self._clock()))
        if connection.dialect.name == "postgresql":
            for found in by_table.values():
                self._note_gone(session, connection, found[0][0], {s for _, _, s in found if s})

    def _note_gone(
        self, session: Session, connection: Connection, spec: ModelSpec, subjects: set[str]
    ) -> None:
        """Note, for the planner statistics, the learners of ``subjects`` of whom the
        application's deletions left no row in ``spec``'s table: PostgreSQL may sample
        their ids there (a learner with rows left is still rightly there)."""
        if not subjects:
            return
        column = spec.model.__table__.c[spec.subject_column]
        left = {
            str(found)
            for found in connection.execute(
                select(column).where(column.in_([_typed(spec, s) for s in subjects])).distinct()
            ).scalars()
        }
        if subjects - left:
            statistics.mark_removed(session, connection, self._marks, [spec], subjects - left)
            if statistics.REFRESH in session.info:
                self._hook(session)

    def _before_flush(self, session: Session, _context: Any, _instances: Any) -> None:
        """Create the data keys of the new learners of this flush in one go.

        Without it, each new learner's key would be one transaction in the key database,
        in the middle of the flush; here they are inserted with one statement, and the
        rows are then encrypted from the keyring's cache.
        """
        # What an earlier, failed flush noted as deleted was rolled back with it.
        session.info.pop("learnprivacy.deleted", None)
        from learnprivacy.sqlalchemy._events import FLUSHING

        plans = self._flush_plans
        new = [obj for obj in session.new if type(obj) in plans]
        self._refuse_hidden(session, new)
        # The new objects whose values this flush encrypts: a flush that fails gives
        # them their values back (see _events.give_back).
        flushing = session.info.setdefault(FLUSHING, [])
        flushing.extend(new)
        self._make_keys([(obj.__dict__, plans[type(obj)]) for obj in new])
        # Changed rows are sealed from the cache too: keys another process shredded
        # since are dropped first (see _make_keys).
        changed = {
            str(owner)
            for obj in session.dirty
            if type(obj) in plans and (owner := obj.__dict__.get(plans[type(obj)][0])) is not None
        }
        if changed:
            self._keyring._drop_stale(changed)

    def _refuse_hidden(self, session: Session, new: Sequence[Any]) -> None:
        """Refuse, before anything is written, a new object whose row exists restricted:
        ``Session.merge`` of a detached copy read before the restriction (its query no
        longer sees the row, so the merge adds a new object with the row's key). Only
        objects whose key a ``Session.get`` of this session asked for are looked up."""
        from learnprivacy.errors import RestrictedRecordError
        from learnprivacy.sqlalchemy._queries import hidden_keys

        suspects = hidden_keys(session, new)
        if not suspects:
            return
        connection = session.connection()
        for obj in suspects:
            spec = self.spec(type(obj))
            key = _key_of_object(spec, obj)
            if self._states(connection, spec, [key]).get(row_key(key)) == RESTRICTED:
                raise RestrictedRecordError(
                    f"{spec.table}: this row's processing is restricted (GDPR Art. 18); "
                    "writing it again (Session.merge of an earlier copy) is refused until "
                    "the restriction is lifted; nothing was written"
                )

    def _make_keys(self, rows: Iterable[tuple[Mapping[str, Any], tuple[str, str, Any]]]) -> None:
        """Make, in one batch, the keys missing for rows about to be written: each row
        ``{attribute: value}`` with its plan (subject attribute, key scope, personal
        attributes); a row with no personal value or no subject needs none."""
        wanted: dict[str, set[str]] = {}
        rows = list(rows)
        owners = {str(owner) for values, plan in rows if (owner := values.get(plan[0])) is not None}
        if owners:
            # Keys cached here and shredded since by another process must not seal these
            # rows (written under a destroyed key, they would be lost while the flush
            # succeeds): one small query when any of them has keys cached.
            self._keyring._drop_stale(owners)
        cache = self._keyring._cache.subjects
        for values, (subject_name, scope, names) in rows:
            subject = values.get(subject_name)
            if subject is None:
                continue
            subject = str(subject)
            keys = cache.get(subject)
            if keys is not None and scope in keys.sealers:
                continue
            if any(values.get(name) is not None for name in names):
                wanted.setdefault(scope, set()).add(subject)
        if wanted:
            prepare_keys(self._keyring, wanted)

    def close(self) -> None:
        """Stop encrypting and decrypting the models (an app factory rebinding them, tests).

        The key database's connections are closed too. Idempotent.
        """
        from learnprivacy.sqlalchemy._scope import detach

        detach(self)
        for uninstall in self._uninstall:
            uninstall()
        self._uninstall = []
        for spec in self._specs.values():
            bound = getattr(spec.model, "__learnprivacy_bound__", None)
            if bound is not None and bound() is self:
                spec.model.__learnprivacy_bound__ = None
                spec.model.__learnprivacy_unbind__ = None
        store = self._keyring.store
        close = getattr(store, "close", None)
        if not callable(close):
            close = getattr(getattr(store, "_db", None), "dispose", None)
        if callable(close):
            close()
        if self._audit_db is not None:
            self._audit_db.close()

    def __repr__(self) -> str:
        return f"LearnPrivacy(component={self.component!r}, tables={sorted(self._tables)})"

    # -- what the integration is bound to ----------------------------------------------

    @property
    def keyring(self) -> Keyring:
        """The keyring, bound to the key database."""
        return self._keyring

    @property
    def specs(self) -> tuple[ModelSpec, ...]:
        """The bound models' specs (learners' own table last)."""
        return tuple(sorted(self._specs.values(), key=lambda s: s.is_subject_table))

    def spec(self, model: type[Any] | str) -> ModelSpec:
        """The spec of a bound model class (or table name: ``"schema"."table"`` for a
        table in a schema named explicitly, or its bare name when no other bound table
        has it)."""
        if isinstance(model, str):
            found = self._tables.get(model)
            if found is None:
                # A table in a schema of its own, by its bare name when no other has it.
                named = [s for s in self._specs.values() if s.model.__table__.name == model]
                found = named[0] if len(named) == 1 else None
        else:
            found = next((self._specs[c] for c in model.__mro__ if c in self._specs), None)
        if found is None:
            name = model if isinstance(model, str) else model.__name__
            raise ConfigurationError(f"{name} is not a declared model of this LearnPrivacy")
        return found

    @property
    def vault(self) -> Vault | None:
        """The vault of the epoch keys (``None`` when ``keys=`` is not a key database)."""
        return self._vault

    def compact_keys(
        self,
        session: Session,
        *,
        now: dt.datetime,
        progress: ProgressReporter | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> CompactionReport:
        """Wrap every live data key under a new epoch key and destroy the previous one.

        As ``Store.compact_keys``: afterwards a copy of the key database taken before
        (file copy, ``pg_dump``, dead tuples, WAL), even with the master key and the
        current vault, opens no key of a learner erased before this call, and every live
        learner stays readable. Keys that erasures committed but did not shred yet are
        shredded first. Interrupted, nothing is lost and calling it again finishes. The
        audit entry (counts only) is committed with ``session``. Other processes bound to
        the same key database keep running: each key they write afterwards is checked
        against the key database's current epoch and wrapped under it.
        """
        now = _aware(now)
        if self._key_db is None or self._vault is None:
            raise ConfigurationError(
                "key compaction needs keys= to be a key database (its URL or a KeyDatabase)"
            )
        # Shreds an earlier erasure left pending are done before the keys are compacted.
        self._open(session)
        session.commit()
        report = compact(
            self._keyring,
            self._key_db,
            self._vault,
            now=now,
            progress=progress,
            batch_size=batch_size,
        )
        connection = self._open(session)
        event = AuditEvent(
            action="compact_keys",
            outcome="done",
            details=compaction_details(report),
        )
        self._record(session, connection, [event], now)
        session.commit()
        return report

    def key_epoch_status(self) -> dict[str, Any]:
        """Epoch number, last compaction, learners erased since, the vault in use."""
        if self._key_db is None or self._vault is None:
            raise ConfigurationError("keys= is not a key database: it has no epochs")
        return epoch_status(self._key_db, self._vault)

    def subject_ref(self, subject: str) -> str:
        """The pseudonymous reference the audit log uses for ``subject``."""
        return self._audit_names.pseudonym(subject)

    def audit(self, bind: Session | Engine | Connection) -> AuditLog:
        """The audit log (``.verify()``, ``.entries()``): in the database of ``bind``, or
        in the one named by ``LearnPrivacy(..., audit=)`` (entries the application's
        committed transactions staged are moved there first)."""
        if self._audit_db is not None:
            if isinstance(bind, Session):
                self._open(bind)
            elif isinstance(bind, Connection):
                self._audit_db.drain(bind)
            else:
                self._audit_db.drain(_engine_of(bind))
            return self._audit_db.log()
        return self._audit_log(Database.from_engine(_engine_of(bind)))

    def _audit_log(self, database: Database) -> AuditLog:
        return AuditLog(
            database,
            pseudonymiser=self._audit_names,
            seal_key=self._seal_key,
            actor=self.actor,
        )

    def _record(
        self,
        session: Session,
        connection: Connection,
        events: Sequence[AuditEvent],
        now: dt.datetime,
    ) -> None:
        """Record ``events`` in the caller's transaction: in the audit log when it lives in
        the application's database, else in the outbox that feeds it after the commit."""
        if self._audit_db is None:
            self.audit(connection).append(connection, events, now=now)
            return
        if events:
            staged = session.info.setdefault(_AUDIT_PENDING, set())
            staged.add(self._audit_db.stage(connection, events, now))
            self._hook(session)

    # -- sessions ------------------------------------------------------------------------

    def _open(self, session: Session, *, reconcile: bool = True) -> Connection:
        """Flush ``session`` and return its connection, checked and ready; keys a crash
        left owed are shredded, and audit entries a crash left in the outbox moved, first
        unless ``reconcile`` is false (a dry run changes nothing, the key store and the
        audit log included)."""
        if not isinstance(session, Session):
            raise ConfigurationError("pass an ORM Session")
        session.flush()
        connection = session.connection()
        prepare(connection)
        engine = connection.engine
        if id(engine) not in self._ready:
            if self._keys_url is not None and same_database(engine.url, self._keys_url):
                raise ConfigurationError(
                    "keys= is the application's own database: keys must live apart from the "
                    "data they protect (give the key store a database of its own)"
                )
            self.side.ensure(connection)
            head = self.side.audit_head
            if head is not None and connection.execute(select(head.c.id)).first() is None:
                self.audit(connection).ensure_head(connection)
            self._ready.add(id(engine))
        if id(engine) not in self._converted:
            self._convert(session, connection)
        if reconcile:
            self._reconcile(session, connection)
        statistics.leftover(session, connection, self._marks)
        if statistics.REFRESH in session.info:
            self._hook(session)
        if reconcile and self._audit_db is not None:
            # Entries a crash left in the outbox after their transaction committed (this
            # transaction's own wait for its commit); a dry run leaves them where they are.
            self._audit_db.drain(connection, exclude=session.info.get(_AUDIT_PENDING, ()))
        return connection

    def _convert(self, session: Session, connection: Connection) -> None:
        """Convert row states written before references (keys in clear) and mark the
        table converted, in the caller's transaction: done once it commits, done again by
        the next call if rolled back."""
        engine = id(connection.engine)
        if convert(connection, self.side, self.row_refs, self._tables) is None:
            self._converted.add(engine)
            return
        from sqlalchemy import event

        converted = self._converted  # not self: a session must not keep the binding alive
        event.listen(session, "after_commit", lambda _s: converted.add(engine), once=True)

    def _hook(self, session: Session) -> None:
        if session.info.get(_HOOKED) is self:
            return
        session.info[_HOOKED] = self
        from sqlalchemy import event

        event.listen(session, "before_commit", self._before_commit)
        event.listen(session, "after_commit", self._after_commit)
        event.listen(session, "after_soft_rollback", self._after_rollback)
        event.listen(session, "after_transaction_end", self._after_end)

    def _before_commit(self, session: Session) -> None:
        statistics.before_commit(session, self._marks)

    def _removed(
        self,
        session: Session,
        connection: Connection,
        tables: Iterable[str],
        subjects: Iterable[str],
    ) -> None:
        """Note that this transaction removes the rows of ``subjects`` from ``tables``
        (their planner statistics are checked before the commit)."""
        statistics.note_removed(session, connection, [self._tables[t] for t in tables], subjects)
        self._hook(session)

    def _after_rollback(self, session: Session, previous: Any) -> None:
        # The pending rows were rolled back with the change: nothing to shred. A savepoint
        # rolled back inside the transaction is sorted out at commit (durable rows only).
        if not getattr(previous, "nested", False):
            session.info.pop(_PENDING, None)
            session.info.pop(_AUDIT_PENDING, None)
            # What this transaction marked went with it (marks a crash left are refreshed
            # once it has ended, see _after_end).
            statistics.forget(session)

    def _drain(self, session: Session) -> None:
        if self._audit_db is None:
            return
        try:
            self._audit_db.drain(_engine_of(session))
        except Exception as exc:  # the change is committed; the next call moves them
            _log.warning(
                "audit entries not moved to the audit database (%s); retried on next call",
                type(exc).__name__,
            )

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(_AUDIT_PENDING, None):
            self._drain(session)
        self._shred_committed(session)

    def _after_end(self, session: Session, transaction: Any) -> None:
        # Committed, rolled back or closed: the planner statistics the transaction marked,
        # or a crash left marked, are refreshed now that it holds no lock.
        if getattr(transaction, "parent", None) is None:
            engine = statistics.take(session)
            if engine is not None:
                statistics.refresh(engine, self._marks)

    def _shred_committed(self, session: Session) -> None:
        pending = session.info.pop(_PENDING, None)
        if not pending:
            return
        engine = pending["engine"]
        table = self.side.pending
        try:
            with engine.connect() as connection:
                # Only what the commit made durable: a savepoint rolled back inside the
                # transaction took its pending rows (and its erasure) with it.
                noted = [row[0] for row in pending["rows"]]
                durable = set(
                    connection.execute(select(table.c.id).where(table.c.id.in_(noted))).scalars()
                )
                connection.rollback()
                rows = [row for row in pending["rows"] if row[0] in durable]
                done, destroyed = self._shred(connection, rows)
                session.info["learnprivacy.shredded"] = (
                    session.info.get("learnprivacy.shredded", 0) + destroyed
                )
                # _shred's reads began a transaction of their own (autobegin): end it, so
                # the pending rows are cleared now rather than by the next call.
                connection.rollback()
                with connection.begin():
                    if done:
                        connection.execute(delete(table).where(table.c.id.in_(done)))
        except Exception as exc:  # the commit happened; the next call reconciles
            _log.warning(
                "keys not shredded after commit (%s); retried on next call", type(exc).__name__
            )

    def _shred(
        self, connection: Connection, rows: Sequence[tuple[int, str, str, str]]
    ) -> tuple[list[int], int]:
        """Shred the keys of pending rows ``(id, subject, scope, mode)``.

        ``tombstone`` (erasure requests) shreds the scope for good; ``keys`` (sweeps)
        destroys the scope's keys only if no row of the learner still holds a value in
        it, and leaves no tombstone (the learner may still be active). Returns the ids
        done and how many keys were destroyed.
        """
        done: list[int] = []
        destroyed = 0
        for row_id, subject, scope, mode in rows:
            if mode == "tombstone":
                destroyed += self._keyring.shred(subject, scope)
            elif not self._uses_scope(connection, subject, scope):
                store = self._keyring.store
                # The key store names subjects by key reference (a KeyDatabase).
                for entry in list(store.list_entries(self._keyring.key_ref(subject), scope)):
                    destroyed += int(self._keyring.destroy_key(subject, entry.key_id))
            done.append(row_id)
        return done, destroyed

    def _uses_scope(self, connection: Connection, subject: str, scope: str) -> bool:
        """Whether a row of ``subject`` still holds a value encrypted in ``scope``."""
        for spec in self._specs.values():
            if spec.scope != scope or not spec.personal:
                continue
            table = spec.model.__table__
            query = select(table.c[spec.primary_key_column]).where(
                table.c[spec.subject_column] == _typed(spec, subject),
                *[],
            )
            columns = [table.c[c.column] for c in spec.personal]
            from sqlalchemy import or_

            query = query.where(or_(*[c.is_not(None) for c in columns])).limit(1)
            if connection.execute(query).first() is not None:
                return True
        return False

    def _reconcile(self, session: Session, connection: Connection) -> None:
        """Shred what a crash after an earlier commit left pending (not this transaction's)."""
        table = self.side.pending
        mine = {row[0] for row in (session.info.get(_PENDING) or {}).get("rows", ())}
        rows = [
            (int(r[0]), str(r[1]), str(r[2]), str(r[3]))
            for r in connection.execute(
                select(table.c.id, table.c.subject, table.c.scope, table.c.mode).order_by(
                    table.c.id
                )
            )
            if int(r[0]) not in mine
        ]
        if rows:
            done, _destroyed = self._shred(connection, rows)
            connection.execute(delete(table).where(table.c.id.in_(done)))

    def _queue_shreds(
        self,
        session: Session,
        connection: Connection,
        pairs: Iterable[tuple[str, str]],
        mode: str,
        now: dt.datetime,
    ) -> None:
        table = self.side.pending
        pending = session.info.setdefault(_PENDING, {"engine": connection.engine, "rows": []})
        for subject, scope in sorted(set(pairs)):
            row_id = connection.execute(
                insert(table)
                .values(subject=subject, scope=scope, mode=mode, at=_naive(now))
                .returning(table.c.id)
            ).scalar_one()
            pending["rows"].append((int(row_id), subject, scope, mode))
        self._hook(session)

    # -- lookups ---------------------------------------------------------------------------

    def find(
        self,
        session: Session,
        attribute: InstrumentedAttribute[Any],
        value: str,
        *,
        include_restricted: bool = False,
    ) -> list[Any]:
        """The objects whose blind-indexed ``attribute`` equals ``value`` (normalised).

        ``privacy.find(session, User.email, "Ana@Example.org")``. Index collisions are
        filtered out after decryption. Restricted rows are left out unless asked.
        """
        model = getattr(attribute, "class_", None)
        name = getattr(attribute, "key", None)
        if model is None or name is None:
            raise ConfigurationError("find takes a model attribute such as User.email")
        spec = self.spec(model)
        column = spec.column(name)
        if not column.privacy.blind_index:
            raise ConfigurationError(
                f"{spec.table}.{column.column} has no blind index (personal(..., blind_index=True))"
            )
        if type(value) is not str:
            raise ValidationError(
                "find looks up text values", field=f"{spec.table}.{column.column}"
            )
        self._open(session)
        index = self.rows.index(spec, column, value)
        query = select(model).where(getattr(model, name + "_bidx") == index)
        found = session.scalars(
            query.execution_options(include_restricted=bool(include_restricted))
        ).all()
        wanted = normalise_text(value)
        return [obj for obj in found if normalise_text(getattr(obj, name) or "") == wanted]

    def _states(
        self, connection: Connection, spec: ModelSpec, keys: Iterable[Any]
    ) -> dict[str, str]:
        """The states of the rows of ``keys`` that have one, by row key text."""
        texts = {row_key(k) for k in keys}
        wanted = {self.row_refs.of_text(spec.table, text): text for text in texts}
        if not wanted:
            return {}
        table = self.side.states
        refs = list(wanted)
        found: dict[str, str] = {}
        for start in range(0, len(refs), 500):
            chunk = refs[start : start + 500]
            for ref, state in connection.execute(
                select(table.c.row_key, table.c.state).where(
                    table.c.table_name == spec.table, table.c.row_key.in_(chunk)
                )
            ):
                found[wanted[str(ref)]] = str(state)
        return found

    def is_restricted(self, session: Session, obj: Any) -> bool:
        """Whether ``obj``'s row is restricted (GDPR Art. 18)."""
        spec = self.spec(type(obj))
        key = _key_of_object(spec, obj)
        return self._states(self._open(session), spec, [key]).get(row_key(key)) == RESTRICTED

    # -- reading a learner's rows ---------------------------------------------------------

    def _clear_rows(
        self, connection: Connection, spec: ModelSpec, subject: str
    ) -> list[tuple[Any, Mapping[str, Any]]]:
        table = spec.model.__table__
        columns = key_columns(spec)
        names = list(spec.key_attributes)
        if not spec.is_subject_table and spec.subject not in spec.key_attributes:
            columns.append(table.c[spec.subject_column])
            names.append(spec.subject)
        for column in spec.clear:
            columns.append(table.c[column.column])
            names.append(column.attribute)
        query = select(*columns).where(table.c[spec.subject_column] == _typed(spec, subject))
        if connection.dialect.name == "postgresql":
            query = query.with_for_update()
        found: list[tuple[Any, Mapping[str, Any]]] = []
        for row in connection.execute(query.order_by(*key_columns(spec))):
            values = dict(zip(names, row, strict=True))
            found.append((spec.key_of(values), values))
        return found

    def kept_by_law(self, session: Session, subject: str) -> dict[str, int]:
        """How many rows of ``subject`` each declared table keeps restricted (a legal
        minimum, a hold, a review, or kept rows that refer to them), by table name: what
        a :class:`~learnprivacy.providers.PrivacyManager`'s check after an erasure
        accepts. Rows merely left behind, and anonymised rows, are not counted."""
        learner = _subject_text(subject)
        connection = self._open(session)
        kept: dict[str, int] = {}
        for spec in self.specs:
            table = spec.model.__table__
            query = select(*key_columns(spec)).where(
                table.c[spec.subject_column] == _typed(spec, learner)
            )
            names = list(spec.key_attributes)
            keys = [
                spec.key_of(dict(zip(names, row, strict=True))) for row in connection.execute(query)
            ]
            if not keys:
                continue
            states = self._states(connection, spec, keys)
            count = sum(1 for key in keys if states.get(row_key(key)) == RESTRICTED)
            if count:
                kept[spec.table] = count
        return kept

    # -- erasure -------------------------------------------------------------------------

    def erase_subject(
        self,
        session: Session,
        subject: str,
        *,
        now: dt.datetime,
        holds: Sequence[Hold] = (),
        schedule: Schedule | None = None,
    ) -> ErasureReport:
        """The right to erasure (GDPR Art. 17) for one learner, in the caller's transaction.

        Rows no legal minimum or hold protects are deleted, the others restricted (the
        learner's account is kept, restricted, while any of their rows is kept); audit
        entries are written first, in the same transaction. Key scopes no kept row
        needs are shredded *after* the caller commits (a rollback loses nothing; a crash
        between the commit and the shred is made good on the next call). Without a
        ``schedule`` the basis decides (legal obligation restricts), with one the
        schedule does, as in ``Store.erase_subject``.
        """
        now = _aware(now)
        learner = _subject_text(subject)
        holds = check_holds(holds)
        if schedule is not None and not isinstance(schedule, Schedule):
            raise ConfigurationError("schedule must be a Schedule")
        connection = self._open(session)
        found: list[tuple[ModelSpec, Any, Any]] = []
        already: set[tuple[str, str]] = set()
        for spec in self.specs:
            rows = self._clear_rows(connection, spec, learner)
            states = self._states(connection, spec, [key for key, _ in rows])
            for key, row in rows:
                state = states.get(row_key(key))
                if state == ANONYMISED:
                    continue
                if state == RESTRICTED:
                    already.add((spec.table, row_key(key)))
                found.append((spec, key, spec.view(row)))
        plan = plan_erasure(
            learner, found, specs=self.specs, now=now, holds=holds, schedule=schedule
        )
        restrict_new = {
            table: tuple(k for k in keys if (table, row_key(k)) not in already)
            for table, keys in plan.restrict.items()
        }
        restrict_new = {t: k for t, k in restrict_new.items() if k}
        outcomes = tuple(
            ErasureOutcome(
                record_type=row.spec.name,
                record_id=row_key(row.key),
                action=row.decision.action
                if row.decision.action in (Action.ERASE, Action.REVIEW)
                else Action.RESTRICT,
                article=row.decision.article,
                reason=row.decision.reason,
                due_at=row.decision.due_at,
            )
            for row in plan.rows
        )
        unshredded = [s for s in plan.shred_scopes if not self._keyring.is_shredded(learner, s)]
        report = ErasureReport(
            erased=plan.erased,
            restricted=plan.restricted,
            outcomes=outcomes,
            shredded_scopes=plan.shred_scopes,
            kept_scopes=plan.kept_scopes,
            subject_ref=self.subject_ref(learner),
        )
        if not plan.erase and not restrict_new and not unshredded:
            # Nothing left to do (a second request): no entry for what did not happen.
            return report
        effective = type(plan)(
            subject=plan.subject,
            rows=plan.rows,
            erase=plan.erase,
            restrict=restrict_new,
            shred_scopes=plan.shred_scopes,
            kept_scopes=plan.kept_scopes,
        )
        events = erasure_events(self.subject_ref, effective, self._tables)
        self._record(session, connection, events, now)
        self._apply(
            session,
            connection,
            erase=plan.erase,
            restrict=restrict_new,
            now=now,
            reason="erasure request: kept by law, hold or review",
        )
        self._queue_shreds(
            session, connection, [(learner, s) for s in plan.shred_scopes], "tombstone", now
        )
        self._removed(session, connection, [t for t, keys in plan.erase.items() if keys], [learner])
        return report

    def _apply(
        self,
        session: Session,
        connection: Connection,
        *,
        erase: Mapping[str, Sequence[Any]],
        restrict: Mapping[str, Sequence[Any]],
        now: dt.datetime,
        reason: str,
        anonymise: Mapping[str, Sequence[Any]] | None = None,
    ) -> None:
        """Carry out the changes (audit entries already written), children first; then
        check that every row restricted here is still there."""
        states = self.side.states
        restricting: list[tuple[ModelSpec, list[Any]]] = []
        ref = self.row_refs.ref
        for spec in self.specs:
            table = spec.model.__table__
            keys = list(erase.get(spec.table, ()))
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                try:
                    # A restricted row the database would delete or change with these.
                    refuse_cascaded(self, connection, spec, chunk)
                except RestrictedRecordError:
                    session.rollback()
                    raise
                removed = connection.execute(delete(table).where(key_in(spec, chunk))).rowcount
                _every_row(session, spec, removed, chunk, "erased")
                connection.execute(
                    delete(states).where(
                        states.c.table_name == spec.table,
                        states.c.row_key.in_([ref(spec.table, k) for k in chunk]),
                    )
                )
            for key in keys:
                _forget(session, spec, key)
            hidden = list((anonymise or {}).get(spec.table, ()))
            if hidden:
                from sqlalchemy import update

                values: dict[str, Any] = {}
                for column in spec.personal:
                    nullable = table.c[column.column].nullable
                    values[column.column] = None if nullable else ERASED
                    if column.privacy.blind_index:
                        values[column.column + "_bidx"] = None
                # Refused (ConfigurationError) where the learner id cannot leave the row.
                values[spec.subject_column] = spec.anonymised_subject(
                    nullable=bool(table.c[spec.subject_column].nullable)
                )
                for start in range(0, len(hidden), 500):
                    chunk = hidden[start : start + 500]
                    if values:
                        blanked = connection.execute(
                            update(table).where(key_in(spec, chunk)).values(values)
                        ).rowcount
                        _every_row(session, spec, blanked, chunk, "anonymised")
                        _as_written(session, connection, spec, chunk, values)
                    connection.execute(
                        delete(states).where(
                            states.c.table_name == spec.table,
                            states.c.row_key.in_([ref(spec.table, k) for k in chunk]),
                        )
                    )
                    connection.execute(
                        insert(states),
                        [
                            {
                                "table_name": spec.table,
                                "row_key": ref(spec.table, k),
                                "state": ANONYMISED,
                                "reason": "retention ended: anonymised",
                                "at": _naive(now),
                            }
                            for k in chunk
                        ],
                    )
                for key in hidden:
                    _forget(session, spec, key)
            kept = list(restrict.get(spec.table, ()))
            if kept:
                restricting.append((spec, kept))
                connection.execute(
                    insert(states),
                    [
                        {
                            "table_name": spec.table,
                            "row_key": ref(spec.table, k),
                            "state": RESTRICTED,
                            "reason": reason,
                            "at": _naive(now),
                        }
                        for k in kept
                    ],
                )
        for spec, kept in restricting:
            # A row deleted by the database with another (ON DELETE CASCADE from a row
            # erased here, a trigger) is not kept, whatever the plan said.
            _every_row(session, spec, self._count(connection, spec, kept), kept, "kept")

    def _count(self, connection: Connection, spec: ModelSpec, keys: Sequence[Any]) -> int:
        """How many of the rows ``keys`` of ``spec`` exist."""
        found = 0
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            query = select(func.count()).select_from(spec.model.__table__)
            found += int(connection.execute(query.where(key_in(spec, chunk))).scalar_one())
        return found

    def restrict(self, session: Session, obj: Any, *, reason: str, now: dt.datetime) -> bool:
        """Restrict processing of ``obj``'s row (GDPR Art. 18), audited; ``False`` if it
        already was. Updates and deletions of the row are refused until :meth:`lift_restriction`."""
        return self._set_restriction(session, obj, reason=reason, now=now)

    def lift_restriction(self, session: Session, obj: Any, *, now: dt.datetime) -> bool:
        """Lift the restriction of ``obj``'s row, audited; ``False`` if it was not restricted."""
        return self._set_restriction(session, obj, reason=None, now=now)

    def _set_restriction(
        self, session: Session, obj: Any, *, reason: str | None, now: dt.datetime
    ) -> bool:
        now = _aware(now)
        if reason is not None and (not isinstance(reason, str) or not reason.strip()):
            raise ValidationError("reason must be non-empty text", field="reason")
        spec = self.spec(type(obj))
        key = _key_of_object(spec, obj)
        subject = str(getattr(obj, spec.subject))
        connection = self._open(session)
        if connection.dialect.name == "postgresql":
            # The row itself is locked (shared): a bulk UPDATE that checked it holds it
            # until it commits, so a restriction follows that update, never slips
            # between its check and its write; one started after waits for this one.
            connection.execute(
                select(*key_columns(spec)).where(key_in(spec, [key])).with_for_update(read=True)
            )
        current = self._states(connection, spec, [key]).get(row_key(key))
        if (reason is not None) == (current == RESTRICTED):
            return False
        from learnprivacy._inplace._audit import rows_event

        event = rows_event(
            "restrict" if reason is not None else "lift_restriction",
            self.subject_ref,
            spec,
            [key],
            [subject],
            reason=reason or "restriction lifted",
        )
        self._record(session, connection, [event], now)
        states = self.side.states
        if reason is None:
            connection.execute(
                delete(states).where(
                    states.c.table_name == spec.table,
                    states.c.row_key == self.row_refs.ref(spec.table, key),
                )
            )
        else:
            self._apply(
                session, connection, erase={}, restrict={spec.table: [key]}, now=now, reason=reason
            )
        return True

    # -- retention ---------------------------------------------------------------------

    def sweep(
        self,
        session: Session,
        schedule: Schedule,
        *,
        now: dt.datetime,
        holds: Sequence[Hold] = (),
        dry_run: bool = False,
        batch_size: int = BATCH_SIZE,
        review_limit: int = 1_000,
        compact: bool = False,
    ) -> SweepReport:
        """Apply ``schedule`` (rules keyed by model class or name) to the declared tables.

        Rows are selected in SQL with each rule's exact cutoff, then confirmed by the
        retention engine; nothing is erased on SQL alone. Each batch of ``batch_size``
        rows is one transaction of ``session`` (audit entries, changes, then
        ``session.commit()``), and keys no remaining row uses are shredded after each
        commit: an interrupted sweep is simply run again, and a second run changes nothing.
        A learner's account row is not erased while other rows of theirs remain (listed
        for review instead). Tables without a rule are left alone. With ``compact``, a
        sweep that erased anything ends with :meth:`compact_keys`.
        """
        from learnprivacy.sqlalchemy._sweep import sweep

        if not isinstance(schedule, Schedule):
            raise ConfigurationError("sweep needs a Schedule")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError("batch_size must be a positive int", field="batch_size")
        # Tables a batch marks (their statistics sampled a learner it removed) are
        # refreshed once, after the last batch, not after each one.
        with statistics.deferred(session):
            report = sweep(
                self,
                session,
                schedule,
                now=_aware(now),
                holds=check_holds(holds),
                dry_run=bool(dry_run),
                batch_size=batch_size,
                review_limit=review_limit,
            )
        if not session.in_transaction():
            engine = statistics.take(session)
            if engine is not None:
                statistics.refresh(engine, self._marks)
        if compact and not dry_run and (report.erased or report.anonymised):
            self.compact_keys(session, now=now)
        return report

    # -- exports, providers, the register ------------------------------------------------

    def iter_rows(
        self, session: Session, subject: str
    ) -> Iterator[tuple[ModelSpec, dict[str, Any]]]:
        """Every row of ``subject`` in the declared tables, decrypted, JSON-ready, table by
        table (restricted rows included; anonymised ones are no longer the learner's)."""
        learner = _subject_text(subject)
        connection = self._open(session)
        for spec in self.specs:
            model = spec.model
            table = model.__table__
            query = (
                select(model)
                .where(table.c[spec.subject_column] == _typed(spec, learner))
                .order_by(*key_columns(spec))
                .execution_options(include_restricted=True)
            )
            objects = session.scalars(query).all()
            keys = [_key_of_object(spec, o) for o in objects]
            states = self._states(connection, spec, keys)
            for obj, key in zip(objects, keys, strict=True):
                state = states.get(row_key(key))
                if state == ANONYMISED:
                    continue
                row: dict[str, Any] = {
                    name: _json(value) for name, value in spec.key_values(key).items()
                }
                row["learner_id"] = learner
                if not spec.is_subject_table:
                    row[spec.subject] = _json(getattr(obj, spec.subject))
                for column in spec.columns:
                    if column.privacy.exported:
                        row[column.attribute] = _json(getattr(obj, column.attribute))
                row["basis"] = spec.privacy.basis.moodle_code
                if state == RESTRICTED:
                    row["restricted"] = True
                yield spec, row

    def provider_for(self, sessions: SessionSource) -> DeclaredProvider:
        """A provider reading and erasing through ``sessions``."""
        return DeclaredProvider(
            self.component,
            self.specs,
            _Backend(self, sessions),
            schedule=self.schedule,
            holds=self.holds,
            clock=self._clock,
        )

    @property
    def provider(self) -> DeclaredProvider:
        """The provider of the declared models, for a ``PrivacyManager``.

        It reads and erases through ``LearnPrivacy(..., sessions=...)`` and runs in the
        caller's thread (``in_caller_thread``), so Flask's ``current_app`` and
        request-scoped sessions work inside it. Metadata needs no session.
        """
        return (
            self.provider_for(self.sessions)
            if self.sessions is not None
            else DeclaredProvider(
                self.component,
                self.specs,
                _Backend(self, None),
                schedule=self.schedule,
                holds=self.holds,
                clock=self._clock,
            )
        )

    def export_subject(
        self,
        session: Session,
        subject: str,
        out: Any,
        *,
        now: dt.datetime,
        **options: Any,
    ) -> Any:
        """The subject's package (``export_subject(store)``'s format) from the declared
        tables: ``manifest.json`` with checksums, JSON, CSV and ``index.html``.

        ``options`` go to :func:`learnprivacy.export.export_subject` (``scope``,
        ``formats``, ``overwrite``...). Pseudonyms in the package are stable across exports.
        """
        from learnprivacy.export import export_subject
        from learnprivacy.providers import PrivacyManager

        manager = PrivacyManager([self.provider_for(session)], discover=False, timeout=None)
        options.setdefault("pseudonym_key", self._export_key)
        return export_subject(manager, _subject_text(subject), out, now=_aware(now), **options)


class _Backend:
    """What the provider needs, over a session source."""

    def __init__(self, privacy: LearnPrivacy, sessions: SessionSource | None) -> None:
        self.privacy = privacy
        self.sessions = sessions

    def _session(self) -> tuple[Session, bool]:
        source = self.sessions
        if source is None:
            raise ConfigurationError(
                "this provider has no sessions: LearnPrivacy(..., sessions=sessionmaker)"
            )
        if isinstance(source, Session):
            return source, False
        if isinstance(source, scoped_session):
            return source(), False
        return source(), True

    def holds_data(self, subject: str) -> bool:
        session, own = self._session()
        try:
            return next(self.privacy.iter_rows(session, subject), None) is not None
        finally:
            if own:
                session.close()

    def iter_rows(self, subject: str) -> Iterator[tuple[ModelSpec, Mapping[str, Any]]]:
        session, own = self._session()
        try:
            yield from self.privacy.iter_rows(session, subject)
        finally:
            if own:
                session.close()

    def kept_by_law(self, subject: str) -> dict[str, int]:
        session, own = self._session()
        try:
            return self.privacy.kept_by_law(session, subject)
        finally:
            if own:
                session.close()

    def erase(self, subject: str, *, now: dt.datetime) -> Any:
        session, own = self._session()
        try:
            report = self.privacy.erase_subject(
                session, subject, now=now, holds=self.privacy.holds, schedule=self.privacy.schedule
            )
            session.commit()
            return report
        except BaseException:
            session.rollback()
            raise
        finally:
            if own:
                session.close()


def prepare_keys(keyring: Keyring, wanted: Mapping[str, set[str]]) -> None:
    """Make (and cache) the keys of ``wanted`` (scope -> subjects): in one transaction
    and one insert on a SQL key store, one by one on any other."""
    from learnprivacy.store._keystore import KeyRace, SqlKeyStore

    store: Any = keyring.store
    subjects = sorted({s for group in wanted.values() for s in group})

    def make() -> None:
        for scope, group in wanted.items():
            keyring._sealers(sorted(group), scope)

    batch, flush = getattr(store, "batch", None), getattr(store, "flush", None)
    if not callable(batch) or not callable(flush):
        make()
        return
    # A key database names subjects by key reference.
    names = list(keyring._key_refs(subjects).values())
    try:
        # Thousands of keys, entries, rows and cache slots at once: built with the
        # cyclic collector paused, one collection afterwards instead of dozens (see
        # learnprivacy._collector).
        if isinstance(store, SqlKeyStore) and hasattr(store, "_db"):
            with (
                collector_paused(),
                store._db.write() as connection,
                store.bound(connection),
                batch(names),
            ):
                make()
                flush()
        else:
            with collector_paused(), batch(names):
                make()
                flush()
    except KeyRace:
        # Another process created some of these keys first: forget what this batch
        # cached and let each row find its key the ordinary way.
        for subject in subjects:
            keyring.clear_cache(subject)
    except BaseException:
        for subject in subjects:
            keyring.clear_cache(subject)
        raise


def _spec_of(mapper: Any) -> ModelSpec | None:
    cls = mapper.class_
    privacy = getattr(cls, "__privacy__", None)
    table: Any = mapper.local_table
    columns = []
    declared_any = False
    key_columns = {c.name for c in mapper.primary_key}
    names = set(table.c.keys())
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if getattr(column, "table", None) is not table:
            continue
        if column.name.endswith("_bidx") and column.name[: -len("_bidx")] in names:
            continue
        declaration = declaration_of(column)
        declared_any = declared_any or declaration is not None
        if column.name in key_columns:
            if declaration is not None and declaration.personal:
                where = f"{mapper.local_table.name}.{prop.key}"
                raise ConfigurationError(f"{where}: a primary key cannot be encrypted")
            continue
        columns.append((prop.key, column.name, declaration))
    if privacy is None:
        if declared_any:
            raise ConfigurationError(
                f"{table.name} declares personal or not_personal columns but no "
                "__privacy__ = Privacy(subject=..., purpose=..., basis=...)"
            )
        return None
    primary = [
        (next(p.key for p in mapper.column_attrs if c in p.columns), c.name)
        for c in mapper.primary_key
    ]
    # A table in a schema named explicitly is known by both names, "schema"."table", in
    # its tokens' binding, its row references and its row states: two tables of the same
    # name in two schemas never share them. Tables without a schema keep the bare name
    # (their tokens and references are those they always had).
    name = qualified(table.schema, table.name)
    spec = build_spec(cls, table=name, primary_key=primary, columns=columns, privacy=privacy)
    check_key_types(spec)
    return spec


def _key_of_object(spec: ModelSpec, obj: Any) -> Any:
    """The key of a mapped object (its value, or the tuple of its values)."""
    return spec.key_of({name: getattr(obj, name) for name in spec.key_attributes})


def _engine_of(bind: Session | Engine | Connection) -> Engine:
    if isinstance(bind, Session):
        found = bind.get_bind()
        return found if isinstance(found, Engine) else found.engine
    if isinstance(bind, Connection):
        return bind.engine
    if isinstance(bind, Engine):
        return bind
    raise ConfigurationError("pass a Session, an Engine or a Connection")


def _typed(spec: ModelSpec, subject: str) -> Any:
    """``subject`` as the subject column's Python type (an int for integer keys)."""
    column = spec.model.__table__.c[spec.subject_column]
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return subject
    if python_type is int:
        try:
            return int(subject)
        except ValueError:
            raise ValidationError(
                f"{spec.table}.{spec.subject_column} holds integer learner ids", field="subject"
            ) from None
    return subject


def _naive(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(tzinfo=None)


def _json(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dt.datetime):
        if not is_aware(value):
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    return str(value)


def _forget(session: Session, spec: ModelSpec, key: Any) -> None:
    """Drop the session's object of a row that is gone or changed behind the ORM."""
    mapper = inspect(spec.model)
    obj = session.identity_map.get(mapper.identity_key_from_primary_key(identity(spec, key)))
    if obj is not None:
        state = instance_state(obj)
        if state.persistent:
            session.expunge(obj)


def _as_written(
    session: Session,
    connection: Connection,
    spec: ModelSpec,
    keys: Sequence[Any],
    values: Mapping[str, Any],
) -> None:
    """:func:`~learnprivacy.store._actions.as_written` for the anonymised rows ``keys``
    of ``spec`` (``values``: column name -> what the statement wrote); the caller's
    transaction is rolled back when one does not hold it."""
    table = spec.model.__table__
    names = sorted(values)
    query = select(*[table.c[name] for name in names]).where(key_in(spec, keys))
    try:
        as_written(connection.execute(query), names, values, spec.table)
    except IntegrityError:
        session.rollback()
        raise


def _every_row(
    session: Session, spec: ModelSpec, changed: int, keys: Sequence[Any], done: str
) -> None:
    """:func:`~learnprivacy.store._actions.every_row` for the rows ``keys`` of ``spec``,
    read and planned in the caller's transaction, which is rolled back when the database
    skipped some."""
    try:
        every_row(changed, len(keys), spec.table, done)
    except IntegrityError:
        session.rollback()
        raise

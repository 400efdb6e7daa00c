"""``SQLBackend``: the request book in SQL tables (SQLAlchemy Core, SQLite or PostgreSQL).

Importing this module imports SQLAlchemy; ``learnprivacy.requests`` itself does not.

The backend has its own three tables, created when missing, and can share the engine of a
:class:`~learnprivacy.store.Store` (pass the store) so requests and learning records live
in one database:

``lp_dsr_requests``
    one row per request: id, learner id, type, state, receipt and due dates (UTC), version,
    and the request's JSON form in ``body``;
``lp_dsr_history``
    the hash-chained entries, primary key ``(request_id, sequence)``, never personal;
``lp_dsr_facts``
    objections, directives, deaths and scheduled erasures, keyed by
    ``(learner_id, kind, key)``.

``body`` columns hold personal values (the requester's name, rectified values, the
directive's instructions). They are encrypted with the backend's
:class:`~learnprivacy.crypto.FieldCipher` (a Store's own by default); clear text only on
``plaintext=True``. Each request and each fact is encrypted under a data key of its
own (not the learner's), so erasing the learner, which shreds the learner's keys, leaves
the proof of the request readable; shredding that key removes the request's personal
parts when its own retention ends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    create_engine,
    insert,
    select,
    update,
)
from sqlalchemy import exc as sa_exc

from learnprivacy.crypto import FieldCipher
from learnprivacy.errors import ConfigurationError, IntegrityError, RequestStateError
from learnprivacy.requests._backend import Fact
from learnprivacy.requests._codec import request_from_dict, request_to_dict
from learnprivacy.requests._history import HistoryEntry
from learnprivacy.requests._model import SubjectRequest
from learnprivacy.requests._vocabulary import RequestState

__all__ = ["SQLBackend"]

#: The backend's own metadata (never the store's nor the application's).
METADATA = MetaData()

REQUESTS = Table(
    "lp_dsr_requests",
    METADATA,
    Column("id", String(255), primary_key=True),
    Column("learner_id", String(255), nullable=False, index=True),
    Column("type", String(32), nullable=False),
    Column("state", String(32), nullable=False, index=True),
    Column("received_at", DateTime, nullable=False),
    Column("due_at", DateTime, nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("retry_of", String(255), nullable=True),
    Column("body", Text, nullable=False),
)

HISTORY = Table(
    "lp_dsr_history",
    METADATA,
    Column("request_id", String(255), nullable=False),
    Column("sequence", Integer, nullable=False, autoincrement=False),
    Column("at", DateTime, nullable=False),
    Column("event", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("body", Text, nullable=False),
    PrimaryKeyConstraint("request_id", "sequence"),
)

FACTS = Table(
    "lp_dsr_facts",
    METADATA,
    Column("learner_id", String(255), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("key", String(255), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("body", Text, nullable=False),
    PrimaryKeyConstraint("learner_id", "kind", "key"),
)

_OPEN = [s.value for s in RequestState if not s.terminal]
_SEALED_MARK = "lp1."


def _utc(value: dt.datetime) -> dt.datetime:
    # Columns hold naive UTC, as the store's do, so comparisons are exact across offsets.
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _key_subject(kind: str, *parts: str) -> str:
    # A key subject of its own per request or fact, derived and short (the keyring caps
    # subjects at 255 characters): never the learner's, which erasure shreds.
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]
    return f"dsr-{kind}/{digest}"


def _engine_of(source: object) -> Engine:
    if isinstance(source, Engine):
        return source
    if isinstance(source, str):
        try:
            return create_engine(source)
        except sa_exc.ArgumentError:
            raise ConfigurationError("not a database URL") from None
    # A Store exposes its engine as ``store.engine``.
    engine = getattr(source, "engine", None)
    if isinstance(engine, Engine):
        return engine
    raise ConfigurationError("SQLBackend needs a database URL, an Engine or a Store")


class SQLBackend:
    """A :class:`~learnprivacy.requests.RequestBackend` in SQL tables.

    ``source`` is a database URL, a SQLAlchemy ``Engine``, or a
    :class:`~learnprivacy.store.Store` (whose engine is then shared). Tables are created when
    missing unless ``create=False``.

    **Encrypted by default.** Requests carry requesters' names, e-mail addresses and free
    text: they are stored encrypted with ``cipher``, or with the store's own cipher when
    ``source`` is a Store. Without either, pass ``plaintext=True`` to store them in clear
    (tests, throwaway books); otherwise ``ConfigurationError``.
    """

    def __init__(
        self,
        source: object,
        *,
        cipher: FieldCipher | None = None,
        plaintext: bool = False,
        create: bool = True,
    ) -> None:
        self._engine = _engine_of(source)
        if cipher is None and not plaintext:
            own = getattr(source, "cipher", None)
            if not isinstance(own, FieldCipher):
                raise ConfigurationError(
                    "SQLBackend stores requesters' identities and free text: give "
                    "cipher=FieldCipher(keyring) (a Store gives its own), or plaintext=True "
                    "to keep them in clear"
                )
            cipher = own
        self._cipher = cipher
        if create:
            METADATA.create_all(self._engine)

    def __repr__(self) -> str:
        return f"SQLBackend(dialect={self._engine.dialect.name!r})"

    @property
    def engine(self) -> Engine:
        """The engine written through."""
        return self._engine

    # -- bodies --------------------------------------------------------------------------

    def _seal(self, data: Mapping[str, Any], subject: str, context: str) -> str:
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        if self._cipher is None:
            return text
        return self._cipher.encrypt(text, subject=subject, context=context)

    def _open(self, body: str, subject: str, context: str) -> Any:
        if body.startswith(_SEALED_MARK):
            if self._cipher is None:
                raise ConfigurationError("stored requests are encrypted: give the backend a cipher")
            body = self._cipher.decrypt(body, subject=subject, context=context)
        return json.loads(body)

    def _request_body(self, request: SubjectRequest) -> str:
        return self._seal(
            request_to_dict(request),
            _key_subject("request", request.id),
            f"SubjectRequest/{request.id}",
        )

    def _request(self, request_id: str, body: str) -> SubjectRequest:
        data = self._open(body, _key_subject("request", request_id), f"SubjectRequest/{request_id}")
        return request_from_dict(data)

    @staticmethod
    def _row(request: SubjectRequest, body: str) -> dict[str, Any]:
        return {
            "id": request.id,
            "learner_id": request.learner_id,
            "type": request.type.value,
            "state": request.state.value,
            "received_at": _utc(request.received_at),
            "due_at": _utc(request.due_at),
            "version": request.version,
            "retry_of": request.retry_of,
            "body": body,
        }

    @staticmethod
    def _entry_row(entry: HistoryEntry) -> dict[str, Any]:
        return {
            "request_id": entry.request_id,
            "sequence": entry.sequence,
            "at": _utc(entry.at),
            "event": entry.event,
            "hash": entry.hash,
            "body": json.dumps(entry.to_dict(), sort_keys=True, separators=(",", ":")),
        }

    # -- requests ------------------------------------------------------------------------

    def add_request(self, request: SubjectRequest, entry: HistoryEntry) -> None:
        """Store a new request and its first entry in one transaction."""
        row = self._row(request, self._request_body(request))
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(REQUESTS), [row])
                connection.execute(insert(HISTORY), [self._entry_row(entry)])
        except sa_exc.IntegrityError:
            raise IntegrityError("a request with this id already exists") from None

    def replace_request(self, request: SubjectRequest, entry: HistoryEntry) -> None:
        """Store the next version and its entry, if nobody moved the request meanwhile."""
        row = self._row(request, self._request_body(request))
        del row["id"]
        try:
            with self._engine.begin() as connection:
                result = connection.execute(
                    update(REQUESTS)
                    .where(REQUESTS.c.id == request.id)
                    .where(REQUESTS.c.version == request.version - 1)
                    .values(**row)
                )
                if result.rowcount != 1:
                    raise RequestStateError("the request was changed concurrently; reload it")
                connection.execute(insert(HISTORY), [self._entry_row(entry)])
        except sa_exc.IntegrityError:
            raise RequestStateError("the request was changed concurrently; reload it") from None

    def get_request(self, request_id: str) -> SubjectRequest | None:
        """The current version, or ``None``."""
        with self._engine.connect() as connection:
            body = connection.execute(
                select(REQUESTS.c.body).where(REQUESTS.c.id == request_id)
            ).scalar()
        return None if body is None else self._request(request_id, body)

    def list_requests(
        self,
        *,
        learner_id: str | None = None,
        open_only: bool = False,
        due_before: dt.datetime | None = None,
        states: Collection[RequestState] | None = None,
    ) -> tuple[SubjectRequest, ...]:
        """Requests, oldest receipt first (the filters run in SQL)."""
        query = select(REQUESTS.c.id, REQUESTS.c.body).order_by(
            REQUESTS.c.received_at, REQUESTS.c.id
        )
        if learner_id is not None:
            query = query.where(REQUESTS.c.learner_id == learner_id)
        if open_only:
            query = query.where(REQUESTS.c.state.in_(_OPEN))
        if due_before is not None:
            query = query.where(REQUESTS.c.due_at < _utc(due_before))
        if states is not None:
            query = query.where(REQUESTS.c.state.in_([s.value for s in states]))
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return tuple(self._request(row.id, row.body) for row in rows)

    def history(self, request_id: str) -> tuple[HistoryEntry, ...]:
        """The entries in sequence order."""
        query = (
            select(HISTORY.c.body)
            .where(HISTORY.c.request_id == request_id)
            .order_by(HISTORY.c.sequence)
        )
        with self._engine.connect() as connection:
            bodies = connection.execute(query).scalars().all()
        return tuple(HistoryEntry.from_dict(json.loads(body)) for body in bodies)

    # -- facts ---------------------------------------------------------------------------

    def _fact_context(self, learner_id: str, kind: str, key: str) -> tuple[str, str]:
        return _key_subject("fact", learner_id, kind, key), f"Fact/{kind}/{key}"

    def put_fact(self, fact: Fact) -> None:
        """Store or replace a fact."""
        subject, context = self._fact_context(fact.learner_id, fact.kind, fact.key)
        row = {
            "learner_id": fact.learner_id,
            "kind": fact.kind,
            "key": fact.key,
            "at": _utc(fact.at),
            "body": self._seal(
                {"at": fact.at.isoformat(), "data": dict(fact.data)}, subject, context
            ),
        }
        where = (
            (FACTS.c.learner_id == fact.learner_id)
            & (FACTS.c.kind == fact.kind)
            & (FACTS.c.key == fact.key)
        )
        with self._engine.begin() as connection:
            changed = connection.execute(update(FACTS).where(where).values(**row)).rowcount
            if changed == 0:
                connection.execute(insert(FACTS), [row])

    def _fact(self, learner_id: str, kind: str, key: str, body: str) -> Fact:
        subject, context = self._fact_context(learner_id, kind, key)
        data = self._open(body, subject, context)
        return Fact(
            learner_id=learner_id,
            kind=kind,
            key=key,
            at=dt.datetime.fromisoformat(data["at"]),
            data=data["data"],
        )

    def get_fact(self, learner_id: str, kind: str, key: str) -> Fact | None:
        """One fact, or ``None``."""
        query = select(FACTS.c.body).where(
            (FACTS.c.learner_id == learner_id) & (FACTS.c.kind == kind) & (FACTS.c.key == key)
        )
        with self._engine.connect() as connection:
            body = connection.execute(query).scalar()
        return None if body is None else self._fact(learner_id, kind, key, body)

    def list_facts(self, kind: str, *, learner_id: str | None = None) -> tuple[Fact, ...]:
        """Facts of one kind, ordered by learner then key."""
        query = (
            select(FACTS.c.learner_id, FACTS.c.key, FACTS.c.body)
            .where(FACTS.c.kind == kind)
            .order_by(FACTS.c.learner_id, FACTS.c.key)
        )
        if learner_id is not None:
            query = query.where(FACTS.c.learner_id == learner_id)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return tuple(self._fact(row.learner_id, kind, row.key, row.body) for row in rows)

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
    ``(learner_id, kind, key)``;
``lp_dsr_meta``
    how the ``learner_id`` columns name learners (``keyed`` or ``clear``).

**No learner id in clear.** With a cipher, the ``learner_id`` columns hold a keyed
pseudonym of the learner id (``p1_...``, the keyring's ``learnprivacy-requests`` domain),
never the id itself; the id is inside the encrypted body. A book written in clear (by
``plaintext=True`` or an earlier version) is converted when opened with a cipher.
:meth:`SQLBackend.find_in_clear` reads every stored cell back and names those that still
show a learner's id, name or e-mail address in clear: an erasure request runs it before it
is reported completed.

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
import json
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    create_engine,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy import exc as sa_exc

from learnprivacy.crypto import FieldCipher
from learnprivacy.errors import ConfigurationError, IntegrityError, RequestStateError
from learnprivacy.requests._backend import Fact, RequestQuery
from learnprivacy.requests._bodies import (
    SealedBook,
    canonical_json,
    fact_context,
    fact_from_data,
    learner_refs,
)
from learnprivacy.requests._history import HistoryEntry
from learnprivacy.requests._model import SubjectRequest

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

META = Table(
    "lp_dsr_meta",
    METADATA,
    Column("name", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)

_SEALED_MARK = "lp1."
_LEARNER_COLUMN = "learner_column"


def _utc(value: dt.datetime) -> dt.datetime:
    # Columns hold naive UTC, as the store's do, so comparisons are exact across offsets.
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _engine_of(source: object) -> Engine:
    if isinstance(source, Engine):
        return source
    if isinstance(source, str):
        try:
            return create_engine(source, hide_parameters=True)
        except sa_exc.ArgumentError:
            raise ConfigurationError("not a database URL") from None
    # A Store exposes its engine as ``store.engine``.
    engine = getattr(source, "engine", None)
    if isinstance(engine, Engine):
        return engine
    raise ConfigurationError("SQLBackend needs a database URL, an Engine or a Store")


class SQLBackend(SealedBook):
    """A :class:`~learnprivacy.requests.RequestBackend` in SQL tables.

    ``source`` is a database URL, a SQLAlchemy ``Engine``, or a
    :class:`~learnprivacy.store.Store` (whose engine is then shared). Tables are created when
    missing unless ``create=False``.

    **Encrypted by default.** Requests carry requesters' names, e-mail addresses and free
    text: they are stored encrypted with ``cipher``, or with the store's own cipher when
    ``source`` is a Store. Without either, pass ``plaintext=True`` to store them in clear
    (tests, throwaway books); otherwise ``ConfigurationError``.
    """

    _history_table = HISTORY.name

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
        self._refs = None if cipher is None else learner_refs(cipher.keyring)
        if create:
            try:
                METADATA.create_all(self._engine)
                self._convert_learner_columns()
            except BaseException:
                if isinstance(source, str):
                    self._engine.dispose()  # ours: no connection left open
                raise

    def __repr__(self) -> str:
        return f"SQLBackend(dialect={self._engine.dialect.name!r})"

    @property
    def engine(self) -> Engine:
        """The engine written through."""
        return self._engine

    # -- learner references --------------------------------------------------------------

    def _convert_learner_columns(self) -> None:
        """Replace the clear learner ids of a book written in clear by their pseudonyms
        (and re-seal its facts under keys named after them), once, in one transaction.

        Two processes opening a new book at once may both try to write the marker: the
        loser's transaction fails on the primary key and is run again, finding it.
        """
        try:
            self._convert_once()
        except sa_exc.IntegrityError:
            self._convert_once()

    def _convert_once(self) -> None:
        wanted = "clear" if self._refs is None else "keyed"
        with self._engine.begin() as connection:
            found = connection.execute(
                select(META.c.value).where(META.c.name == _LEARNER_COLUMN)
            ).scalar()
            if found == wanted or (found is None and wanted == "clear"):
                if found is None:
                    connection.execute(insert(META), [{"name": _LEARNER_COLUMN, "value": wanted}])
                return
            if found is None and not self._has_rows(connection):
                connection.execute(insert(META), [{"name": _LEARNER_COLUMN, "value": wanted}])
                return
            if wanted == "clear":
                raise ConfigurationError(
                    "the request book names learners by keyed reference: give it the cipher "
                    "it was written with"
                )
            if connection.dialect.name == "sqlite":
                # The clear ids must not stay behind in freed pages.
                connection.exec_driver_sql("PRAGMA secure_delete = ON")
            for row in connection.execute(select(REQUESTS.c.id, REQUESTS.c.learner_id)).all():
                connection.execute(
                    update(REQUESTS)
                    .where(REQUESTS.c.id == row.id)
                    .values(learner_id=self._ref(row.learner_id))
                )
            for row in connection.execute(select(FACTS)).all():
                # Facts written before learner references were sealed under the id.
                data = self._open(row.body, *fact_context(row.learner_id, row.kind, row.key))
                fact = fact_from_data(row.learner_id, row.kind, row.key, data)
                connection.execute(
                    delete(FACTS).where(
                        (FACTS.c.learner_id == row.learner_id)
                        & (FACTS.c.kind == row.kind)
                        & (FACTS.c.key == row.key)
                    )
                )
                connection.execute(insert(FACTS), [self._fact_row(fact)])
            connection.execute(delete(META).where(META.c.name == _LEARNER_COLUMN))
            connection.execute(insert(META), [{"name": _LEARNER_COLUMN, "value": wanted}])

    @staticmethod
    def _has_rows(connection: Connection) -> bool:
        return any(
            connection.execute(select(table).limit(1)).first() is not None
            for table in (REQUESTS, FACTS)
        )

    # -- bodies --------------------------------------------------------------------------

    def _seal(self, data: Mapping[str, Any], subject: str, context: str) -> str:
        text = canonical_json(data)
        if self._cipher is None:
            return text
        return self._cipher.encrypt(text, subject=subject, context=context)

    def _open(self, body: str, subject: str, context: str) -> Any:
        if body.startswith(_SEALED_MARK):
            if self._cipher is None:
                raise ConfigurationError("stored requests are encrypted: give the backend a cipher")
            body = self._cipher.decrypt(body, subject=subject, context=context)
        return json.loads(body)

    def _stamp(self, at: dt.datetime) -> dt.datetime:
        return _utc(at)

    # -- requests ------------------------------------------------------------------------

    def add_request(self, request: SubjectRequest, entry: HistoryEntry) -> None:
        """Store a new request and its first entry in one transaction."""
        row = {"id": request.id, **self._request_columns(request)}
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(REQUESTS), [row])
                connection.execute(insert(HISTORY), [self._history_columns(entry)])
        except sa_exc.IntegrityError:
            raise IntegrityError("a request with this id already exists") from None

    def replace_request(self, request: SubjectRequest, entry: HistoryEntry) -> None:
        """Store the next version and its entry, if nobody moved the request meanwhile."""
        row = self._request_columns(request)
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
                connection.execute(insert(HISTORY), [self._history_columns(entry)])
        except sa_exc.IntegrityError:
            raise RequestStateError("the request was changed concurrently; reload it") from None

    def get_request(self, request_id: str) -> SubjectRequest | None:
        """The current version, or ``None``."""
        with self._engine.connect() as connection:
            body = connection.execute(
                select(REQUESTS.c.body).where(REQUESTS.c.id == request_id)
            ).scalar()
        return None if body is None else self._request(request_id, body)

    def list_requests(self, query: RequestQuery) -> tuple[SubjectRequest, ...]:
        """The requests ``query`` selects, oldest receipt first (the filters run in SQL)."""
        statement = select(REQUESTS.c.id, REQUESTS.c.body).order_by(
            REQUESTS.c.received_at, REQUESTS.c.id
        )
        if query.learner_id is not None:
            statement = statement.where(REQUESTS.c.learner_id == self._ref(query.learner_id))
        states = query.state_values()
        if states is not None:
            statement = statement.where(REQUESTS.c.state.in_(states))
        if query.due_before is not None:
            statement = statement.where(REQUESTS.c.due_at < _utc(query.due_before))
        with self._engine.connect() as connection:
            rows = connection.execute(statement).all()
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
        return self._history_of(bodies)

    # -- facts ---------------------------------------------------------------------------

    def _fact_row(self, fact: Fact) -> dict[str, Any]:
        ref, body = self.sealed_fact_body(fact)
        return {
            "learner_id": ref,
            "kind": fact.kind,
            "key": fact.key,
            "at": self._stamp(fact.at),
            "body": body,
        }

    def put_fact(self, fact: Fact) -> None:
        """Store or replace a fact."""
        row = self._fact_row(fact)
        where = (
            (FACTS.c.learner_id == row["learner_id"])
            & (FACTS.c.kind == fact.kind)
            & (FACTS.c.key == fact.key)
        )
        with self._engine.begin() as connection:
            changed = connection.execute(update(FACTS).where(where).values(**row)).rowcount
            if changed == 0:
                connection.execute(insert(FACTS), [row])

    def get_fact(self, learner_id: str, kind: str, key: str) -> Fact | None:
        """One fact, or ``None``."""
        ref = self._ref(learner_id)
        query = select(FACTS.c.body).where(
            (FACTS.c.learner_id == ref) & (FACTS.c.kind == kind) & (FACTS.c.key == key)
        )
        with self._engine.connect() as connection:
            body = connection.execute(query).scalar()
        return None if body is None else self._fact(ref, kind, key, body)

    def list_facts(self, kind: str, *, learner_id: str | None = None) -> tuple[Fact, ...]:
        """Facts of one kind, ordered by learner then key."""
        query = select(FACTS.c.learner_id, FACTS.c.key, FACTS.c.body).where(FACTS.c.kind == kind)
        if learner_id is not None:
            query = query.where(FACTS.c.learner_id == self._ref(learner_id))
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        facts = (self._fact(row.learner_id, kind, row.key, row.body) for row in rows)
        # Ordered here: the column holds references, whose order is not the ids'.
        return tuple(sorted(facts, key=lambda f: (f.learner_id, f.key)))

    # -- checking what is stored ---------------------------------------------------------

    def _stored_cells(self) -> Iterator[tuple[str, str, object]]:
        with self._engine.connect() as connection:
            for table in (REQUESTS, HISTORY, FACTS):
                for row in connection.execute(select(table)):
                    for column, cell in zip(table.columns, row, strict=True):
                        yield table.name, column.name, cell

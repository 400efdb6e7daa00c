"""The SQL backend of the request book: persistence, encryption at rest, shared engines,
on a SQLite file and on a real PostgreSQL server.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, inspect, text

from learnprivacy.crypto import FieldCipher, Keyring
from learnprivacy.errors import ConfigurationError, DecryptionError
from learnprivacy.requests import (
    Channel,
    DeathAction,
    Executor,
    FieldChange,
    MemoryBackend,
    PostMortemDirective,
    ProofMethod,
    RectificationParams,
    RequestBook,
    Requester,
    RequestState,
    RequestType,
)
from learnprivacy.requests._backend import RequestQuery
from learnprivacy.requests.sql import SQLBackend
from tests import assert_stale_move_refused, loaded_after, packages_in, receive_request

if TYPE_CHECKING:
    from learnprivacy.testing.postgres import TemporaryPostgres

UTC = dt.UTC
T = dt.datetime(2026, 2, 10, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLite file, then a fresh database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'requests.db'}"
        return
    server: TemporaryPostgres = request.getfixturevalue("postgres_server")
    name = f"dsr_{dt.datetime.now(UTC).strftime('%H%M%S%f')}"
    yield server.create_database(name)
    server.drop_database(name)


def fill(book: RequestBook) -> str:
    """A rectification in progress and a directive fact, with personal values."""
    change = FieldChange(
        record_type="Learner", record_id="L1", field="email", value="ana.new@example.org"
    )
    request = receive_request(
        book,
        RequestType.RECTIFICATION,
        received_at=T,
        channel=Channel.POST,
        requester=Requester.subject("Ana Silva", "ana@example.org"),
        params=RectificationParams(changes=[change]),
        request_id="R-1",
    )
    book.verify_identity(request, method=ProofMethod.SIGNED_LETTER, now=T)
    book.register_directive(
        "L1",
        PostMortemDirective(
            on_death=DeathAction.ERASE, executor=Executor(name="Jean Dupont"), instructions="x"
        ),
        request_id="R-0",
        now=T,
    )
    return request.id


def test_requests_survive_reopening(url: str) -> None:
    """A new backend on the same database sees the same requests, histories and facts."""
    keyring = Keyring.generate()
    first = RequestBook(SQLBackend(url, cipher=FieldCipher(keyring)))
    request_id = fill(first)
    stored = first.get(request_id)
    first.backend.engine.dispose()  # type: ignore[attr-defined]
    second = RequestBook(SQLBackend(url, cipher=FieldCipher(keyring)))
    assert second.get(request_id) == stored
    assert second.verify(request_id)
    assert [e.event for e in second.history(request_id)] == ["received", "identity_verified"]
    directive = second.directive_of("L1")
    assert directive is not None
    assert directive.directive.executor == Executor(name="Jean Dupont")
    assert second.requests(open_only=True) == (stored,)
    assert second.requests(learner_id="L2") == ()
    assert stored.received_at == T
    second.backend.engine.dispose()  # type: ignore[attr-defined]


def test_backends_select_the_same_requests(url: str) -> None:
    """The memory and SQL backends share one query rule: ``open_only`` narrows ``states``
    (a cancelled request asked for by state is still not open), ``due_before`` is strict."""
    sql = SQLBackend(url, cipher=FieldCipher(Keyring.generate()))
    books = [RequestBook(MemoryBackend()), RequestBook(sql)]
    for book in books:
        for number, learner in enumerate(["L1", "L2", "L1"]):
            received = T + dt.timedelta(days=number)
            receive_request(
                book, learner_id=learner, received_at=received, request_id=f"R-{number}"
            )
        book.cancel("R-1", now=T + dt.timedelta(days=3))
    due = books[0].current("R-1").due_at
    queries = {
        RequestQuery(): ["R-0", "R-1", "R-2"],
        RequestQuery(open_only=True): ["R-0", "R-2"],
        RequestQuery(states={RequestState.CANCELLED, RequestState.RECEIVED}): ["R-0", "R-1", "R-2"],
        RequestQuery(open_only=True, states={RequestState.CANCELLED}): [],
        RequestQuery(learner_id="L1", states=[RequestState.RECEIVED]): ["R-0", "R-2"],
        RequestQuery(due_before=due): ["R-0"],
    }
    for query, expected in queries.items():
        for book in books:
            assert [r.id for r in book.backend.list_requests(query)] == expected, query
    sql.engine.dispose()


def test_personal_parts_are_encrypted_at_rest(url: str) -> None:
    """No requester name, rectified value or executor name is stored in clear."""
    backend = SQLBackend(url, cipher=FieldCipher(Keyring.generate()))
    fill(RequestBook(backend))
    with backend.engine.connect() as connection:
        dump = " ".join(
            str(row)
            for table in ("lp_dsr_requests", "lp_dsr_history", "lp_dsr_facts")
            for row in connection.execute(text(f"SELECT * FROM {table}"))
        )
    for value in ("Ana", "ana@example.org", "ana.new", "Jean", "Dupont"):
        assert value not in dump
    assert "identity_verified" in dump  # the history stays readable for audits
    backend.engine.dispose()


def test_shredding_the_learner_leaves_requests_readable(url: str) -> None:
    """Erasure shreds the learner's keys; the request, kept as proof, stays readable."""
    keyring = Keyring.generate()
    book = RequestBook(SQLBackend(url, cipher=FieldCipher(keyring)))
    request_id = fill(book)
    keyring.shred("L1")
    assert book.get(request_id).requester.name == "Ana Silva"
    assert book.directive_of("L1") is not None
    book.backend.engine.dispose()  # type: ignore[attr-defined]


def test_encrypted_rows_need_the_cipher(url: str) -> None:
    """Opening or reading encrypted rows without a cipher is a configuration error, not
    garbage: the book names learners by keyed reference, so it is refused at once."""
    backend = SQLBackend(url, cipher=FieldCipher(Keyring.generate()))
    request_id = fill(RequestBook(backend))
    backend.engine.dispose()
    with pytest.raises(ConfigurationError, match="cipher"):
        SQLBackend(url, plaintext=True)
    plain = SQLBackend(url, plaintext=True, create=False)
    with pytest.raises(ConfigurationError):
        plain.get_request(request_id)
    plain.engine.dispose()


def test_stale_version_is_refused(url: str) -> None:
    """Two books on one database: the slower writer's move is refused, not merged."""
    keyring = Keyring.generate()
    one = RequestBook(SQLBackend(url, cipher=FieldCipher(keyring)))
    two = RequestBook(SQLBackend(url, cipher=FieldCipher(keyring), create=False))
    request = receive_request(
        one,
        RequestType.ACCESS,
        learner_id="L9",
        received_at=T,
        channel=Channel.IN_PERSON,
        requester=Requester.subject("Zoé"),
    )
    stale = two.get(request.id)
    one.cancel(request, now=T)
    first = two.history(request)[0]
    state = assert_stale_move_refused(two, stale, first, event="identity_requested", at=T)
    assert state is RequestState.CANCELLED
    one.backend.engine.dispose()  # type: ignore[attr-defined]
    two.backend.engine.dispose()  # type: ignore[attr-defined]


def test_backend_accepts_engine_and_store(tmp_path: Path) -> None:
    """An Engine or a Store can be given; the tables join the store's database."""
    from learnprivacy.store import Store

    engine = create_engine(f"sqlite:///{tmp_path / 'e.db'}")
    SQLBackend(engine, plaintext=True)
    assert "lp_dsr_requests" in inspect(engine).get_table_names()
    engine.dispose()
    store = Store(f"sqlite:///{tmp_path / 's.db'}", keyring=Keyring.generate())
    backend = SQLBackend(store)
    assert backend.engine is store._db.engine
    names = inspect(store._db.engine).get_table_names()
    assert {"lp_dsr_requests", "lp_dsr_history", "lp_dsr_facts", "lp_learner"} <= set(names)
    store.close()
    with pytest.raises(ConfigurationError):
        SQLBackend(42, plaintext=True)
    with pytest.raises(ConfigurationError):
        SQLBackend("not a url", plaintext=True)


def test_the_book_is_encrypted_by_default(tmp_path: Path) -> None:
    """SQLBackend(store), the form the docs show, encrypts requesters' identities with the
    store's cipher; a backend with neither a cipher nor plaintext=True is refused."""
    from learnprivacy.store import Store

    store = Store(f"sqlite:///{tmp_path / 's.db'}", keyring=Keyring.generate())
    book = RequestBook(SQLBackend(store))
    receive_request(
        book,
        RequestType.ACCESS,
        received_at=T,
        requester=Requester.subject("Zoé Quintessence-Marchal"),
    )
    store._db.checkpoint()
    store.close()
    raw = (tmp_path / "s.db").read_bytes()
    assert b"Quintessence" not in raw
    with pytest.raises(ConfigurationError, match="plaintext=True"):
        SQLBackend(f"sqlite:///{tmp_path / 'other.db'}")


def test_importing_requests_does_not_import_sqlalchemy() -> None:
    """`import learnprivacy.requests` stays free of SQLAlchemy; the SQL module loads it."""
    light, sql = loaded_after("import learnprivacy.requests", "import learnprivacy.requests.sql")
    assert packages_in(light, ("sqlalchemy",)) == set()
    assert "sqlalchemy" in sql


def test_a_named_time_zone_survives_the_store(url: str) -> None:
    """A request received in Europe/Paris in winter comes back in Europe/Paris, so its
    deadline, after the change to summer time, is the end of the day in Paris (+02:00);
    with the stored offset alone it moved by an hour. The holiday calendar survives too."""
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    keyring = Keyring.generate()
    book = RequestBook(SQLBackend(url, cipher=FieldCipher(keyring)), calendar="BE")
    request = receive_request(
        book,
        RequestType.ACCESS,
        received_at=dt.datetime(2026, 3, 10, 10, tzinfo=paris),
        requester=Requester.subject("Ana Silva"),
        request_id="R-TZ",
    )
    book.backend.engine.dispose()  # type: ignore[attr-defined]
    again = RequestBook(SQLBackend(url, cipher=FieldCipher(keyring))).get("R-TZ")
    assert again.received_at.tzinfo == paris
    assert again.due_at == request.due_at == dt.datetime(2026, 4, 10, 23, 59, 59, 999_999, paris)
    assert again.due_at.utcoffset() == dt.timedelta(hours=2)
    assert again.calendar.value == "BE"


def test_stored_bodies_keep_their_key_subjects(tmp_path: Path) -> None:
    """Bodies are sealed under ``dsr-request/…`` and ``dsr-fact/…`` key subjects derived
    from the request id (or the fact's row): books written before stay readable, and a
    change of derivation, which would strand them, fails here."""
    import hashlib
    import json

    keyring = Keyring.generate()
    cipher = FieldCipher(keyring)
    backend = SQLBackend(f"sqlite:///{tmp_path / 'requests.db'}", cipher=cipher)
    fill(RequestBook(backend))
    with backend.engine.connect() as connection:
        body = connection.execute(text("SELECT body FROM lp_dsr_requests WHERE id = 'R-1'")).one()
        facts = connection.execute(text("SELECT learner_id, kind, key, body FROM lp_dsr_facts"))
        fact_rows = facts.all()
    backend.engine.dispose()
    subject = "dsr-request/aee554ed8db7f7e64d5d97ad17b52c51471982f7"  # sha256("R-1")[:40]
    opened = json.loads(cipher.decrypt(body[0], subject=subject, context="SubjectRequest/R-1"))
    assert opened["id"] == "R-1"
    with pytest.raises(DecryptionError):
        cipher.decrypt(body[0], subject=subject, context="SubjectRequest/R-0")
    assert fact_rows
    for ref, kind, key, sealed in fact_rows:
        digest = hashlib.sha256("\x00".join((ref, kind, key)).encode()).hexdigest()[:40]
        data = json.loads(
            cipher.decrypt(sealed, subject=f"dsr-fact/{digest}", context=f"Fact/{kind}/{key}")
        )
        assert data["learner_id"] == "L1"
        assert dt.datetime.fromisoformat(data["at"]) == T

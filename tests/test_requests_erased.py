"""Nothing of an erased requester remains in the request book.

A learner files requests (an access, then an erasure) with their name and e-mail address;
after the erasure, the raw bytes of the request database (a SQLite file with its WAL, or a
PostgreSQL database's pages, dead tuples included, its relation files and the server's
WAL) show neither their learner id, nor their name, nor their address. The erasure
request checks the stored book itself before it is reported completed, and a book
tampered with (the address written back in clear) fails that check.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from learnprivacy.crypto import FieldCipher, Keyring
from learnprivacy.records import Learner
from learnprivacy.requests import (
    DeathAction,
    Executor,
    PostMortemDirective,
    ProofMethod,
    RequestBook,
    Requester,
    RequestExecutor,
    RequestState,
    RequestType,
    store_audit_sink,
)
from learnprivacy.requests.sql import SQLBackend
from learnprivacy.store import Store
from tests import receive_request
from tests.store_fixtures import NOW, dead_tuples, psql, raw_bytes, relation_files, wal_files

if TYPE_CHECKING:
    from learnprivacy.testing.postgres import TemporaryPostgres


class Person:
    """A learner whose id, name and address are distinctive enough to find in raw bytes."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.id = f"Lrq{tag}"
        self.given = f"Ysolde{tag[:4]}"
        self.family = f"Quarnec{tag[4:]}"
        self.email = f"ysolde.{tag}@example.org"

    @property
    def name(self) -> str:
        return f"{self.given} {self.family}"

    def values(self) -> list[bytes]:
        """What must not be left in clear: each as text, and the name parts alone."""
        return [v.encode() for v in (self.id, self.given, self.family, self.email)]

    def learner(self) -> Learner:
        return Learner(
            id=self.id,
            username=f"u{self.id}",
            email=self.email,
            given_name=self.given,
            family_name=self.family,
            created_at=NOW - dt.timedelta(days=400),
        )


def _book(store: Store, backend: SQLBackend | None = None) -> RequestBook:
    return RequestBook(backend or SQLBackend(store), audit_sink=store_audit_sink(store))


def _receive(book: RequestBook, kind: RequestType, person: Person) -> Any:
    """A request filed by the person, identity checked."""
    request = receive_request(
        book,
        kind,
        learner_id=person.id,
        received_at=NOW,
        requester=Requester.subject(person.name, person.email),
    )
    return book.verify_identity(request, method=ProofMethod.AUTHENTICATED_SESSION, now=NOW)


def _file(store: Store, person: Person, backend: SQLBackend | None = None) -> Any:
    """The person asks for access, registers a directive, then asks for erasure; returns
    the book and the erasure request, not run yet."""
    store.add(person.learner(), now=NOW)
    book = _book(store, backend)
    _receive(book, RequestType.ACCESS, person)
    book.register_directive(
        person.id,
        PostMortemDirective(
            on_death=DeathAction.ERASE, executor=Executor(name=person.name), instructions="x"
        ),
        request_id=f"D-{person.id[3:]}",
        now=NOW,
    )
    return book, _receive(book, RequestType.ERASURE, person)


def _file_and_erase(store: Store, person: Person, backend: SQLBackend | None = None) -> Any:
    """:func:`_file`, then the erasure runs; returns the book and the request."""
    book, erasure = _file(store, person, backend)
    return book, RequestExecutor(book, store=store).execute(erasure, now=NOW)


def test_sqlite_request_book_keeps_no_erased_requester_in_clear(tmp_path: Path) -> None:
    """Raw bytes of the records file (which holds the book), its WAL and the key file
    after an erasure: no learner id, name or address of the erased requester. The learner
    id used to stay in lp_dsr_requests.learner_id."""
    person, other = Person(), Person()
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    store = Store(url, keyring=Keyring.generate(), clock=lambda: NOW)
    try:
        store.add(other.learner(), now=NOW)
        book, erased = _file_and_erase(store, person)
        assert erased.state is RequestState.COMPLETED, erased.failure
        assert erased.step("verify_request_book") is not None
        # The proof stays: the requests can still be read and listed by learner.
        assert {r.type for r in book.requests(learner_id=person.id)} == {
            RequestType.ACCESS,
            RequestType.ERASURE,
        }
        assert book.directive_of(person.id) is not None
    finally:
        store.close()
    data = raw_bytes(url) + raw_bytes(f"sqlite:///{tmp_path / 'lms.keys.db'}")
    for value in person.values():
        assert value not in data, value
    assert other.email.encode() not in data  # encrypted, as every learner's


@pytest.mark.postgres
def test_postgresql_request_book_keeps_no_erased_requester_in_clear(
    postgres_server: TemporaryPostgres, tmp_path: Path
) -> None:
    """The same on PostgreSQL, the book in a database of its own: its pages (dead tuples
    included) and relation files after VACUUM and CHECKPOINT show no learner id, name or
    address; the server's pg_wal shows no name or address. (The WAL does show the learner
    id: the records database on the same server keeps learner ids in clear, by design.)"""
    person = Person()
    name = f"dsr_erased_{uuid.uuid4().hex[:10]}"
    store = Store(
        postgres_server.create_database(name),
        keyring=Keyring.generate(),
        keys=f"sqlite:///{tmp_path / 'k.db'}",
    )
    book_db = postgres_server.create_database(name + "_book")
    backend = SQLBackend(book_db, cipher=store.cipher)
    try:
        _, erased = _file_and_erase(store, person, backend=backend)
        assert erased.state is RequestState.COMPLETED, erased.failure
    finally:
        backend.engine.dispose()
        store.close()
    psql(postgres_server, name + "_book", "VACUUM")
    pages = dead_tuples(postgres_server, name + "_book")
    files = relation_files(postgres_server, name + "_book")
    wal = wal_files(postgres_server)
    for value in person.values():
        assert value not in pages + files, value
    for value in (person.email.encode(), person.given.encode(), person.family.encode()):
        assert value not in wal, value
    postgres_server.drop_database(name)
    postgres_server.drop_database(name + "_book")


@pytest.mark.parametrize(
    "tamper",
    [
        'UPDATE lp_dsr_facts SET body = \'{"note": "{email}"}\'',
        "UPDATE lp_dsr_facts SET key = '{email}'",
        "UPDATE lp_dsr_requests SET retry_of = 'asked by {family}' WHERE type = 'access'",
        "UPDATE lp_dsr_facts SET learner_id = '{id}'",
        "UPDATE lp_dsr_history SET event = '{given}' WHERE sequence = 1",
    ],
)
def test_a_requester_written_back_in_clear_fails_the_erasure(
    sqlite_store: Store, tamper: str
) -> None:
    """Someone writes the requester back in clear into the book before the erasure runs:
    the erasure request FAILS at its check, naming where (never the value), instead of
    being reported completed. Before the check existed it completed."""
    person = Person()
    book, erasure = _file(sqlite_store, person)
    statement = tamper
    for key, value in {
        "email": person.email,
        "family": person.family,
        "id": person.id,
        "given": person.given,
    }.items():
        statement = statement.replace("{" + key + "}", value)
    with sqlite_store.engine.begin() as connection:
        assert connection.execute(sa.text(statement)).rowcount >= 1
    done = RequestExecutor(book, store=sqlite_store).execute(erasure, now=NOW)
    assert done.state is RequestState.FAILED
    assert done.failure is not None
    assert done.failure.step == "verify_request_book"
    assert "lp_dsr_" in done.failure.error
    for value in (person.email, person.family, person.given, person.id):
        assert value not in done.failure.error


def test_the_check_catches_an_address_written_back_after_the_erasure(
    sqlite_store: Store,
) -> None:
    """find_in_clear on a completed erasure's book is empty; the address written back in
    clear (as a history detail, or as a request body in clear) is found again."""
    person = Person()
    book, erased = _file_and_erase(sqlite_store, person)
    assert erased.state is RequestState.COMPLETED, erased.failure
    backend = book.backend
    assert isinstance(backend, SQLBackend)
    values = [person.name, person.email, person.given, person.family]
    assert backend.find_in_clear(person.id, values) == ()
    with sqlite_store.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE lp_dsr_requests SET body = :body WHERE type = 'access'"),
            {"body": '{"requester": {"email": "' + person.email.upper() + '"}}'},
        )
    assert backend.find_in_clear(person.id, values) == ("lp_dsr_requests.body",)


def test_a_book_written_in_clear_is_converted_when_opened_with_a_cipher(
    tmp_path: Path,
) -> None:
    """A book written by plaintext=True (or an earlier version: learner ids in clear in
    its columns, facts sealed under keys named after the id) is converted at open: the
    columns then hold references, every request and fact still reads back."""
    url = f"sqlite:///{tmp_path / 'book.db'}"
    person = Person()
    plain = RequestBook(SQLBackend(url, plaintext=True))
    receive_request(
        plain,
        RequestType.ACCESS,
        learner_id=person.id,
        received_at=NOW,
        requester=Requester.subject(person.name, person.email),
        request_id="R-1",
    )
    plain.register_directive(
        person.id, PostMortemDirective(on_death=DeathAction.ERASE), request_id="D-1", now=NOW
    )
    plain.backend.engine.dispose()  # type: ignore[attr-defined]
    cipher = FieldCipher(Keyring.generate())
    keyed = RequestBook(SQLBackend(url, cipher=cipher))
    assert keyed.get("R-1") is not None
    assert [r.id for r in keyed.requests(learner_id=person.id)] == ["R-1"]
    directive = keyed.directive_of(person.id)
    assert directive is not None
    assert directive.learner_id == person.id
    engine = keyed.backend.engine  # type: ignore[attr-defined]
    with engine.connect() as connection:
        columns = (
            connection.execute(
                sa.text(
                    "SELECT learner_id FROM lp_dsr_requests "
                    "UNION ALL SELECT learner_id FROM lp_dsr_facts"
                )
            )
            .scalars()
            .all()
        )
    assert columns
    assert all(c.startswith("p1_") for c in columns)
    engine.dispose()


def test_a_marker_written_meanwhile_by_another_opener_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes opening a new book at once both find no marker and both write it:
    the loser's insert hits the primary key. Simulated by writing the marker between the
    read and the insert; the open must succeed (it raised IntegrityError before)."""
    url = f"sqlite:///{tmp_path / 'book.db'}"
    calls: list[int] = []
    original = SQLBackend._has_rows

    def raced(connection: sa.Connection) -> bool:
        if not calls:
            calls.append(1)
            connection.execute(
                sa.text("INSERT INTO lp_dsr_meta (name, value) VALUES ('learner_column', 'keyed')")
            )
        return original(connection)

    monkeypatch.setattr(SQLBackend, "_has_rows", staticmethod(raced))
    backend = SQLBackend(url, cipher=FieldCipher(Keyring.generate()))
    assert calls == [1]
    with backend.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT value FROM lp_dsr_meta")).scalars().all() == [
            "keyed"
        ]
    backend.engine.dispose()


def test_a_numeric_learner_id_is_not_mistaken_for_a_count(sqlite_store: Store) -> None:
    """Moodle's learner ids are numbers; the history's counts ("records": "1") are not the
    learner: the erasure of learner "1" completes."""
    person = Person()
    person.id = "1"
    _, erased = _file_and_erase(sqlite_store, person)
    assert erased.state is RequestState.COMPLETED, erased.failure

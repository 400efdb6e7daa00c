"""Fixtures and helpers shared by the store tests (imported by each tests/test_store_*.py).

Every store test runs twice: on a SQLite file and on a real PostgreSQL server started
once per session (``postgres_server`` from tests/conftest.py). PostgreSQL databases are
cloned from a migrated template, which is much faster than migrating each one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import pytest

from learnprivacy import DataCategory, LawfulBasis
from learnprivacy import records as rec
from learnprivacy.crypto import Keyring
from learnprivacy.records import not_personal, personal, register_record_type
from tests import NOW, record_of

if TYPE_CHECKING:
    from learnprivacy.store import Store
    from learnprivacy.testing.postgres import TemporaryPostgres

#: The fixtures (tests/conftest.py shares them); the helpers are imported by name.
__all__ = [
    "badge_type",
    "empty_url",
    "file_store",
    "keyring",
    "module_database",
    "pg_workers",
    "store",
    "store_template",
    "store_url",
]

#: Key databases of the PostgreSQL test databases (one SQLite file per database name).
_KEYS_DIR = Path(tempfile.mkdtemp(prefix="lp-test-keys-"))


def keys_for(url: str) -> str:
    """The key database of the store at ``url``: the SQLite default beside a SQLite file;
    for a PostgreSQL test database, a SQLite file named after it (the threat-model tests
    put keys in PostgreSQL too)."""
    from learnprivacy.store._keydb import default_keys_url

    if url.startswith("sqlite"):
        return default_keys_url(url)
    return f"sqlite:///{_KEYS_DIR / (url.rsplit('/', 1)[-1] + '.keys.db')}"


def _forget_keys(url: str) -> None:
    """Remove the key database of a PostgreSQL test database (it is being emptied)."""
    path = Path(keys_for(url).removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    # And its vault (a sweep compacts the keys under an epoch key kept there).
    path.with_name(path.name.removesuffix(".db") + ".vault").unlink(missing_ok=True)


UTC = dt.UTC
MASTER_KEY = bytes(range(32))

_TEMPLATE = "lp_store_template"


def _clone(server: TemporaryPostgres, template: str, name: str) -> str:
    import psycopg
    from psycopg import sql

    with psycopg.connect(server.dsn_for("postgres"), autocommit=True) as connection:
        connection.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return server.url_for(name)


@pytest.fixture(scope="session")
def store_template(postgres_server: TemporaryPostgres) -> str:
    """Name of a PostgreSQL database at the newest schema revision, to clone from."""
    from learnprivacy.store import Store

    # Each test module that imports this fixture gets its own instance: unique names.
    name = f"{_TEMPLATE}_{uuid.uuid4().hex[:8]}"
    url = postgres_server.create_database(name)
    # A throwaway keyring: the clone's keys are those of the test that opens it.
    store = Store(url, keyring=Keyring.generate(), keys="sqlite://")
    store.close()
    # The template holds the check value of that keyring; drop it, keep the schema.
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for table in ("lp_key_outbox", "lp_audit", "lp_audit_head"):
            connection.execute(sa.text(f"DELETE FROM {table}"))
        connection.execute(sa.text("DELETE FROM lp_meta WHERE key IN ('store_id', 'key_store_id')"))
    engine.dispose()
    return name


@pytest.fixture(scope="module")
def module_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """One PostgreSQL database per test module, cloned from the template."""
    server = request.getfixturevalue("postgres_server")
    template = request.getfixturevalue("store_template")
    name = f"m_{uuid.uuid4().hex[:16]}"
    url = _clone(server, template, name)
    yield url
    server.drop_database(name)


def _truncate(url: str) -> bool:
    """Empty every table of the store but the schema's own; False if it cannot be done fast."""
    import psycopg
    from psycopg import sql

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute("SET lock_timeout = '5s'")
            names = [
                row[0]
                for row in connection.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename LIKE 'lp\\_%' AND tablename <> 'lp_meta'"
                )
            ]
            connection.execute(
                sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, names)))
            )
            connection.execute("DELETE FROM lp_meta WHERE key IN ('store_id', 'key_store_id')")
            # The audit log's numbers start again at 1, as in a new database.
            connection.execute("ALTER SEQUENCE IF EXISTS lp_audit_sequence RESTART")
    except psycopg.errors.LockNotAvailable:
        return False
    return True


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: a SQLite file, then an emptied PostgreSQL database.

    PostgreSQL tests of one module share a database, truncated before each test (a test
    still holding a transaction open gets a fresh clone instead).
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    url = request.getfixturevalue("module_database")
    if _truncate(url):
        _forget_keys(url)
        yield url
        return
    server = request.getfixturevalue("postgres_server")
    template = request.getfixturevalue("store_template")
    name = f"t_{uuid.uuid4().hex[:16]}"
    fresh = _clone(server, template, name)
    yield fresh
    server.drop_database(name)


@pytest.fixture
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Like ``store_url`` but never cloned from the template (for migration tests)."""
    yield from _empty(request, tmp_path)


def _empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"e_{uuid.uuid4().hex[:16]}"
    url = server.create_database(name)
    yield url
    server.drop_database(name)


@pytest.fixture
def badge_type() -> Iterator[Any]:
    """A record type the application defines (not a built-in), registered for one test."""

    @register_record_type
    @attrs.frozen(kw_only=True)
    class Badge:
        processing_purpose: ClassVar[str] = "gamification"
        key_scope: ClassVar[str] = "contract"
        date_field: ClassVar[str] = "earned_at"

        id: str = not_personal(description="Badge id")
        learner_id: str = personal(
            category=DataCategory.ACCOUNT, description="Learner", encrypted=False, identifier=True
        )
        title: str = personal(category=DataCategory.LEARNING, description="Title")
        # not_personal() returns an attrs field spec, not a shared default value.
        earned_at: dt.datetime = not_personal(description="When")  # noqa: RUF009
        basis: LawfulBasis = not_personal(description="Basis", default=LawfulBasis.CONSENT)  # noqa: RUF009

    yield Badge
    from learnprivacy.records import _base

    _base._REGISTRY.pop("Badge", None)


@pytest.fixture
def keyring() -> Keyring:
    """A keyring on a fixed master key (each store binds its own key table to it)."""
    return Keyring.from_master_key(MASTER_KEY)


@pytest.fixture
def store(store_url: str, keyring: Keyring) -> Iterator[Store]:
    """An open store on ``store_url`` whose clock is pinned to NOW."""
    from learnprivacy.store import Store

    opened = Store(store_url, keyring=keyring, keys=keys_for(store_url), clock=lambda: NOW)
    yield opened
    opened.close()


@pytest.fixture
def file_store(tmp_path: Path) -> Iterator[Store]:
    """Learner L1 with one record of each type, in a SQLite file (what ``backup`` copies),
    its keys beside it."""
    from learnprivacy.store import Store

    with Store(
        f"sqlite:///{tmp_path / 'lms.db'}",
        keyring=Keyring.from_master_key(MASTER_KEY),
        clock=lambda: NOW,
    ) as opened:
        opened.add_all([learner("L1"), *records_for("L1")])
        yield opened


def day(year: int, month: int, day_: int) -> dt.datetime:
    """Midnight UTC of a date."""
    return dt.datetime(year, month, day_, tzinfo=UTC)


def learner(learner_id: str = "L1", **changes: Any) -> rec.Learner:
    """A learner with recognisable personal values (to search for in raw bytes)."""
    values: dict[str, Any] = {
        "id": learner_id,
        "username": f"user-{learner_id}",
        "email": f"{learner_id.lower()}.secret@example.org",
        "given_name": f"Given{learner_id}Zq",
        "family_name": f"Family{learner_id}Zq",
        "created_at": day(2020, 1, 10),
        "last_activity_at": day(2024, 1, 31),
    }
    values.update(changes)
    return rec.Learner(**values)


def records_for(learner_id: str = "L1") -> list[Any]:
    """One record of every built-in type for ``learner_id`` (ids prefixed with it)."""
    return [
        record_of(
            learner_id,
            rec.Progress,
            "P1",
            recorded_at=dt.datetime(2024, 1, 5, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            score=rec.Score(raw=17, min=0, max=20),
            time_spent=dt.timedelta(hours=2, microseconds=5),
        ),
        record_of(
            learner_id,
            rec.Certificate,
            "CERT1",
            issued_at=day(2024, 1, 6),
            verification_code=f"VERIFY{learner_id}CODE",
        ),
        record_of(
            learner_id,
            rec.Invoice,
            "INV1",
            billing_name=f"Billing{learner_id}Name",
            billing_address=f"12 rue Secrete {learner_id}",
            amount=Decimal("1234.50"),
            issued_at=day(2023, 3, 1),
        ),
        record_of(
            learner_id,
            rec.Consent,
            "CONS1",
            given_at=day(2023, 1, 1),
            proof=f"Proof{learner_id}Signed",
        ),
        record_of(
            learner_id,
            rec.Funding,
            "F1",
            dossier_reference=f"OPCO-{learner_id}-DOSSIER",
            opened_at=day(2023, 1, 2),
            amount=Decimal("900.00"),
        ),
        record_of(
            learner_id,
            rec.AccessEvent,
            "E1",
            at=day(2024, 1, 31),
            ip="203.0.113.7",
            user_agent=f"Agent{learner_id}Browser",
        ),
    ]


def by_key(records: list[Any]) -> dict[tuple[str, str], Any]:
    """Records keyed by (type name, id), to compare collections whatever their order."""
    out = {(type(r).__name__, r.id): r for r in records}
    assert len(out) == len(records), "duplicate (type, id) in the list"
    return out


def personal_values(records: list[Any]) -> list[str]:
    """Every personal, encrypted value of ``records`` (what must never be stored in clear)."""
    from learnprivacy.records import fields_of

    out = []
    for record in records:
        for info in fields_of(record):
            value = getattr(record, info.name)
            if info.encrypted and value is not None:
                out.append(str(value))
    return out


def table_text(store: Store) -> str:
    """Every row of every table of the store, as text (for scanning PostgreSQL)."""
    import sqlalchemy as sa

    chunks = []
    with store._db.engine.connect() as connection:
        names = sa.inspect(connection).get_table_names()
        for name in names:
            for row in connection.execute(sa.text(f"SELECT * FROM {name}")):
                chunks.append(repr(tuple(row)))
    return "\n".join(chunks)


def assert_not_stored(store: Store, url: str, secrets: Iterable[str]) -> None:
    """None of ``secrets`` is in any row of ``store`` (at ``url``) nor, on SQLite, anywhere
    in the database file's bytes."""
    text = table_text(store)
    for secret in secrets:
        assert secret not in text
    if url.startswith("sqlite"):
        data = raw_bytes(url)
        for secret in secrets:
            assert secret.encode() not in data


def raw_bytes(url: str) -> bytes:
    """The bytes of a SQLite database file and any journal beside it."""
    path = url.removeprefix("sqlite:///")
    data = b""
    for suffix in ("", "-journal", "-wal"):
        if os.path.exists(path + suffix):
            data += Path(path + suffix).read_bytes()
    return data


#: The outbox columns :func:`owed_refs` reads.
OWED_SQL = "SELECT subject_ref, subject_refs FROM lp_key_outbox"


def owed_refs(rows: Iterable[tuple[Any, ...]]) -> set[str]:
    """The key references owed by outbox rows ``(subject_ref, subject_refs)`` read with
    :data:`OWED_SQL`: a row's own reference, or each one of its JSON array."""
    owed: set[str] = set()
    for ref, refs in rows:
        owed.update(json.loads(refs) if refs is not None else [str(ref)])
    return owed


def psql(server: TemporaryPostgres, database: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(server.dsn_for(database), autocommit=True) as connection:
        cursor = connection.execute(sql)
        return list(cursor.fetchall()) if cursor.description else []


def relation_files(server: TemporaryPostgres, database: str) -> bytes:
    """Every relation file of ``database`` after a CHECKPOINT."""
    psql(server, database, "CHECKPOINT")
    oid = psql(server, database, f"SELECT oid FROM pg_database WHERE datname = '{database}'")
    return _read_all((server.data_dir / "base" / str(oid[0][0])).iterdir())


def wal_files(server: TemporaryPostgres) -> bytes:
    """The server's pg_wal (every database of the server writes there)."""
    return _read_all(p for p in (server.data_dir / "pg_wal").iterdir() if p.is_file())


def database_files(server: TemporaryPostgres, database: str) -> bytes:
    """Every relation file of ``database`` after a CHECKPOINT, and the server's pg_wal."""
    return relation_files(server, database) + wal_files(server)


def _read_all(paths: Iterable[Path]) -> bytes:
    data = b""
    for path in paths:
        # The server may remove a file meanwhile (pg_internal.init, a recycled segment).
        with contextlib.suppress(FileNotFoundError):
            data += path.read_bytes()
    return data


def dead_tuples(server: TemporaryPostgres, database: str) -> bytes:
    """The raw pages of every table and index of ``database`` (pageinspect), dead tuples
    included."""
    psql(server, database, "CREATE EXTENSION IF NOT EXISTS pageinspect")
    relations = psql(
        server,
        database,
        "SELECT c.oid::regclass::text, "
        "pg_relation_size(c.oid) / current_setting('block_size')::int "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 't')",
    )
    data = b""
    for name, blocks in relations:
        for block in range(int(blocks)):
            page = psql(server, database, f"SELECT get_raw_page('{name}', {block})")
            data += bytes(page[0][0])
    return data


def forged_audit_row(last: Any, *, action: str, details: dict[str, Any]) -> dict[str, Any]:
    """An ``lp_audit`` row chained after ``last`` (an ``AuditEntry``) with a correct hash,
    as an intruder able to write SQL would forge it."""
    from learnprivacy.store._audit import AuditEntry

    forged = AuditEntry(
        sequence=last.sequence + 1,
        at=last.at,
        action=action,
        record_type="Progress",
        subject_ref=None,
        actor="intruder",
        outcome="done",
        details=details,
        prev_hash=last.hash,
        hash="",
    )
    return {
        "sequence": forged.sequence,
        "at": last.at.replace(tzinfo=None),
        "action": forged.action,
        "record_type": forged.record_type,
        "subject_ref": None,
        "actor": forged.actor,
        "outcome": forged.outcome,
        "details": json.dumps(forged.details),
        "prev_hash": forged.prev_hash,
        "hash": forged.expected_hash(),
    }


def population(count: int, *, seed: int = 7) -> list[Any]:
    """``count`` learners with records, dates spread over 2014-2026, some dates missing."""
    import random

    rng = random.Random(seed)
    out: list[Any] = []
    for i in range(count):
        learner_id = f"L{i:05d}"
        created = day(2014, 1, 1) + dt.timedelta(days=rng.randrange(0, 3000))
        last = None if i % 11 == 0 else created + dt.timedelta(days=rng.randrange(0, 2500))
        out.append(
            learner(
                learner_id,
                created_at=created,
                last_activity_at=last,
                contract_end_at=None if i % 3 else created + dt.timedelta(days=900),
            )
        )
        for record in records_for(learner_id):
            out.append(_shift(record, rng, created))
    return out


def _shift(record: Any, rng: Any, created: dt.datetime) -> Any:
    import attrs

    field = type(record).date_field
    when = created + dt.timedelta(days=rng.randrange(0, 2500), seconds=rng.randrange(86_400))
    changes: dict[str, Any] = {field: when}
    if isinstance(record, rec.Consent):
        withdrawn = rng.random() < 0.5
        changes["withdrawn_at"] = (
            when + dt.timedelta(days=rng.randrange(1, 400)) if withdrawn else None
        )
    if isinstance(record, rec.Funding):
        closed = rng.random() < 0.6
        changes["closed_at"] = when + dt.timedelta(days=rng.randrange(1, 700)) if closed else None
    return attrs.evolve(record, **changes)


def retention_schedule() -> Any:
    """A schedule exercising every action, missing dates and learner-level triggers."""
    from learnprivacy.retention import Action, Period, RetentionRule, Schedule, Trigger

    return Schedule(
        {
            rec.Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY),
            rec.Progress: RetentionRule(
                Period.parse("P18M"), Trigger.LAST_ACTIVITY, action=Action.ANONYMISE
            ),
            rec.Certificate: RetentionRule(
                Period.parse("P3Y"), Trigger.ISSUED, action=Action.RESTRICT
            ),
            rec.Invoice: RetentionRule(Period.parse("P10Y"), Trigger.ISSUED, minimum=True),
            rec.Consent: RetentionRule(
                Period.parse("P6M"), Trigger.WITHDRAWN, on_missing_anchor=Action.KEEP
            ),
            rec.Funding: RetentionRule(Period.parse("P6Y"), Trigger.CLOSED),
            rec.AccessEvent: RetentionRule(Period.parse("P1Y"), Trigger.CREATED),
        }
    )


def expected_actions(
    records: list[Any], schedule: Any, now: dt.datetime, **kwargs: Any
) -> dict[tuple[str, str], Any]:
    """What a sweep must do to each record, computed independently of the store.

    ``Schedule.evaluate`` decides for each record, with the learner's last activity taken
    as the latest of their account's and of every record that shows activity
    (``activity_field``); an account the schedule would erase or anonymise is restricted
    instead while any of its records stays (kept, restricted or for review).
    """
    import attrs

    from learnprivacy.retention import Action

    learners = {r.id: r for r in records if isinstance(r, rec.Learner)}
    for record in records:
        field = getattr(type(record), "activity_field", None)
        owner = learners.get(getattr(record, "learner_id", ""))
        if field is None or owner is None:
            continue
        shown = getattr(record, field)
        if owner.last_activity_at is None or shown > owner.last_activity_at:
            learners[owner.id] = owner = attrs.evolve(owner, last_activity_at=shown)
    out = {}
    for record in records:
        if isinstance(record, rec.Learner):
            record = learners[record.id]
        subject = learners.get(getattr(record, "learner_id", record.id))
        decision = schedule.evaluate(record, now=now, subject=subject, **kwargs)
        out[type(record).__name__, record.id] = decision.action
    gone = (Action.ERASE, Action.ANONYMISE)
    stays = {
        r.learner_id
        for r in records
        if hasattr(r, "learner_id") and out[type(r).__name__, r.id] not in gone
    }
    for learner_id in learners:
        if out["Learner", learner_id] in gone and learner_id in stays:
            out["Learner", learner_id] = Action.RESTRICT
    return out


def anonymised_facts(store: Store, record_type: type[Any]) -> list[str]:
    """The anonymised rows of a type without the random ids anonymisation draws (sorted
    reprs), to compare the end states of two runs."""
    random = {"id", "learner_id"}
    return sorted(
        repr({k: v for k, v in facts.items() if k not in random})
        for facts in store.anonymised(record_type)
    )


def copy_token(
    store: Store, source_id: str, target_id: str, *, column: str, target_column: str | None = None
) -> None:
    """Attack helper: write learner ``source_id``'s token from ``column`` into learner
    ``target_id``'s ``target_column`` (the same column by default), straight in SQL."""
    from sqlalchemy import select, update

    table = store._table(rec.Learner).table
    with store._db.write() as connection:
        token = connection.execute(
            select(table.c[column]).where(table.c.id == source_id)
        ).scalar_one()
        connection.execute(
            update(table).where(table.c.id == target_id).values({target_column or column: token})
        )


@contextlib.contextmanager
def sqlite_statements(store: Any, *starts: str) -> Iterator[list[str]]:
    """The statements beginning with one of ``starts`` (``"SELECT"``...) that SQLite
    itself runs, with their parameters in place, on every connection the store's pool
    opens while the block runs (statements sent on the driver's own cursor included)."""
    seen: list[str] = []
    wanted = tuple(start.upper() for start in starts)

    def capture(statement: str) -> None:
        if statement.lstrip().upper().startswith(wanted):
            seen.append(statement)

    def trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(capture)

    import sqlalchemy as sa

    store.engine.dispose()
    sa.event.listen(store.engine, "connect", trace)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine, "connect", trace)
        store.engine.dispose()


def sqlite_plans(store: Any, statements: Iterable[str]) -> dict[str, str]:
    """SQLite's plan of each statement (as :func:`sqlite_statements` caught it), one line."""
    with store.engine.connect() as connection:
        return {
            statement: " | ".join(
                str(row[-1])
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}")
            )
            for statement in dict.fromkeys(statements)
        }


@contextlib.contextmanager
def keyrings_on(url: str, master: bytes) -> Iterator[tuple[Keyring, Keyring]]:
    """Two keyrings on the key database at ``url``, each with a ``KeyDatabase`` of its own
    (two processes: their own connections and caches); both closed at the end."""
    from learnprivacy.keys import KeyDatabase

    mine, theirs = KeyDatabase(url), KeyDatabase(url)
    try:
        yield (
            Keyring.from_master_key(master, store=mine),
            Keyring.from_master_key(master, store=theirs),
        )
    finally:
        mine.close()
        theirs.close()


@pytest.fixture
def pg_workers(postgres_server: TemporaryPostgres) -> Iterator[tuple[Keyring, Keyring]]:
    """A worker and an eraser keyring (master key ``bytes(range(32))``) on one new
    PostgreSQL key database, each with its own engine (two processes)."""
    with keyrings_on(postgres_server.create_database(), bytes(range(32))) as pair:
        yield pair

"""copy_store: a SQLite store copied to PostgreSQL (or SQLite), verified, the same store."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from learnprivacy.crypto import Keyring
from learnprivacy.errors import (
    AuditTampered,
    ConfigurationError,
    IntegrityError,
    KeyShreddedError,
    ValidationError,
    WrongMasterKeyError,
)
from learnprivacy.records import Learner, Progress
from learnprivacy.store import Store, copy_store
from learnprivacy.store._copy import CopyReport
from learnprivacy.store._keydb import default_keys_url
from tests.store_fixtures import (
    MASTER_KEY,
    NOW,
    anonymised_facts,
    day,
    learner,
    population,
    records_for,
    retention_schedule,
)

if TYPE_CHECKING:
    from learnprivacy.testing.postgres import TemporaryPostgres

LEARNERS = 40


def _keyring() -> Keyring:
    return Keyring.from_master_key(MASTER_KEY)


def _keys(source_url: str) -> str:
    """The key database of a SQLite source, which its copies share."""
    return default_keys_url(source_url)


def _fill(url: str) -> list[str]:
    """A store with a history: records, an early sweep (erasures, anonymised and
    restricted rows, shredded keys), an erasure request and a restriction."""
    records = population(LEARNERS, seed=11)
    with Store(url, keyring=_keyring(), clock=lambda: NOW) as store:
        store.add_all(records, now=day(2015, 1, 1))
        store.sweep(retention_schedule(), now=day(2021, 6, 1))
        store.erase_subject("L00003", now=day(2022, 2, 1))
        store.restrict(learner_id="L00005", reason="case 2022-7", now=day(2022, 3, 1))
        return sorted({r.id for r in records if isinstance(r, Learner)})


@pytest.fixture(scope="module")
def source_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A filled SQLite store, built once; each test copies the file before using it."""
    path = tmp_path_factory.mktemp("copy-source") / "template.db"
    _fill(f"sqlite:///{path}")
    return path


@pytest.fixture
def source_url(source_file: Path, tmp_path: Path) -> str:
    """A private copy of the filled SQLite store."""
    path = tmp_path / "lms.db"
    path.write_bytes(source_file.read_bytes())
    # The key database travels with it: the records alone open nothing.
    keys = source_file.with_name("template.keys.db")
    (tmp_path / "lms.keys.db").write_bytes(keys.read_bytes())
    # And its vault: the sweep compacted the keys under an epoch key kept there.
    vault = source_file.with_name("template.keys.vault")
    (tmp_path / "lms.keys.vault").write_bytes(vault.read_bytes())
    return f"sqlite:///{path}"


@pytest.fixture
def postgres_url(postgres_server: TemporaryPostgres) -> Iterator[str]:
    """A fresh, empty PostgreSQL database."""
    name = f"copy_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def target_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty target database: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'copy.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def _tables(url: str) -> dict[str, int]:
    """Every table of the database and its number of rows."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            names = sa.inspect(connection).get_table_names()
            return {
                name: connection.execute(
                    sa.select(sa.func.count()).select_from(sa.table(name))
                ).scalar_one()
                for name in names
            }
    finally:
        engine.dispose()


def _state(store: Store, learners: list[str]) -> dict[str, Any]:
    """What a reader sees: each learner's records, anonymised facts, key states."""
    return {
        "records": {lid: store.records_of(lid, include_restricted=True) for lid in learners},
        "visible": {lid: store.records_of(lid) for lid in learners},
        "anonymised": {rt.name: anonymised_facts(store, rt.cls) for rt in store._record_tables()},
        "keys": sorted(
            (e.subject, e.scope, e.key_id, e.state.value) for e in store._keys.list_entries()
        ),
    }


def test_the_copy_is_the_same_store(source_url: str, target_url: str) -> None:
    """Every table arrives row for row; records, restrictions, anonymised rows, keys,
    store id, audit log, blind indexes and pseudonyms are the same on both sides."""
    learners = [f"L{i:05d}" for i in range(LEARNERS)]
    report = copy_store(source_url, target_url, keyring=_keyring(), batch_size=7)
    assert isinstance(report, CopyReport)
    source_tables = _tables(source_url)
    assert {name: source_tables[name] for name in report.tables} == report.tables
    assert {n: c for n, c in _tables(target_url).items() if n in report.tables} == report.tables
    assert report.rows == sum(report.tables.values())
    assert report.sampled > 0
    assert (report.source, report.target) == ("sqlite", target_url.split(":", 1)[0].split("+")[0])
    with (
        Store(source_url, keyring=_keyring()) as source,
        Store(target_url, keyring=_keyring(), keys=_keys(source_url)) as copy,
    ):
        assert copy.store_id == source.store_id == report.store_id
        assert copy.audit.verify()
        assert list(copy.audit) == list(source.audit)
        assert len(copy.audit) == report.audit_entries
        assert _state(copy, learners) == _state(source, learners)
        assert copy.audit.subject_ref("L00001") == source.audit.subject_ref("L00001")
        found = copy.find_learner(email="l00001.secret@example.org")
        assert found is not None
        assert found.id == "L00001"
        for domain in ("subject-export", "xapi-actor"):
            assert copy.keyring.pseudonymiser(domain).pseudonym(
                "L00001"
            ) == source.keyring.pseudonymiser(domain).pseudonym("L00001")


def test_sweeps_and_erasures_behave_the_same_after_the_copy(
    source_url: str, target_url: str
) -> None:
    """The same sweep, then the same erasure request, on the source and on the copy give
    the same reports and leave the same state; both audit logs still verify. (Each runs
    on its own copy of the key database, taken before either.)"""
    learners = [f"L{i:05d}" for i in range(LEARNERS)]
    copy_store(source_url, target_url, keyring=_keyring())
    keys_file = Path(_keys(source_url).removeprefix("sqlite:///"))
    twin = keys_file.with_name("twin.keys.db")
    twin.write_bytes(keys_file.read_bytes())
    # Its own vault too: the source's sweep compacts, destroying the epoch key it names.
    vault_file = keys_file.with_name(keys_file.name.removesuffix(".db") + ".vault")
    twin.with_name("twin.keys.vault").write_bytes(vault_file.read_bytes())
    outcomes = []
    for url, keys in ((source_url, _keys(source_url)), (target_url, f"sqlite:///{twin}")):
        with Store(url, keyring=_keyring(), keys=keys, clock=lambda: NOW) as store:
            sweep = store.sweep(retention_schedule(), now=NOW, batch_size=5)
            assert sweep.changed > 0
            erasure = store.erase_subject("L00007", now=NOW)
            assert erasure.erased > 0
            assert store.audit.verify()
            outcomes.append((sweep, erasure, _state(store, learners)))
    assert outcomes[0] == outcomes[1]


def test_erasures_replay_from_the_source_log_onto_the_copy(
    source_url: str, target_url: str
) -> None:
    """The copy shares the source's key database, so an erasure done on the source after
    the copy already makes the learner unreadable in the copy; replaying the source's
    log then removes the rows too, thanks to the shared audit references."""
    copy_store(source_url, target_url, keyring=_keyring())
    with Store(source_url, keyring=_keyring()) as source:
        source.erase_subject("L00009", now=NOW)
        with Store(target_url, keyring=_keyring(), keys=_keys(source_url)) as copy:
            with pytest.raises(KeyShreddedError):
                copy.records_of("L00009", include_restricted=True)
            copy.replay_erasures(source.audit, now=NOW)
            assert copy.records_of("L00009", include_restricted=True) == source.records_of(
                "L00009", include_restricted=True
            )
            assert copy.get(Learner, "L00009") is None
            # One anchor per store id in the shared key database: it follows the source,
            # whose log moved on, so the copy's diverging log is reported until the
            # copy is deliberately made the live store.
            with pytest.raises(AuditTampered, match="anchor"):
                copy.audit.verify()
            copy.audit.reanchor(now=NOW, reason="the copy takes over")
            assert copy.audit.verify()


def test_a_target_holding_a_store_is_refused_and_left_alone(
    source_url: str, target_url: str
) -> None:
    """A target where a store was already opened (even an empty one) is refused with
    ConfigurationError, and not a row of it changes."""
    with Store(
        target_url, keyring=_keyring(), keys=_keys(source_url), clock=lambda: NOW
    ) as existing:
        existing.add(learner("X1"))
    before = _tables(target_url)
    with pytest.raises(ConfigurationError, match="empty database"):
        copy_store(source_url, target_url, keyring=_keyring())
    assert _tables(target_url) == before


def test_a_wrong_master_key_writes_nothing(source_url: str, target_url: str) -> None:
    """A keyring that is not the source's raises WrongMasterKeyError; no table is created
    in the target."""
    with pytest.raises(WrongMasterKeyError):
        copy_store(source_url, target_url, keyring=Keyring.generate())
    if target_url.startswith("sqlite"):
        # The file the first connection created is removed again.
        assert not Path(target_url.removeprefix("sqlite:///")).exists()
    else:
        assert _tables(target_url) == {}


def test_a_copy_failing_half_way_leaves_the_target_empty(
    source_url: str, postgres_url: str
) -> None:
    """SQLite does not enforce column lengths, PostgreSQL does: a row written around the
    library that PostgreSQL refuses fails the copy with IntegrityError naming the table
    (not the value), and the target keeps no table, no row."""
    long_course = "COURSE-" + "x" * 300
    engine = sa.create_engine(source_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE lp_progress SET course_id = :course WHERE id = :id"),
            {"course": long_course, "id": "L00010-P1"},
        )
    engine.dispose()
    with pytest.raises(IntegrityError, match="lp_progress") as info:
        copy_store(source_url, postgres_url, keyring=_keyring())
    message = str(info.value)
    assert "L00010" not in message
    assert "xxxx" not in message
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert _tables(postgres_url) == {}


def test_a_tampered_source_log_is_refused(source_url: str, target_url: str) -> None:
    """A source whose audit log does not verify raises AuditTampered before anything
    is written."""
    engine = sa.create_engine(source_url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE lp_audit SET outcome = 'forged' WHERE sequence = 2"))
    engine.dispose()
    with pytest.raises(AuditTampered):
        copy_store(source_url, target_url, keyring=_keyring())
    assert _tables(target_url) == {}


def test_a_record_type_this_process_does_not_know_is_refused(
    source_url: str, target_url: str
) -> None:
    """A source table of an unregistered record type would be left behind: refused,
    naming the table."""
    engine = sa.create_engine(source_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE lp_badge (id VARCHAR(255) PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(ConfigurationError, match="lp_badge"):
        copy_store(source_url, target_url, keyring=_keyring())
    assert not any(name.startswith("lp_") for name in _tables(target_url))


def test_bad_arguments_are_refused(source_url: str, tmp_path: Path) -> None:
    """In-memory databases, non-URLs, a source that holds no store and bad sizes are
    refused before anything is opened or written."""
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    for source, destination in (
        ("sqlite://", target),
        (source_url, "sqlite:///:memory:"),
        ("not a url", target),
        (f"sqlite:///{tmp_path / 'nothing.db'}", target),
    ):
        with pytest.raises(ConfigurationError):
            copy_store(source, destination, keyring=_keyring())
    with pytest.raises(ConfigurationError):
        copy_store(source_url, target, keyring=MASTER_KEY)  # type: ignore[arg-type]
    for options in ({"batch_size": 0}, {"batch_size": True}, {"samples": -1}):
        with pytest.raises(ValidationError):
            copy_store(source_url, target, keyring=_keyring(), **options)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "lms.db",
        "lms.keys.db",
        "lms.keys.vault",
    ]


def test_a_copy_without_samples_still_checks_counts_and_the_log(
    source_url: str, tmp_path: Path
) -> None:
    """samples=0 skips the decryption sample; counts, store id and audit are checked."""
    report = copy_store(
        source_url, f"sqlite:///{tmp_path / 'copy.db'}", keyring=_keyring(), samples=0
    )
    assert report.sampled == 0
    assert report.tables["lp_progress"] > 0


def test_records_keep_their_types_and_dates_on_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    """Decimals, scores, time spans and dates with offsets read back equal on PostgreSQL."""
    url = f"sqlite:///{tmp_path / 'small.db'}"
    with Store(url, keyring=_keyring(), clock=lambda: NOW) as store:
        store.add_all([learner("L1"), *records_for("L1")])
    copy_store(url, postgres_url, keyring=_keyring())
    with (
        Store(url, keyring=_keyring()) as source,
        Store(postgres_url, keyring=_keyring(), keys=_keys(url)) as copy,
    ):
        assert copy.records_of("L1") == source.records_of("L1")
        progress = copy.get(Progress, "L1-P1")
        assert progress is not None
        assert progress.recorded_at == dt.datetime(2024, 1, 5, 7, 30, tzinfo=dt.UTC)


def test_tables_of_other_applications_in_the_target_are_left_alone(
    source_url: str, postgres_url: str
) -> None:
    """A target database shared with the LMS's own tables is accepted: they are not
    learnprivacy's, and the copy neither reads nor changes them."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE lms_user (id INTEGER PRIMARY KEY)"))
        connection.execute(sa.text("INSERT INTO lms_user VALUES (1), (2)"))
        # The LMS's own Alembic version table, which the store does not use.
        connection.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        connection.execute(sa.text("INSERT INTO alembic_version VALUES ('lms0042')"))
    engine.dispose()
    report = copy_store(source_url, postgres_url, keyring=_keyring())
    tables = _tables(postgres_url)
    assert tables["lms_user"] == 2
    assert tables["lp_learner"] == report.tables["lp_learner"]
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        assert versions.scalars().all() == ["lms0042"]
    engine.dispose()


def test_a_store_with_its_vault_elsewhere_is_copied_with_vault(
    source_url: str, tmp_path: Path
) -> None:
    """A source whose vault is not beside its key database: without vault= the copy is
    refused before anything is written; with it, the copy opens and verifies."""
    moved = tmp_path / "elsewhere.vault"
    (tmp_path / "lms.keys.vault").rename(moved)
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    with pytest.raises(ConfigurationError, match="vault"):
        copy_store(source_url, target, keyring=_keyring())
    assert not (tmp_path / "copy.db").exists()
    report = copy_store(source_url, target, keyring=_keyring(), vault=moved)
    assert report.rows > 0
    with Store(target, keyring=_keyring(), keys=_keys(source_url), vault=moved) as copy:
        assert copy.get(Learner, "L00001") is not None

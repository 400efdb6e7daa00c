"""Keys apart from data: a copy of the records database never brings an erased learner back.

The threat model (docs/security.md): someone holds a copy of the records database taken
at any time (a file copy, ``store.backup()``, ``pg_dump``, its dead tuples, its WAL), the
master key, and the current key database. They must read nothing of a learner erased
since the copy, and restoring the copy must keep every other learner readable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from learnprivacy.crypto import Keyring
from learnprivacy.errors import ConfigurationError, KeyShreddedError
from learnprivacy.keys import KeyDatabase
from learnprivacy.records import Certificate, Learner
from learnprivacy.store import Store
from learnprivacy.store._keydb import default_keys_url
from tests import serve_or_skip
from tests.store_fixtures import (
    MASTER_KEY,
    NOW,
    database_files,
    dead_tuples,
    learner,
    personal_values,
    psql,
    raw_bytes,
    records_for,
)

if TYPE_CHECKING:
    from learnprivacy.testing.postgres import TemporaryPostgres

#: Ids distinctive enough to be searched for in raw bytes.
ERASED = "learner-erased-7Qx"
KEPT = "learner-kept-9Zw"


def _keyring() -> Keyring:
    return Keyring.from_master_key(MASTER_KEY)


def _fill(store: Store) -> None:
    store.add_all([learner(ERASED), *records_for(ERASED), learner(KEPT), *records_for(KEPT)])


def _wrapped_keys(store: Store, subject: str, *, but: tuple[str, ...] = ()) -> list[bytes]:
    """The wrapped data keys of ``subject`` as the key database holds them now (those of
    the scopes in ``but`` left out)."""
    ref = store.keyring.key_ref(subject)
    return [e.wrapped for e in store._keys.list_entries(ref) if e.wrapped and e.scope not in but]


def _erased_reads(store: Store) -> None:
    """Every read of the erased learner's personal values fails with KeyShreddedError."""
    with pytest.raises(KeyShreddedError):
        store.get(Learner, ERASED)
    with pytest.raises(KeyShreddedError):
        store.get(Certificate, f"{ERASED}-CERT1")


def _erase(store: Store) -> None:
    report = store.erase_subject(ERASED, now=NOW)
    assert report.erased > 0
    assert "contract" in report.shredded_scopes


# -- SQLite -------------------------------------------------------------------------------


def test_a_sqlite_store_keeps_its_keys_in_a_sibling_file(tmp_path: Path) -> None:
    """lms.db -> lms.keys.db; no wrapped key and no learner id in the records file."""
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    assert default_keys_url(url) == f"sqlite:///{tmp_path / 'lms.keys.db'}"
    with Store(url, keyring=_keyring()) as store:
        _fill(store)
        wrapped = _wrapped_keys(store, ERASED) + _wrapped_keys(store, KEPT)
        assert len(wrapped) == 8
        records = raw_bytes(url)
        keys = raw_bytes(default_keys_url(url))
        for key in wrapped:
            assert key not in records
            assert key in keys
        # The key database names no learner, erased or not.
        assert ERASED.encode() not in keys
        assert KEPT.encode() not in keys
        with sa.create_engine(url).connect() as connection:
            names = set(sa.inspect(connection).get_table_names())
        assert not {"lp_keys", "lp_key_tombstones"} & names


@pytest.mark.parametrize("how", ["backup", "file copy"])
def test_a_records_copy_taken_before_erasure_reads_nothing_of_the_erased(
    tmp_path: Path, how: str
) -> None:
    """Copy the records (store.backup() or the files), erase, restore the copy with the
    master key and the current key database: nothing of the erased learner decrypts,
    every other learner reads as before."""
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    copy = tmp_path / "copy.db"
    with Store(url, keyring=_keyring(), clock=lambda: NOW) as store:
        _fill(store)
        kept = store.records_of(KEPT)
        if how == "backup":
            store.backup(str(copy))
        else:
            store._db.checkpoint()
            shutil.copyfile(tmp_path / "lms.db", copy)
        # The invoice is kept by law (restricted): its "legal" key stays alive.
        erased_keys = _wrapped_keys(store, ERASED, but=("legal",))
        _erase(store)
    restored = f"sqlite:///{tmp_path / 'restored.db'}"
    shutil.copyfile(copy, tmp_path / "restored.db")
    for key in erased_keys:
        assert key not in raw_bytes(restored)
    with Store(restored, keyring=_keyring(), keys=default_keys_url(url)) as store:
        _erased_reads(store)
        assert store.records_of(KEPT) == kept
    # Nor can the wrapped keys be found anywhere in the current key database.
    keys = raw_bytes(default_keys_url(url))
    for key in erased_keys:
        assert key not in keys


def test_after_erasure_no_learner_id_is_left_in_either_file(tmp_path: Path) -> None:
    """Raw byte scan of both databases after an erasure: neither the learner id, nor a
    record id, nor a personal value of the erased learner (restricted invoice excepted:
    kept by law, its values stay encrypted, its id is what it is)."""
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    with Store(url, keyring=_keyring(), clock=lambda: NOW) as store:
        _fill(store)
        store.erase_subject(ERASED, now=NOW)
        store._db.checkpoint()
    records = raw_bytes(url)
    keys = raw_bytes(default_keys_url(url))
    kept_by_law = {f"{ERASED}-INV1", f"{ERASED}-F1"}
    erased_ids = [r.id for r in records_for(ERASED) if r.id not in kept_by_law]
    for needle in [*erased_ids]:
        assert needle.encode() not in records, needle
        assert needle.encode() not in keys, needle
    assert ERASED.encode() not in keys
    for secret in personal_values([learner(ERASED)]):
        assert secret.encode() not in records
        assert secret.encode() not in keys


def test_a_store_opened_on_another_key_database_is_refused(tmp_path: Path) -> None:
    """The records database remembers its key database: opened with a fresh one (the
    sibling file deleted, another store's keys) it refuses instead of starting afresh."""
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    with Store(url, keyring=_keyring()) as store:
        _fill(store)
    other = f"sqlite:///{tmp_path / 'other.keys.db'}"
    with pytest.raises(ConfigurationError, match="another key database"):
        Store(url, keyring=_keyring(), keys=other)
    with Store(url, keyring=_keyring()) as store:
        assert store.get(Learner, KEPT) == learner(KEPT)


def test_keys_must_not_be_the_records_database(tmp_path: Path) -> None:
    """keys= naming the records database itself is a configuration error."""
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    with pytest.raises(ConfigurationError, match="database of their own"):
        Store(url, keyring=_keyring(), keys=url)


def test_a_postgresql_store_needs_keys() -> None:
    """No default key database for PostgreSQL: the error names keys=."""
    with pytest.raises(ConfigurationError, match="keys="):
        Store("postgresql+psycopg://nobody@127.0.0.1:1/lms", keyring=_keyring())


def test_a_key_database_opens_from_an_engine_and_serves_any_keyring(tmp_path: Path) -> None:
    """KeyDatabase works alone (no Store): from a URL or an Engine the caller keeps;
    subjects are stored by key reference, shredding is final, keys survive reopening."""
    from learnprivacy.crypto import FieldCipher

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'k.db'}")
    keys = KeyDatabase(engine)
    keyring = keys.keyring(_keyring())
    cipher = FieldCipher(keyring)
    token = cipher.encrypt("ana@example.org", subject=ERASED, context="User/1/email")
    other = cipher.encrypt("bob@example.org", subject=KEPT, context="User/2/email")
    keys.close()
    # The caller's engine is still usable: the key database did not dispose of it.
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT subject_ref FROM lpk_keys")).scalars().all()
    assert all(not ref.startswith("learner") for ref in rows)
    reopened = KeyDatabase(f"sqlite:///{tmp_path / 'k.db'}")
    keyring = Keyring(MASTER_KEY, store=reopened)
    cipher = FieldCipher(keyring)
    assert cipher.decrypt(token, subject=ERASED, context="User/1/email") == "ana@example.org"
    assert keyring.shred(ERASED) == 1
    with pytest.raises(KeyShreddedError):
        cipher.decrypt(token, subject=ERASED, context="User/1/email")
    assert cipher.decrypt(other, subject=KEPT, context="User/2/email") == "bob@example.org"
    assert ERASED.encode() not in (tmp_path / "k.db").read_bytes()
    reopened.close()
    engine.dispose()


def test_a_store_from_before_the_key_database_moves_its_keys_out(tmp_path: Path) -> None:
    """A store whose keys sat in its own lp_keys table (earlier versions) opens: the keys
    move to the key database under key references, the old tables are dropped and no
    wrapped key is left in the records file; every record still reads."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with Store(url, keyring=_keyring(), clock=lambda: NOW) as store:
        _fill(store)
        store.erase_subject(ERASED, now=NOW)
        expected = store.records_of(KEPT)
        entries = list(store._keys.list_entries())
        to_id = {store.keyring.key_ref(s): s for s in (ERASED, KEPT)}
    # Rebuild the old layout: keys (wrapped for the learner id) back in the records file.
    keyring = _keyring()
    old = [
        {
            "subject": to_id.get(e.subject, e.subject),
            "scope": e.scope,
            "key_id": e.key_id,
            "state": e.state.value,
            "master_key_id": e.master_key_id,
            "wrapped": (
                keyring.rewrap_entry(e, subject=to_id.get(e.subject, e.subject)).wrapped
                if e.wrapped and e.subject in to_id
                else e.wrapped
            ),
        }
        for e in entries
    ]
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE lp_keys (subject VARCHAR(255), key_id VARCHAR(16), scope "
                "VARCHAR(64), state VARCHAR(16), master_key_id VARCHAR(16), wrapped BLOB, "
                "PRIMARY KEY (subject, key_id))"
            )
        )
        connection.execute(
            sa.text(
                "CREATE TABLE lp_key_tombstones (subject VARCHAR(255), scope VARCHAR(64), "
                "PRIMARY KEY (subject, scope))"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO lp_keys VALUES (:subject, :key_id, :scope, :state, "
                ":master_key_id, :wrapped)"
            ),
            old,
        )
        connection.execute(
            sa.text("INSERT INTO lp_key_tombstones VALUES (:s, '*')"), [{"s": ERASED}]
        )
        connection.execute(sa.text("DELETE FROM lp_meta WHERE key = 'key_store_id'"))
    engine.dispose()
    old_wrapped = [row["wrapped"] for row in old if row["wrapped"]]
    for path in ("old.keys.db", "old.keys.db-wal", "old.keys.db-shm"):
        (tmp_path / path).unlink(missing_ok=True)
    with Store(url, keyring=_keyring(), clock=lambda: NOW) as store:
        assert store.records_of(KEPT) == expected
        assert store.get(Learner, ERASED) is None
        assert store.keyring.is_shredded(ERASED, "contract")
        assert not store.keyring.is_shredded(KEPT, "contract")
        store._db.checkpoint()
    data = raw_bytes(url)
    for key in old_wrapped:
        assert key not in data
    assert ERASED.encode() not in raw_bytes(default_keys_url(url))


# -- PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys_server() -> Iterator[TemporaryPostgres]:
    """A second PostgreSQL server for the key databases: the records server's WAL and
    files then hold nothing of the keys, which is the deployment docs/security.md advises."""
    from learnprivacy.testing.postgres import PostgresUnavailable, TemporaryPostgres

    yield from serve_or_skip(TemporaryPostgres(database="keys"), PostgresUnavailable)


@pytest.fixture
def pg_urls(
    postgres_server: TemporaryPostgres,
    keys_server: TemporaryPostgres,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[str, str]]:
    """A fresh records database and a fresh key database (on the other server); the
    working directory is a temporary one, where the default vault goes."""
    monkeypatch.chdir(tmp_path)
    name = f"apart_{uuid.uuid4().hex[:12]}"
    records = postgres_server.create_database(name)
    keys = keys_server.create_database(name + "_keys")
    yield records, keys
    postgres_server.drop_database(name)
    keys_server.drop_database(name + "_keys")


def _client(server: TemporaryPostgres, program: str, *args: str) -> None:
    """Run a PostgreSQL client program of the server's installation against it."""
    assert server.bin_dir is not None
    subprocess.run(
        [
            str(server.bin_dir / program),
            *("-h", server.host, "-p", str(server.port), "-U", server.user),
            *args,
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PGHOST": server.host},
    )


@pytest.mark.postgres
def test_postgresql_records_hold_no_wrapped_key_in_pages_files_or_wal(
    pg_urls: tuple[str, str], postgres_server: TemporaryPostgres
) -> None:
    """After erase_subject and an erasing sweep, the records database's pages (dead tuples
    included, via pageinspect), its relation files after VACUUM and CHECKPOINT, and the
    records server's pg_wal hold no wrapped key of the erased learner: they never did."""
    from tests.store_fixtures import retention_schedule

    records_url, keys_url = pg_urls
    with Store(records_url, keyring=_keyring(), keys=keys_url, clock=lambda: NOW) as store:
        _fill(store)
        wrapped = _wrapped_keys(store, ERASED) + _wrapped_keys(store, KEPT)
        _erase(store)
        store.sweep(retention_schedule(), now=NOW)
        assert store.get(Learner, ERASED) is None
    database = records_url.rsplit("/", 1)[-1]
    psql(postgres_server, database, "VACUUM")
    pages = dead_tuples(postgres_server, database)
    files = database_files(postgres_server, database)
    assert len(pages) > 0
    assert len(files) > 0
    for key in wrapped:
        assert key not in pages
        assert key not in files


@pytest.mark.postgres
def test_pg_dump_before_erasure_restores_nothing_of_the_erased(
    pg_urls: tuple[str, str],
    postgres_server: TemporaryPostgres,
    tmp_path: Path,
) -> None:
    """pg_dump the records, erase, restore the dump into a new database and open it with
    the master key and the current key database: the erased learner reads nothing, the
    other reads as before; the dump itself holds no wrapped key."""
    records_url, keys_url = pg_urls
    with Store(records_url, keyring=_keyring(), keys=keys_url, clock=lambda: NOW) as store:
        _fill(store)
        kept = store.records_of(KEPT)
        wrapped = _wrapped_keys(store, ERASED)
        database = records_url.rsplit("/", 1)[-1]
        dump = tmp_path / "records.sql"
        _client(postgres_server, "pg_dump", "-f", str(dump), database)
        _erase(store)
    for key in wrapped:
        assert key not in dump.read_bytes()
    restored = f"restored_{uuid.uuid4().hex[:8]}"
    restored_url = postgres_server.create_database(restored)
    try:
        _client(postgres_server, "psql", "-q", "-f", str(dump), restored)
        with Store(restored_url, keyring=_keyring(), keys=keys_url) as store:
            _erased_reads(store)
            assert store.records_of(KEPT) == kept
    finally:
        postgres_server.drop_database(restored)


@pytest.mark.postgres
def test_postgresql_key_database_names_no_learner(
    pg_urls: tuple[str, str], keys_server: TemporaryPostgres
) -> None:
    """The key database's pages (pageinspect, dead tuples included) hold key references
    only: neither learner id appears, before or after erasure."""
    records_url, keys_url = pg_urls
    with Store(records_url, keyring=_keyring(), keys=keys_url, clock=lambda: NOW) as store:
        _fill(store)
        _erase(store)
    pages = dead_tuples(keys_server, keys_url.rsplit("/", 1)[-1])
    assert b"k1_" in pages
    assert ERASED.encode() not in pages
    assert KEPT.encode() not in pages


@pytest.mark.postgres
def test_rotation_on_a_postgresql_key_database(pg_urls: tuple[str, str]) -> None:
    """A master-key rotation rewrites every key of a PostgreSQL key database in batches;
    the store then opens with the new key alone and reads every learner."""
    records_url, keys_url = pg_urls
    new = bytes(range(1, 33))
    with Store(records_url, keyring=_keyring(), keys=keys_url, clock=lambda: NOW) as store:
        _fill(store)
        kept = store.records_of(KEPT)
        assert store.keyring.rewrap() == 0
        store.keyring.rotate(new)
    with Store(records_url, keyring=Keyring(new), keys=keys_url) as store:
        assert store.records_of(KEPT) == kept
        assert store.get(Learner, ERASED) == learner(ERASED)


def test_an_erasure_interrupted_before_its_keys_are_destroyed_is_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies after the erasure committed and before the key database was
    touched: the rows are gone, the keys still there, the outbox holds the shred. The
    next open destroys the keys; a copy of the records taken before reads nothing."""
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    store = Store(url, keyring=_keyring(), clock=lambda: NOW)
    _fill(store)
    store.backup(str(tmp_path / "before.db"))

    class Killed(BaseException):
        """Stands for SIGKILL between the two commits."""

    def die(*_args: object, **_kwargs: object) -> int:
        raise Killed

    monkeypatch.setattr(type(store._keys), "apply_sent", die)
    with pytest.raises(Killed):
        store.erase_subject(ERASED, now=NOW)
    monkeypatch.undo()
    store.close()
    ref_keys = KeyDatabase(default_keys_url(url))
    keyring = ref_keys.keyring(_keyring())
    ref = keyring.key_ref(ERASED)
    # Committed erasure, keys not yet destroyed: the outbox says what is owed.
    assert any(e.wrapped for e in ref_keys.list_entries(ref) if e.scope == "contract")
    with sa.create_engine(url).connect() as connection:
        owed = connection.execute(sa.text("SELECT subject_ref FROM lp_key_outbox")).all()
    assert {row[0] for row in owed} == {ref}
    ref_keys.close()
    with Store(url, keyring=_keyring(), clock=lambda: NOW) as reopened:
        assert reopened.keyring.is_shredded(ERASED, "contract")
        with reopened._db.read() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM lp_key_outbox")).scalar() == 0
    shutil.copyfile(tmp_path / "before.db", tmp_path / "restored.db")
    restored = f"sqlite:///{tmp_path / 'restored.db'}"
    with Store(restored, keyring=_keyring(), keys=default_keys_url(url)) as copy:
        _erased_reads(copy)
        assert copy.get(Learner, KEPT) == learner(KEPT)


def test_a_writer_settles_a_pending_shred_before_using_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep erased a learner's consent rows and died before destroying the consent
    key; a new consent of that learner must not be encrypted under the doomed key: the
    writer settles the outbox first and gets a fresh key."""
    from learnprivacy.records import Consent

    url = f"sqlite:///{tmp_path / 'lms.db'}"
    store = Store(url, keyring=_keyring(), clock=lambda: NOW)
    _fill(store)
    consents = [r for r in store.records_of(KEPT) if isinstance(r, Consent)]
    ref = store.keyring.key_ref(KEPT)
    before = {e.key_id for e in store._keys.list_entries(ref, "consent")}

    def skip(*_args: object, **_kwargs: object) -> int:
        return 0

    monkeypatch.setattr(type(store._keys), "apply_sent", skip)
    store.erase_records(consents, now=NOW, reason="retention test")
    monkeypatch.undo()
    # The doomed key is still alive in the key database...
    assert any(e.wrapped for e in store._keys.list_entries(ref, "consent"))
    fresh = Consent(id=f"{KEPT}-K9", learner_id=KEPT, purpose="newsletter", given_at=NOW)
    store.add(fresh)
    # ...until the writer settled it: the new consent uses a new key.
    entries = list(store._keys.list_entries(ref, "consent"))
    assert all(not e.wrapped for e in entries if e.key_id in before)
    assert store.get(Consent, fresh.id) == fresh
    store.close()


def test_a_batch_writer_in_another_process_settles_a_shred_it_did_not_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for ``add_all`` in a second process, already open when the sweep died
    (so its open did not apply the outbox): the probe of the outbox sees the row the
    other process committed, and the batch's new consent gets a fresh key."""
    from learnprivacy.records import Consent

    url = f"sqlite:///{tmp_path / 'lms.db'}"
    store = Store(url, keyring=_keyring(), clock=lambda: NOW)
    _fill(store)
    other = Store(url, keyring=_keyring(), clock=lambda: NOW)
    try:
        consents = [r for r in store.records_of(KEPT) if isinstance(r, Consent)]
        ref = store.keyring.key_ref(KEPT)
        before = {e.key_id for e in store._keys.list_entries(ref, "consent")}
        monkeypatch.setattr(type(store._keys), "apply_sent", lambda *_a, **_k: 0)
        store.erase_records(consents, now=NOW, reason="retention test")
        monkeypatch.undo()
        with other._db.read() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM lp_key_outbox")).scalar()
        assert any(e.wrapped for e in other._keys.list_entries(ref, "consent"))
        fresh = Consent(id=f"{KEPT}-K9", learner_id=KEPT, purpose="newsletter", given_at=NOW)
        newcomer = learner("learner-new-4Qx")
        other.add_all([newcomer, fresh])
        entries = list(other._keys.list_entries(ref, "consent"))
        assert all(not e.wrapped for e in entries if e.key_id in before)
        assert {e.key_id for e in entries if e.wrapped}.isdisjoint(before)
        assert other.get(Consent, fresh.id) == fresh
        store.keyring.clear_cache()
        assert store.get(Consent, fresh.id) == fresh
        assert store.get(Learner, newcomer.id) == newcomer
    finally:
        other.close()
        store.close()

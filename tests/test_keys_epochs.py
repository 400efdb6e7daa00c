"""Key epochs: a copy of the key database taken before an erasure opens nothing of the
erased learner once the keys are compacted, even with the master key and the vault.

The threat model (docs/security.md): someone holds copies of both databases taken
before an erasure, the master key and the current vault. Before compaction they read the
erased learner (the control below shows it); after it they must read nothing of them,
while every live learner stays readable from the current databases.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from learnprivacy.crypto import Keyring
from learnprivacy.errors import ConfigurationError, WrongMasterKeyError
from learnprivacy.records import Learner
from learnprivacy.store import Store
from learnprivacy.store._epochs import FileVault, default_vault
from tests import sqlite_copy
from tests.store_fixtures import MASTER_KEY, NOW, learner, records_for

if TYPE_CHECKING:
    from learnprivacy.testing.postgres import TemporaryPostgres

ERASED = "learner-erased-4Kv"
KEPT = "learner-kept-8Hn"
ROOT = Path(__file__).resolve().parent.parent


def _keyring() -> Keyring:
    return Keyring.from_master_key(MASTER_KEY)


def _fill(store: Store, extra: int = 0) -> None:
    store.add_all([learner(ERASED), *records_for(ERASED), learner(KEPT), *records_for(KEPT)])
    store.add_all([learner(f"bulk-{i}") for i in range(extra)])


def _read_erased(records: str, keys: str, vault: Path) -> Learner | None:
    """What the attacker reads of the erased learner from old copies of both databases,
    the master key and the current vault (each attempt on fresh copies of the copies)."""
    with Store(records, keyring=_keyring(), keys=keys, vault=vault) as store:
        return store.get(Learner, ERASED)


def _attack_after_compaction(records: str, keys: str, vault: Path) -> None:
    """After compaction, the old key-database copy names an epoch the vault no longer
    holds: the store refuses to open it. An attacker who edits the copy to name the
    current epoch opens it, and still reads nothing: the wrapped keys do not open."""
    with pytest.raises(ConfigurationError, match="epoch"):
        _read_erased(records, keys, vault)
    state = FileVault(vault).read()
    assert state is not None
    from learnprivacy.keys import KeyDatabase

    with KeyDatabase(keys) as copy, copy.epoch_transaction() as (connection, _cur, _nxt):
        copy.set_epochs(connection, state["current"], "")
    with pytest.raises(WrongMasterKeyError):
        _read_erased(records, keys, vault)


def test_an_old_key_database_copy_opens_nothing_of_a_learner_erased_before_compaction(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    vault = tmp_path / "lms.keys.vault"
    with Store(url, keyring=_keyring(), clock=lambda: NOW) as store:
        _fill(store)
        store.compact_keys(now=NOW)  # the store moves to epochs
        assert vault.exists()
        kept = store.records_of(KEPT)
        store.backup(str(tmp_path / "records-before.db"))
        store._key_db.backup(str(tmp_path / "keys-before.db"))
        store.erase_subject(ERASED, now=NOW)
        assert store.key_epoch_status()["erased_awaiting_compaction"] == 1
        # Control: before compaction the old copies, the master key and the vault
        # still read the erased learner. This is what compaction must end.
        old_records = sqlite_copy(tmp_path / "records-before.db", tmp_path / "r1.db")
        old_keys = sqlite_copy(tmp_path / "keys-before.db", tmp_path / "k1.db")
        found = _read_erased(old_records, old_keys, vault)
        assert found is not None
        assert found.email == learner(ERASED).email
        report = store.compact_keys(now=NOW)
        assert report["epoch"] == 2
        assert report["rewrapped"] > 0
        status = store.key_epoch_status()
        assert status["epoch"] == 2
        assert status["erased_awaiting_compaction"] == 0
        assert status["compacted_at"] == NOW.isoformat()
        entry = [e for e in store.audit.entries() if e.action == "compact_keys"][-1]
        assert entry.subject_ref is None
        assert set(entry.details) == {
            "epoch",
            "rewrapped",
            "live_keys",
            "erased_subjects",
            "resumed",
        }
    # The attack: old copies of both databases + master key + the current vault.
    old_records = sqlite_copy(tmp_path / "records-before.db", tmp_path / "r2.db")
    old_keys = sqlite_copy(tmp_path / "keys-before.db", tmp_path / "k2.db")
    _attack_after_compaction(old_records, old_keys, vault)
    # Nor at a lower level: no wrapped key of the old copy opens under any key we hold.
    old_keyring = Keyring.from_master_key(MASTER_KEY)
    vault_state = FileVault(vault).read()
    assert vault_state is not None
    assert len(vault_state["epochs"]) == 1
    # Every live learner reads from the current databases, before and after reopening.
    with Store(url, keyring=_keyring(), clock=lambda: NOW) as store:
        assert store.records_of(KEPT) == kept
        assert store.get(Learner, ERASED) is None
        assert store.keyring.wrapping_key_id != old_keyring.master_key_id


def test_a_store_with_keys_under_the_master_key_moves_to_epochs(tmp_path: Path) -> None:
    """A store from before epochs (no vault) opens as before, and its first compaction
    rewraps every key under an epoch key."""
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    with Store(url, keyring=_keyring()) as store:
        _fill(store, extra=20)
        master_id = store.keyring.master_key_id
        assert {e.master_key_id for e in store._keys.list_entries() if e.wrapped} == {master_id}
        assert not (tmp_path / "lms.keys.vault").exists()
        store.compact_keys(now=NOW)
        wrappers = {e.master_key_id for e in store._keys.list_entries() if e.wrapped}
        assert wrappers == {store.keyring.wrapping_key_id} != {master_id}
    with Store(url, keyring=_keyring()) as store:
        assert store.get(Learner, "bulk-3") == learner("bulk-3")
        store.add(learner("new-one"))
        assert store.get(Learner, "new-one") == learner("new-one")


def test_a_store_on_epochs_refuses_to_open_without_its_vault(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    with Store(url, keyring=_keyring()) as store:
        _fill(store)
        store.compact_keys(now=NOW)
    (tmp_path / "lms.keys.vault").rename(tmp_path / "elsewhere.vault")
    with pytest.raises(ConfigurationError, match="vault"):
        Store(url, keyring=_keyring())
    with Store(url, keyring=_keyring(), vault=tmp_path / "elsewhere.vault") as store:
        assert store.get(Learner, KEPT) == learner(KEPT)


def test_a_vault_under_another_master_key_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    with Store(url, keyring=_keyring()) as store:
        _fill(store)
        store.compact_keys(now=NOW)
    with pytest.raises(WrongMasterKeyError):
        Store(url, keyring=Keyring.generate())


def test_the_vault_file_keeps_no_trace_of_the_destroyed_epoch(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    vault = tmp_path / "lms.keys.vault"
    with Store(url, keyring=_keyring()) as store:
        _fill(store)
        store.compact_keys(now=NOW)
        before = FileVault(vault).read()
        assert before is not None
        (old_wrapped,) = before["epochs"].values()
        store.compact_keys(now=NOW)
    data = vault.read_bytes()
    assert old_wrapped.encode() not in data
    assert len(data) == 8192  # overwritten in place, never grown


@pytest.mark.parametrize(
    "point",
    ["progress:1", "progress:90", "progress:205", "vault:1:0", "vault:2:0", "vault:2:1", "meta"],
)
def test_a_compaction_killed_at_any_point_loses_nothing(tmp_path: Path, point: str) -> None:
    """SIGKILL during a compaction (of a store already on epochs), then run it again:
    every live learner reads, the erased one does not, one epoch is left in the vault."""
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    with Store(url, keyring=_keyring(), clock=lambda: NOW) as store:
        _fill(store, extra=200)
        store.compact_keys(now=NOW)
        store.erase_subject(ERASED, now=NOW)
    done = subprocess.run(
        [sys.executable, "-m", "tests.epoch_worker", url, point],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr
    with Store(url, keyring=_keyring(), clock=lambda: NOW) as store:
        # Readable before the rerun too: both epochs are still in the vault.
        assert store.get(Learner, "bulk-150") == learner("bulk-150")
        store.compact_keys(now=NOW)
    with Store(url, keyring=_keyring(), clock=lambda: NOW) as store:
        for i in range(200):
            assert store.get(Learner, f"bulk-{i}") == learner(f"bulk-{i}")
        assert store.get(Learner, KEPT) == learner(KEPT)
        assert store.get(Learner, ERASED) is None
        state = FileVault(tmp_path / "lms.keys.vault").read()
        assert state is not None
        assert len(state["epochs"]) == 1
        assert state["next"] is None
        wrappers = {e.master_key_id for e in store._keys.list_entries() if e.wrapped}
        assert wrappers == {state["current"]}


def test_master_key_rotation_keeps_the_vault_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lms.db'}"
    new_master = bytes(range(1, 33))
    with Store(url, keyring=_keyring()) as store:
        _fill(store)
        store.compact_keys(now=NOW)
    rotating = Keyring(new_master, previous_master_keys=[MASTER_KEY])
    with Store(url, keyring=rotating) as store:
        store.keyring.rewrap()
    with Store(url, keyring=Keyring.from_master_key(new_master)) as store:
        assert store.get(Learner, KEPT) == learner(KEPT)
        store.compact_keys(now=NOW)
        assert store.get(Learner, KEPT) == learner(KEPT)


def test_default_vault_places() -> None:
    from learnprivacy.keys import KeyDatabase

    with KeyDatabase("sqlite://") as keys:
        assert default_vault(keys).describe() == "memory"


# -- PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture
def pg_urls(postgres_server: TemporaryPostgres) -> Iterator[tuple[str, str, str]]:
    name = f"epochs_{uuid.uuid4().hex[:12]}"
    records = postgres_server.create_database(name)
    keys = postgres_server.create_database(name + "_keys")
    yield name, records, keys
    for suffix in ("", "_keys", "_old", "_old_keys"):
        postgres_server.drop_database(name + suffix)


@pytest.mark.postgres
def test_postgresql_old_key_database_copy_opens_nothing_after_compaction(
    pg_urls: tuple[str, str, str],
    postgres_server: TemporaryPostgres,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The key database copied (CREATE DATABASE ... TEMPLATE) before the erasure, with the
    records copied likewise: before compaction they read the erased learner, after it
    they read nothing; the vault is ``<keys database>.vault`` in the working directory."""
    monkeypatch.chdir(tmp_path)
    name, records, keys = pg_urls
    with Store(records, keyring=_keyring(), keys=keys) as store:
        _fill(store)
        store.compact_keys(now=NOW)
        assert (tmp_path / f"{name}_keys.vault").exists()
        kept = store.records_of(KEPT)
    old_records = _pg_copy(postgres_server, name, name + "_old")
    old_keys = _pg_copy(postgres_server, name + "_keys", name + "_old_keys")
    vault = tmp_path / f"{name}_keys.vault"
    with Store(records, keyring=_keyring(), keys=keys) as store:
        store.erase_subject(ERASED, now=NOW)
    # Control: before compaction the copies and the vault read the erased learner.
    found = _read_erased(old_records, old_keys, vault)
    assert found is not None
    assert found.email == learner(ERASED).email
    with Store(records, keyring=_keyring(), keys=keys) as store:
        store.compact_keys(now=NOW)
        assert store.records_of(KEPT) == kept
        assert store.get(Learner, ERASED) is None
    _attack_after_compaction(old_records, old_keys, vault)


def _pg_copy(server: TemporaryPostgres, source: str, target: str) -> str:
    """``CREATE DATABASE target TEMPLATE source``: a byte copy, as a restore would give."""
    import sqlalchemy as sa

    engine = sa.create_engine(server.url_for("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": source},
            )
            connection.execute(sa.text(f'CREATE DATABASE "{target}" TEMPLATE "{source}"'))
    finally:
        engine.dispose()
    return server.url_for(target)


def test_a_sweep_that_erased_compacts_unless_told_not_to(tmp_path: Path) -> None:
    """sweep() ends with a compaction when it erased something; not after a dry run, not
    when it erased nothing, never with compact=False."""
    from tests.store_fixtures import population, retention_schedule

    url = f"sqlite:///{tmp_path / 'lms.db'}"
    with Store(url, keyring=_keyring(), clock=lambda: NOW) as store:
        store.add_all(population(25))
        dry = store.sweep(retention_schedule(), now=NOW, dry_run=True)
        assert dry.erased > 0
        assert store.key_epoch_status()["epoch"] == 0
        report = store.sweep(retention_schedule(), now=NOW)
        assert report.erased > 0
        status = store.key_epoch_status()
        assert status["epoch"] == 1
        assert status["erased_awaiting_compaction"] == 0
        again = store.sweep(retention_schedule(), now=NOW)
        assert again.erased == 0
        assert store.key_epoch_status()["epoch"] == 1
    other = f"sqlite:///{tmp_path / 'other.db'}"
    with Store(other, keyring=_keyring(), clock=lambda: NOW) as store:
        store.add_all(population(25))
        assert store.sweep(retention_schedule(), now=NOW, compact=False).erased > 0
        assert store.key_epoch_status()["epoch"] == 0
        assert store.key_epoch_status()["erased_awaiting_compaction"] > 0

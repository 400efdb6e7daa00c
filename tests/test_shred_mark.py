"""The key database's shred mark: cached keys trusted without a look-up only while no key
was taken away since they were read.

Each ``KeyDatabase`` opened on the same file stands for another worker process, with its
own keyring and cache. A keyring skips the per-learner look-up of a fetch when the mark
it read before its keys is still the mark; every way a live key can go must change it,
in the shredding transaction, and no way of bringing an old value back may fool it.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest

from learnprivacy.crypto import Keyring
from learnprivacy.crypto._keystore import InMemoryKeyStore, KeyState
from learnprivacy.errors import ConfigurationError
from learnprivacy.keys import KeyDatabase
from learnprivacy.store._keydb import _bump_mark
from tests.store_fixtures import keyrings_on

MASTER = bytes(range(32))
ANA, BOB = "learner-ana", "learner-bob"


@contextmanager
def two_workers(tmp_path: Path) -> Iterator[tuple[Keyring, Keyring, Path]]:
    """A worker keyring and an eraser keyring, each on its own connection to one file."""
    path = tmp_path / "keys.db"
    with keyrings_on(f"sqlite:///{path}", MASTER) as (worker, eraser):
        yield worker, eraser, path


def cache_keys(keyring: Keyring, *subjects: str) -> None:
    """Make and cache the keys of ``subjects`` as a flush does: inside the key database's
    batch, so that they are dated by the mark its prefetch read."""
    store: Any = keyring.store
    with store.batch(keyring._key_refs(subjects).values()):
        keyring._sealers(subjects, "default")
        store.flush()


def restored(worker: Keyring, eraser: Keyring, backup: Path, path: Path) -> Keyring:
    """Both workers' connections closed, the key database file replaced by ``backup``:
    a keyring opened on the restored file (the caller closes its store)."""
    worker.store.close()  # type: ignore[attr-defined]
    eraser.store.close()  # type: ignore[attr-defined]
    shutil.copy(backup, path)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return Keyring.from_master_key(MASTER, store=KeyDatabase(f"sqlite:///{path}"))


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []
    real = KeyDatabase.live_entries

    def counted(self: KeyDatabase, refs: Any) -> Any:
        seen.append(len(refs))
        return real(self, refs)

    monkeypatch.setattr(KeyDatabase, "live_entries", counted)
    return seen


def test_nothing_shredded_means_no_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _counting(monkeypatch)
    with two_workers(tmp_path) as (worker, eraser, _path):
        cache_keys(worker, ANA, BOB)
        worker._drop_stale([ANA, BOB])
        worker._drop_stale([ANA, BOB])
        assert seen == []  # the look-up of the old code, every fetch, is gone
        # Nothing live destroyed and no tombstone written (a sweep's shred): the mark
        # stays. (A new tombstone changes it: tests/test_shred_mark_restore.py.)
        somebody = eraser.key_ref("learner-somebody-else")
        assert eraser.store.shred_many([(somebody, None)], tombstone=False) == 0  # type: ignore[attr-defined]
        worker._drop_stale([ANA])
        assert seen == []
        cache_keys(eraser, "learner-carol")
        eraser.shred("learner-carol")  # a live key went: the next fetch looks its learners up
        worker._drop_stale([ANA, BOB])
        assert seen == [2]
        worker._drop_stale([ANA, BOB])  # ... and dates them with the new mark
        assert seen == [2]
        assert worker._cache.get(ANA) is not None


def test_another_worker_s_shred_drops_the_cached_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with two_workers(tmp_path) as (worker, eraser, _path):
        cache_keys(worker, ANA, BOB)
        worker._drop_stale([ANA, BOB])
        assert eraser.shred(ANA) == 1
        worker._drop_stale([ANA, BOB])
        assert worker._cache.get(ANA) is None
        assert worker._cache.get(BOB) is not None


def test_destroying_one_key_changes_the_mark(tmp_path: Path) -> None:
    with two_workers(tmp_path) as (worker, eraser, _path):
        cache_keys(worker, ANA)
        key_id = next(iter(worker._cache.subjects[ANA].aeads))
        assert eraser.destroy_key(ANA, key_id)
        worker._drop_stale([ANA])
        assert worker._cache.get(ANA) is None


def test_an_update_to_the_shredded_state_changes_the_mark(tmp_path: Path) -> None:
    with two_workers(tmp_path) as (worker, eraser, _path):
        cache_keys(worker, ANA)
        store: Any = eraser.store
        (entry,) = store.list_entries(eraser.key_ref(ANA))
        assert store.update(attrs.evolve(entry, state=KeyState.SHREDDED, wrapped=b""))
        worker._drop_stale([ANA])
        assert worker._cache.get(ANA) is None


def test_a_shred_that_rolls_back_loses_no_later_shred(tmp_path: Path) -> None:
    with two_workers(tmp_path) as (worker, eraser, _path):
        cache_keys(worker, ANA, BOB)
        before = worker.store.shred_mark()  # type: ignore[attr-defined]
        store: Any = eraser.store
        ref = eraser.key_ref(ANA)

        def failing_shred() -> None:
            with store.database.write() as connection:
                # The shred and its mark written, then the transaction fails.
                connection.exec_driver_sql(
                    "UPDATE lpk_keys SET state = 'shredded', wrapped = x'' WHERE subject_ref = ?",
                    (ref,),
                )
                _bump_mark(connection)
                raise RuntimeError("the shredding transaction fails")

        with pytest.raises(RuntimeError):
            failing_shred()
        assert worker.store.shred_mark() == before  # type: ignore[attr-defined]
        worker._drop_stale([ANA])
        assert worker._cache.get(ANA) is not None  # nothing was shredded
        assert eraser.shred(ANA) == 1  # then for real
        worker._drop_stale([ANA])
        assert worker._cache.get(ANA) is None


def test_a_fetch_during_an_uncommitted_shred_sees_it_once_committed(tmp_path: Path) -> None:
    with two_workers(tmp_path) as (worker, eraser, path):
        cache_keys(worker, ANA)
        ref = eraser.key_ref(ANA)
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute(
                "UPDATE lpk_keys SET state = 'shredded', wrapped = x'' WHERE subject_ref = ?",
                (ref,),
            )
            other.execute("UPDATE lpk_meta SET value = 'racing' WHERE key = 'shred_mark'")
            worker._drop_stale([ANA])  # reads the committed state: Ana's key is live
            assert worker._cache.get(ANA) is not None
            other.execute("COMMIT")
        finally:
            other.close()
        worker._drop_stale([ANA])
        assert worker._cache.get(ANA) is None


@pytest.mark.parametrize("when", ["after the mark is read", "after the look-up"])
def test_a_shred_racing_the_check_is_never_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """A shred committed between the reads of one check: this check may keep the key
    (the shred came after it began), the next must not."""
    with two_workers(tmp_path) as (worker, eraser, _path):
        cache_keys(worker, ANA, BOB)
        cache_keys(eraser, "learner-carol")
        eraser.shred("learner-carol")  # the worker's marks are now old: it will look up
        fired: list[bool] = []

        def shred_once() -> None:
            if not fired:
                fired.append(True)
                assert eraser.shred(ANA) == 1

        if when == "after the mark is read":
            real_mark = KeyDatabase.shred_mark

            def mark(self: KeyDatabase) -> str:
                found = real_mark(self)
                if self is worker.store:
                    shred_once()
                return found

            monkeypatch.setattr(KeyDatabase, "shred_mark", mark)
        else:
            real_live = KeyDatabase.live_entries

            def live(self: KeyDatabase, refs: Any) -> Any:
                found = real_live(self, refs)
                shred_once()
                return found

            monkeypatch.setattr(KeyDatabase, "live_entries", live)
        worker._drop_stale([ANA, BOB])
        assert fired
        worker._drop_stale([ANA, BOB])
        assert worker._cache.get(ANA) is None
        assert worker._cache.get(BOB) is not None


def test_a_restored_key_database_cannot_replay_a_mark(tmp_path: Path) -> None:
    """The key database is restored from a backup, then shreds again: its mark must not
    come back to a value the worker dated its keys with (a count would: 5, 6, restore
    to 5, 6 again)."""
    with two_workers(tmp_path) as (worker, eraser, path):
        cache_keys(eraser, "learner-carol", "learner-dan")
        backup = tmp_path / "keys-backup.db"
        eraser.store.backup(str(backup))  # type: ignore[attr-defined]
        eraser.shred("learner-carol")
        cache_keys(worker, ANA)  # dated with the mark after Carol's shred
        worker._drop_stale([ANA])
        restarted = restored(worker, eraser, backup, path)
        try:
            # The same number of shreds as before the restore, of the worker's learner now.
            cache_keys(restarted, ANA)
            assert restarted.shred(ANA) == 1
            worker._drop_stale([ANA])
            assert worker._cache.get(ANA) is None
        finally:
            restarted.store.close()  # type: ignore[attr-defined]


def test_keys_read_without_a_mark_are_looked_up(tmp_path: Path) -> None:
    """A key read one at a time (no batch, no mark) is looked up at the next fetch."""
    with two_workers(tmp_path) as (worker, eraser, _path):
        cache_keys(eraser, ANA)
        worker._sealer(ANA, "default")
        assert worker._cache.subjects[ANA].checked is None
        eraser.shred(ANA)
        worker._drop_stale([ANA])
        assert worker._cache.get(ANA) is None


def test_a_key_added_under_another_mark_undates_the_entry(tmp_path: Path) -> None:
    with two_workers(tmp_path) as (worker, eraser, _path):
        cache_keys(worker, ANA)
        cache_keys(eraser, "learner-carol")
        eraser.shred("learner-carol")
        with worker.store.batch([worker.key_ref(ANA)]):  # type: ignore[attr-defined]
            worker._sealers([ANA], "contract")  # a second scope, under the new mark
        assert worker._cache.subjects[ANA].checked is None


def test_in_memory_store_marks_without_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    store = InMemoryKeyStore()
    worker = Keyring.from_master_key(MASTER, store=store)
    eraser = Keyring.from_master_key(MASTER, store=store)
    worker._sealers([ANA, BOB], "default")
    seen: list[object] = []
    real = InMemoryKeyStore.list_entries

    def listed(self: InMemoryKeyStore, *args: Any) -> Any:
        seen.append(args)
        return real(self, *args)

    monkeypatch.setattr(InMemoryKeyStore, "list_entries", listed)
    worker._drop_stale([ANA, BOB])
    assert seen == []
    assert eraser.shred(ANA) == 1
    worker._drop_stale([ANA, BOB])
    assert worker._cache.get(ANA) is None
    assert worker._cache.get(BOB) is not None


def test_a_version_1_key_database_is_upgraded(tmp_path: Path) -> None:
    """The key database of an earlier release (a SQLite dump kept in tests/vectors) gets
    its shred mark when it opens, and shreds change it."""
    path = tmp_path / "old.keys.db"
    dump = Path(__file__).parent / "vectors" / "inplace_single_key_keys.sql"
    with sqlite3.connect(path) as connection:
        connection.executescript(dump.read_text())
        assert (
            connection.execute("SELECT value FROM lpk_meta WHERE key = 'shred_mark'").fetchone()
            is None
        )
    keys = KeyDatabase(f"sqlite:///{path}")
    try:
        meta = keys.read_meta()
        assert meta["schema_version"] == "2"
        first = keys.shred_mark()
        assert first
        assert first == meta["shred_mark"]
        keyring = Keyring.from_master_key(MASTER, store=keys)
        keyring.verify()
        refs = [e.subject for e in keys.list_entries() if e.state is KeyState.ACTIVE]
        assert keys.shred_many([(refs[-1], None)]) >= 1
        assert keys.shred_mark() != first
    finally:
        keys.close()


def test_a_newer_key_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    KeyDatabase(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE lpk_meta SET value = '3' WHERE key = 'schema_version'")
    with pytest.raises(ConfigurationError, match="newer learnprivacy"):
        KeyDatabase(f"sqlite:///{path}")


# -- on a PostgreSQL key database ----------------------------------------------------------


@pytest.mark.postgres
def test_postgres_marks_shreds_of_another_worker(
    pg_workers: tuple[Keyring, Keyring], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker, eraser = pg_workers
    seen = _counting(monkeypatch)
    cache_keys(worker, ANA, BOB)
    worker._drop_stale([ANA, BOB])
    assert seen == []
    store: Any = eraser.store
    ref = eraser.key_ref(ANA)

    def failing_shred() -> None:
        with store.database.write() as connection:
            connection.exec_driver_sql(
                "UPDATE lpk_keys SET state = 'shredded', wrapped = '' WHERE subject_ref = %s",
                (ref,),
            )
            _bump_mark(connection)
            raise RuntimeError("the shredding transaction fails")

    with pytest.raises(RuntimeError):
        failing_shred()
    worker._drop_stale([ANA, BOB])
    assert seen == []
    assert worker._cache.get(ANA) is not None
    assert eraser.shred(ANA) == 1
    worker._drop_stale([ANA, BOB])
    assert seen == [2]
    assert worker._cache.get(ANA) is None
    assert worker._cache.get(BOB) is not None


@pytest.mark.postgres
def test_postgres_a_check_during_an_uncommitted_shred_sees_it_once_committed(
    pg_workers: tuple[Keyring, Keyring],
) -> None:
    worker, eraser = pg_workers
    cache_keys(worker, ANA)
    ref = eraser.key_ref(ANA)
    store: Any = eraser.store
    with store.engine.connect() as connection:
        shredding = connection.begin()
        connection.exec_driver_sql(
            "UPDATE lpk_keys SET state = 'shredded', wrapped = '' WHERE subject_ref = %s",
            (ref,),
        )
        _bump_mark(connection)
        worker._drop_stale([ANA])  # not blocked, and sees the committed state only
        assert worker._cache.get(ANA) is not None
        shredding.commit()
    worker._drop_stale([ANA])
    assert worker._cache.get(ANA) is None


@pytest.mark.postgres
def test_postgres_a_shred_committed_after_the_look_up_is_seen_next(
    pg_workers: tuple[Keyring, Keyring], monkeypatch: pytest.MonkeyPatch
) -> None:
    worker, eraser = pg_workers
    cache_keys(worker, ANA, BOB)
    cache_keys(eraser, "learner-carol")
    eraser.shred("learner-carol")
    real_live = KeyDatabase.live_entries
    fired: list[bool] = []

    def live(self: KeyDatabase, refs: Any) -> Any:
        found = real_live(self, refs)
        if not fired:
            fired.append(True)
            assert eraser.shred(ANA) == 1
        return found

    monkeypatch.setattr(KeyDatabase, "live_entries", live)
    worker._drop_stale([ANA, BOB])
    assert fired
    worker._drop_stale([ANA, BOB])
    assert worker._cache.get(ANA) is None
    assert worker._cache.get(BOB) is not None

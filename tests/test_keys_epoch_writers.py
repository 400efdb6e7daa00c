"""Writers that opened the store before a compaction lose nothing.

A process holding the store open keeps the epoch key it loaded. When another process
compacts, that key is destroyed in the vault; every data key the first process creates
afterwards must still end up wrapped under the current epoch key, or it is lost when
that process restarts. Each key insert checks, in its own key-database transaction,
that it wraps under the epoch the key database names as current, and re-wraps first if
not; the last re-wrap pass of a compaction and the switch of the current epoch are one
transaction. These tests open two stores (and two processes) on the same databases,
compact in one while the other writes, then reopen everything fresh and read it all.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from learnprivacy.crypto import Keyring
from learnprivacy.errors import ConfigurationError
from learnprivacy.records import Learner
from learnprivacy.store import Store
from learnprivacy.store._epochs import FileVault
from tests.store_fixtures import MASTER_KEY, NOW, learner, records_for

if TYPE_CHECKING:
    from learnprivacy.testing.postgres import TemporaryPostgres

ROOT = Path(__file__).resolve().parent.parent
ERASED = "learner-erased-5Qp"


def _keyring() -> Keyring:
    return Keyring.from_master_key(MASTER_KEY)


class _Place:
    """Records URL, keys URL and vault path of one store under test."""

    def __init__(self, records: str, keys: str, vault: Path) -> None:
        self.records, self.keys, self.vault = records, keys, vault

    def open(self) -> Store:
        return Store(
            self.records, keyring=_keyring(), keys=self.keys, vault=self.vault, clock=lambda: NOW
        )


@pytest.fixture
def sqlite_place(tmp_path: Path) -> _Place:
    return _Place(
        f"sqlite:///{tmp_path / 'lms.db'}",
        f"sqlite:///{tmp_path / 'lms.keys.db'}",
        tmp_path / "lms.keys.vault",
    )


@pytest.fixture
def pg_place(postgres_server: TemporaryPostgres, tmp_path: Path) -> Iterator[_Place]:
    name = f"writers_{uuid.uuid4().hex[:12]}"
    records = postgres_server.create_database(name)
    keys = postgres_server.create_database(name + "_keys")
    yield _Place(records, keys, tmp_path / f"{name}_keys.vault")
    postgres_server.drop_database(name)
    postgres_server.drop_database(name + "_keys")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def place(request: pytest.FixtureRequest) -> _Place:
    fixture = "sqlite_place" if request.param == "sqlite" else "pg_place"
    found: _Place = request.getfixturevalue(fixture)
    return found


def _prepare(place: _Place, count: int = 30) -> None:
    """A store already on epochs, with ``count`` learners and one to erase."""
    with place.open() as store:
        store.add_all([learner(ERASED), *records_for(ERASED)])
        store.add_all([learner(f"old-{i}") for i in range(count)])
        store.compact_keys(now=NOW)
        assert store.key_epoch_status()["epoch"] == 1


def _check_all_readable(place: _Place, names: list[str]) -> None:
    """Fresh process state: every named learner decrypts, and every live key is wrapped
    under the one epoch key the vault holds."""
    with place.open() as store:
        for name in names:
            assert store.get(Learner, name) == learner(name), name
        state = FileVault(place.vault).read()
        assert state is not None
        assert set(state["epochs"]) == {state["current"]}
        wrappers = {e.master_key_id for e in store._keys.list_entries() if e.wrapped}
        assert wrappers == {state["current"]}


def test_a_store_opened_before_a_compaction_keeps_the_keys_it_creates_after(
    place: _Place,
) -> None:
    """Store A stays open while store B compacts twice; A creates new learners' keys
    after each compaction and reads learners whose keys B re-wrapped. Reopened fresh,
    every record decrypts. (Before the fix, A's new keys were wrapped under the epoch
    key B had destroyed: the fresh reopen raised WrongMasterKeyError.)"""
    _prepare(place)
    first = place.open()
    try:
        assert first.get(Learner, "old-0") == learner("old-0")
        with place.open() as second:
            second.erase_subject(ERASED, now=NOW)
            second.compact_keys(now=NOW)
        # A still holds epoch 1, destroyed now; epoch 2 is current.
        first.add_all([learner(f"new-a-{i}") for i in range(5)])
        first.add(learner("new-a-single"))
        # A learner A never read: its key is wrapped under epoch 2 only.
        assert first.get(Learner, "old-7") == learner("old-7")
        with place.open() as second:
            second.compact_keys(now=NOW)
            assert second.key_epoch_status()["epoch"] == 3
        first.add_all([learner(f"new-b-{i}") for i in range(5)])
        assert first.get(Learner, "new-a-3") == learner("new-a-3")
    finally:
        first.close()
    names = [f"old-{i}" for i in range(30)]
    names += [f"new-a-{i}" for i in range(5)] + ["new-a-single"]
    names += [f"new-b-{i}" for i in range(5)]
    _check_all_readable(place, names)
    with place.open() as store:
        assert store.get(Learner, ERASED) is None


def test_a_store_opened_before_the_first_compaction_follows_it(sqlite_place: _Place) -> None:
    """A store opened while the keys were still under the master key, writing after the
    first compaction: its new keys go under the epoch key too."""
    place = sqlite_place
    with place.open() as store:
        store.add_all([learner(f"old-{i}") for i in range(10)])
    first = place.open()
    try:
        with place.open() as second:
            second.compact_keys(now=NOW)
        first.add_all([learner(f"new-{i}") for i in range(5)])
        assert first.get(Learner, "old-4") == learner("old-4")
    finally:
        first.close()
    _check_all_readable(place, [f"old-{i}" for i in range(10)] + [f"new-{i}" for i in range(5)])


def test_a_writer_that_cannot_load_the_new_epoch_key_gets_a_typed_error_and_loses_nothing(
    sqlite_place: _Place, tmp_path: Path
) -> None:
    """A compaction destroyed the epoch key store A holds, and A cannot reach the vault
    holding the new one: writing a new learner raises ConfigurationError, nothing is
    inserted (no record, no key), and once the vault is back the same store writes."""
    place = sqlite_place
    _prepare(place)
    first = place.open()
    try:
        with place.open() as second:
            second.compact_keys(now=NOW)
        keys_before = first._key_db.counts()
        place.vault.rename(tmp_path / "moved.vault")
        with pytest.raises(ConfigurationError, match="epoch"):
            first.add(learner("new-0"))
        with pytest.raises(ConfigurationError, match="epoch"):
            first.add_all([learner(f"new-{i}") for i in range(1, 4)])
        assert first._key_db.counts() == keys_before
        (tmp_path / "moved.vault").rename(place.vault)
        for i in range(4):
            assert first.get(Learner, f"new-{i}") is None
        first.add_all([learner(f"new-{i}") for i in range(4)])
    finally:
        first.close()
    _check_all_readable(place, [f"old-{i}" for i in range(30)] + [f"new-{i}" for i in range(4)])


@pytest.mark.slow
def test_a_writer_process_loses_nothing_across_compactions_in_another_process(
    place: _Place, tmp_path: Path
) -> None:
    """Two real processes: one adds learners in small batches without pause; this one
    compacts three times meanwhile. Then everything is reopened fresh and read."""
    _prepare(place)
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.epoch_writer",
            place.records,
            place.keys,
            str(place.vault),
            "w",
            "60",
            str(stop),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        for _ in range(3):
            time.sleep(0.2)
            with place.open() as store:
                store.compact_keys(now=NOW)
        # The writer goes on past the last compaction before it sees the stop file.
        time.sleep(0.5)
        stop.touch()
        out, err = writer.communicate(timeout=240)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == 0, err
    written = int(out.split()[-1])
    assert written >= 60
    with place.open() as store:
        assert store.key_epoch_status()["epoch"] == 4
    _check_all_readable(place, [f"old-{i}" for i in range(30)] + [f"w-{i}" for i in range(written)])

"""An erasure says whether its rows' old pages left SQLite's write-ahead log.

A checkpoint cannot fold the log into the file while another connection's read
transaction, older than the erasure, may still read the pages it replaced. After the
busy timeout the checkpoint gives up: the report said nothing, and the erased learner's
id stayed in the log. Now the report says ``folded=False``, and the next erasure, sweep
or store opening folds what was left.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from learnprivacy.crypto import Keyring
from learnprivacy.retention import Schedule
from learnprivacy.store import Store, _engine
from tests import NOW, account
from tests.store_fixtures import MASTER_KEY

GONE = [f"GONE{n:04d}" for n in range(4)]


@pytest.fixture
def path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store file holding four learners and one who stays; a short busy timeout."""
    monkeypatch.setattr(_engine, "BUSY_TIMEOUT", 0.2)
    path = tmp_path / "lms.db"
    with _open(path) as store:
        store.add_all([account(g) for g in GONE] + [account("STAY0001")])
    return path


def _open(path: Path) -> Store:
    return Store(
        f"sqlite:///{path}", keyring=Keyring.from_master_key(MASTER_KEY), clock=lambda: NOW
    )


def _on_disk(path: Path) -> bytes:
    log = Path(f"{path}-wal")
    return path.read_bytes() + (log.read_bytes() if log.exists() else b"")


@pytest.fixture
def reader(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection inside a read transaction begun before the erasures."""
    connection = sqlite3.connect(path, timeout=0.1)
    connection.execute("BEGIN")
    connection.execute("SELECT count(*) FROM lp_learner").fetchall()
    yield connection
    connection.close()


def test_an_erasure_with_no_older_reader_is_folded(path: Path) -> None:
    with _open(path) as store:
        report = store.erase_subject(GONE[0])
        assert (report.erased, report.folded) == (1, True)
    assert GONE[0].encode() not in _on_disk(path)


def test_an_erasure_held_in_the_log_by_an_older_reader_says_so(
    path: Path, reader: sqlite3.Connection
) -> None:
    """Attack: a reader keeps an old snapshot open; the erasure must not pass for folded."""
    with _open(path) as store:
        report = store.erase_subject(GONE[1])
        assert report.erased == 1
        assert report.folded is False
        # What the report warns of is real: the id is still in the log.
        assert GONE[1].encode() in _on_disk(path)
        assert store.get(type(account("x")), GONE[1]) is None
        reader.rollback()
        # The next erasure folds what the first one left.
        assert store.erase_subject(GONE[2]).folded is True
    data = _on_disk(path)
    assert GONE[1].encode() not in data
    assert GONE[2].encode() not in data


def test_a_sweep_held_in_the_log_by_an_older_reader_says_so(
    path: Path, reader: sqlite3.Connection
) -> None:
    with _open(path) as store:
        assert store.erase_subject(GONE[1]).folded is False
        assert store.sweep(Schedule({}), now=NOW).folded is False
        reader.rollback()
        assert store.sweep(Schedule({}), now=NOW).folded is True
    assert GONE[1].encode() not in _on_disk(path)


def test_a_store_opening_folds_what_an_erasure_left(path: Path, reader: sqlite3.Connection) -> None:
    with _open(path) as store:
        assert store.erase_subject(GONE[3]).folded is False
    reader.rollback()
    with _open(path):
        pass
    assert GONE[3].encode() not in _on_disk(path)


def test_destroyed_keys_held_in_the_key_log_by_an_older_reader_say_so(path: Path) -> None:
    """Attack: the older reader is on the key database. The rows are folded, but the
    destroyed keys' old pages stay in the key database's log: not folded either."""
    keys = sqlite3.connect(path.with_name("lms.keys.db"), timeout=0.1)
    try:
        keys.execute("BEGIN")
        keys.execute("SELECT count(*) FROM lpk_keys").fetchall()
        with _open(path) as store:
            assert store.erase_subject(GONE[0]).folded is False
            keys.rollback()
            assert store.erase_subject(GONE[1]).folded is True
    finally:
        keys.close()
